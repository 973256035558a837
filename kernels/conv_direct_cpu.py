"""Direct 3x3 stride-1 convolution on the CPU in Numba (float32 and float64): no columns,
no BLAS. For thin layers (at most 16 input and 16 output channels, maps of 32x32 and more),
where it beats the im2col kernels (conv_cpu) by 1.15-1.8x in each of the three maps; see
the measurements and `faster_than_im2col`.

Each sample's input channels are copied, zero-padded, into flat planes of width
Wp = W + left + right; the output is computed on the same flat grid, Ho rows of Wp positions,
of which the last Wp - Wo of each row are junk (they straddle the row end) and are dropped
when the plane is copied out. On that grid the 9 taps of the 3x3 window are 9 constant
offsets (a*Wp + b) into the padded plane, so one output channel's sum over one input
channel is a single long loop over q with the 9 weights in registers:

    acc[q] += w0*p[q] + w1*p[q+1] + w2*p[q+2] + w3*p[q+Wp] + ... + w8*p[q+2Wp+2]

which LLVM vectorizes (8 floats wide: Numba's LLVM prefers 256-bit vectors on AVX-512) with
FMAs. Two output channels share each sweep (18 weights in registers), so each load of the
plane feeds two FMAs. The input gradient is the same convolution of gy with the flipped,
transposed filter; the weight gradient sweeps the (junk-zeroed) output-gradient planes of
two output channels against one input plane: 18 dot products in one loop, no reductions
across lanes until the end. Loop order: per sample, per pair of output channels (their
accumulators, 2*Ho*Wp values, stay in L1), per input channel; the other order (per input
channel, its padded plane in L1, accumulating into all output planes) is `by_input=True`,
kept for the benchmark. Indices are unsigned (see conv_cpu's note on signed-index
wraparound checks).

How a batch is shared among threads (the wrappers' `tasks`): the samples are cut into
`tasks` contiguous ranges (cpu_tasks.task_range), and one parallel loop (a Numba prange
over the ranges, `_forward_shared`, `_weight_grad_shared`) runs the single-thread loops
above on each range, with scratch of its own (padded planes, accumulators, a term of gw,
summed afterwards in task order). Why: one parallel launch per pass, whose hand-off under
Numba's OpenMP layer (workers spinning after each loop) costs microseconds, against a
Python thread woken for each share (the design before, in conv_cpu). Why calls, not the
loops written into the prange's body: the calls keep the loops as they vectorize alone (the
loops inlined into the parallel body vectorized worse). One task is a plain call on the
calling thread, no parallel launch: a forked child (one thread, see cpu_tasks) never reaches
a prange.

Measured (benchmarks/bench_conv_methods.py, one thread, Intel Xeon 2.8 GHz AVX-512, 2 cores
shared with two other engineers' jobs, so single runs vary by 20%; ms, medians of 15
interleaved rounds, the run in results/conv_methods.md; in brackets the range of the
direct / im2col ratio over 2-7 runs of the same code):

    layer (b64)         pass   im2col  PyTorch  direct
    CIFAR 16->16 32x32  fwd     9.59    6.01    6.50  [0.65-0.87]   PyTorch 0.58-0.67
                        gx     10.21    5.96    6.09  [0.54-0.84]           0.58-0.63
                        gw      8.70    6.01    5.01  [0.46-0.69]           0.57-0.69
    stem 3->16 32x32    gw      2.18    1.79    1.26  [0.58-0.69]   (fwd 0.77-1.06)
    16->16 16x16        fwd     2.50    1.52    2.21  [0.81-1.07]   (gw 0.59-0.67)
    CIFAR 32->32 16x16  fwd    10.78    5.68   13.70  [1.04-1.27]   (1.0-1.3 every pass)
    CIFAR 64->64 8x8    fwd     8.19    5.51   18.92  [2.2-2.5]

and, against im2col in one other run (fwd / gx / gw): 8->8 32x32 0.59 / 0.57 / 0.47,
16->24 32x32 0.82 / 0.70 / 0.69, 24->24 32x32 0.86 / 0.79 / 0.71, 16->16 8x8 1.11 / 1.07 /
0.97, 16->16 4x4 1.97 / 1.76 / 1.58. Hence `faster_than_im2col`: at most 16 channels, maps
of 32x32 and more (16x16 wins on gw only, ties on fwd and gx).

On 32 and more channels BLAS's products win: the sweep runs at about 9 of the 16 multiply-
adds per cycle a 256-bit FMA pair allows (the plane's unaligned loads, the accumulators'
loads and stores), and small maps add a per-sweep overhead (an 8x8 map is a sweep of 80
positions). Tried, on CIFAR 16->16 (each against the kept version in the same runs): one
output channel per sweep, fwd 7.6 against 6.0 ms (half the FMAs per load); three per sweep,
7.66 against 7.80 ms (27 weights spill registers; dropped as no faster); the by-input order,
8.6 against 6.4 ms; for gw, one output channel's 9 dot products per loop 7.6 against 4.7 ms,
one dot product per loop 12.9 ms. (A sum started as 0 * gw[k] is float64 in Numba: the
float32 loops then ran 4 wide with conversions, 19 ms.)
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import task_range

_JIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
THIN = 16  # the most input or output channels measured faster than im2col (see there)
SMALLEST_MAP = 1024  # the fewest positions (H*W) measured faster: 32x32 (16x16 ties)
# Every loop variable and size is uint64 (the wrappers pass np.uint64), and constants in index
# arithmetic are uint64 too: Numba types uint64 + int literal as int64, and uint64 * int64 as
# float64.
_0, _1, _2, _3, _4, _5, _6, _7, _8, _9 = (np.uint64(k) for k in range(10))


@njit(**_JIT)
def _pad(x, channels, h, w, top, left, hp, wp, plane, out):
    """out (flat: channels planes of `plane` >= hp*wp + 2 values) = x (flat: channels*h*w)
    zero-padded into hp x wp planes, with `left` columns before and `top` rows above."""
    for t in range(channels * plane):
        out[t] = 0
    for c in range(channels):
        for i in range(h):
            src = (c * h + i) * w
            dst = c * plane + (i + top) * wp + left
            for j in range(w):
                out[dst + j] = x[src + j]


@njit(**_JIT)
def _spread(g, channels, ho, wo, wp, span, out):
    """out (flat: channels planes of `span` = ho*wp) = g (flat: channels*ho*wo) on the flat
    grid, its junk positions (columns wo..wp-1 of each row) zero."""
    for t in range(channels * span):
        out[t] = 0
    for c in range(channels):
        for i in range(ho):
            src = (c * ho + i) * wo
            dst = c * span + i * wp
            for j in range(wo):
                out[dst + j] = g[src + j]


@njit(inline="always", **_JIT)
def _window(base, wp):
    """The nine offsets of a 3x3 window at `base` in a plane of rows wp apart."""
    a0 = base
    b0 = a0 + wp
    c0 = b0 + wp
    return a0, a0 + _1, a0 + _2, b0, b0 + _1, b0 + _2, c0, c0 + _1, c0 + _2


@njit(**_JIT)
def _stencil(p, base, wp, w, k, acc, span):
    """acc[q] += the 3x3 window at p[base + q] (rows wp apart) weighted by w[k:k+9]."""
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[k:k + _9]
    a0, a1, a2, b0, b1, b2, c0, c1, c2 = _window(base, wp)
    for q in range(span):
        acc[q] += (w0 * p[a0 + q] + w1 * p[a1 + q] + w2 * p[a2 + q]
                   + w3 * p[b0 + q] + w4 * p[b1 + q] + w5 * p[b2 + q]
                   + w6 * p[c0 + q] + w7 * p[c1 + q] + w8 * p[c2 + q])


@njit(**_JIT)
def _stencil2(p, base, wp, w, k, kk, acc, span):
    """_stencil for two output channels at once (weights w[k:k+9] into acc[:span] and
    w[kk:kk+9] into acc[span:2*span]): each load of the plane feeds two FMAs."""
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[k:k + _9]
    v0, v1, v2, v3, v4, v5, v6, v7, v8 = w[kk:kk + _9]
    a0, a1, a2, b0, b1, b2, c0, c1, c2 = _window(base, wp)
    for q in range(span):
        x0, x1, x2 = p[a0 + q], p[a1 + q], p[a2 + q]
        x3, x4, x5 = p[b0 + q], p[b1 + q], p[b2 + q]
        x6, x7, x8 = p[c0 + q], p[c1 + q], p[c2 + q]
        acc[q] += ((w0 * x0 + w1 * x1 + w2 * x2) + (w3 * x3 + w4 * x4 + w5 * x5)
                   + (w6 * x6 + w7 * x7 + w8 * x8))
        acc[span + q] += ((v0 * x0 + v1 * x1 + v2 * x2) + (v3 * x3 + v4 * x4 + v5 * x5)
                          + (v6 * x6 + v7 * x7 + v8 * x8))


@njit(**_JIT)
def _forward(x, w, n, c, h, wd, top, left, o, ho, wo, hp, wp, padded, acc, y):
    """y (flat n*o*ho*wo) = the 3x3 stride-1 convolution of x (flat n*c*h*wd) with w
    (flat o*c*9); padded and acc are scratch (c * (hp*wp + 2) and 2*ho*wp values)."""
    plane = hp * wp + _2
    span = ho * wp
    for s in range(n):
        _pad(x[s * c * h * wd:], c, h, wd, top, left, hp, wp, plane, padded)
        for half in range((o + _1) // _2):  # output channels m, m + 1
            m = half * _2
            pair = m + _1 < o
            for q in range(span * _2):
                acc[q] = 0
            for ch in range(c):
                k = (m * c + ch) * _9
                if pair:
                    _stencil2(padded, ch * plane, wp, w, k, k + c * _9, acc, span)
                else:
                    _stencil(padded, ch * plane, wp, w, k, acc, span)
            for mm in range(_2 if pair else _1):
                dst = (s * o + m + mm) * ho * wo
                src = mm * span
                for i in range(ho):
                    for j in range(wo):
                        y[dst + i * wo + j] = acc[src + i * wp + j]


@njit(**_JIT)
def _forward_by_input(x, w, n, c, h, wd, top, left, o, ho, wo, hp, wp, padded, acc, y):
    """_forward's other loop order: per input channel (its padded plane in L1), into all
    o accumulator planes (acc: o*ho*wp values)."""
    plane = hp * wp + _2
    span = ho * wp
    for s in range(n):
        for t in range(o * span):
            acc[t] = 0
        for ch in range(c):
            _pad(x[(s * c + ch) * h * wd:], _1, h, wd, top, left, hp, wp, plane, padded)
            for m in range(o):
                _stencil(padded, _0, wp, w, (m * c + ch) * _9, acc[m * span:], span)
        for m in range(o):
            dst = (s * o + m) * ho * wo
            for i in range(ho):
                for j in range(wo):
                    y[dst + i * wo + j] = acc[m * span + i * wp + j]


@njit(**_JIT)
def _tap_sums(spread, g0, g1, padded, base, wp, span, gw, k, kk):
    """gw[k:k+9] += the 9 dot products of spread[g0:g0+span] with the plane's taps at
    padded[base + tap offset + q]; gw[kk:kk+9] the same for spread[g1:...] (two output
    channels: each load of the plane feeds two FMAs). The sums start from gw's values:
    0 * gw[k] would be float64 in Numba."""
    a0 = base
    a1, a2 = a0 + _1, a0 + _2
    b0 = a0 + wp
    b1, b2 = b0 + _1, b0 + _2
    c0 = b0 + wp
    c1, c2 = c0 + _1, c0 + _2
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = gw[k:k + _9]
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = gw[kk:kk + _9]
    for q in range(span):
        u = spread[g0 + q]
        v = spread[g1 + q]
        x0, x1, x2 = padded[a0 + q], padded[a1 + q], padded[a2 + q]
        x3, x4, x5 = padded[b0 + q], padded[b1 + q], padded[b2 + q]
        x6, x7, x8 = padded[c0 + q], padded[c1 + q], padded[c2 + q]
        s0 += u * x0
        s1 += u * x1
        s2 += u * x2
        s3 += u * x3
        s4 += u * x4
        s5 += u * x5
        s6 += u * x6
        s7 += u * x7
        s8 += u * x8
        t0 += v * x0
        t1 += v * x1
        t2 += v * x2
        t3 += v * x3
        t4 += v * x4
        t5 += v * x5
        t6 += v * x6
        t7 += v * x7
        t8 += v * x8
    gw[k], gw[k + _1], gw[k + _2], gw[k + _3], gw[k + _4] = s0, s1, s2, s3, s4
    gw[k + _5], gw[k + _6], gw[k + _7], gw[k + _8] = s5, s6, s7, s8
    gw[kk], gw[kk + _1], gw[kk + _2], gw[kk + _3], gw[kk + _4] = t0, t1, t2, t3, t4
    gw[kk + _5], gw[kk + _6], gw[kk + _7], gw[kk + _8] = t5, t6, t7, t8


@njit(**_JIT)
def _weight_grad(x, g, n, c, h, wd, top, left, o, ho, wo, hp, wp, padded, spread, gw):
    """gw (flat (o+1)*c*9: one spare row) = sum over samples and positions of g (flat
    n*o*ho*wo) times the padded x's windows: per pair of output channels and per input
    channel, 18 dot products in one loop over the flat grid (the junk positions of the
    spread g are zero; an odd o pairs its last channel with a zero plane of spread and the
    spare row of gw)."""
    plane = hp * wp + _2
    span = ho * wp
    for t in range((o + _1) * c * _9):
        gw[t] = 0
    for t in range(o * span, (o + _1) * span):
        spread[t] = 0
    for s in range(n):
        _pad(x[s * c * h * wd:], c, h, wd, top, left, hp, wp, plane, padded)
        _spread(g[s * o * ho * wo:], o, ho, wo, wp, span, spread)
        for half in range((o + _1) // _2):
            m = half * _2
            for ch in range(c):
                k = (m * c + ch) * _9
                _tap_sums(spread, m * span, (m + _1) * span, padded, ch * plane, wp, span, gw,
                          k, k + c * _9)


@njit(**_JIT)
def _share(task, tasks, n):
    """(first sample, samples) of the task-th of `tasks` contiguous ranges of n samples, as
    uint64 (task_range runs on int64: a prange index may come typed either way)."""
    start, stop = task_range(np.int64(task), np.int64(tasks), np.int64(n))
    return np.uint64(start), np.uint64(stop - start)


@njit(parallel=True, **_JIT)
def _forward_shared(x, w, n, c, h, wd, top, left, o, ho, wo, hp, wp, padded, acc, y, tasks):
    """_forward on `tasks` contiguous, non-empty ranges of the n samples in one parallel
    loop, each range with its own rows of the scratch (padded and acc: 2-d, a row a task)."""
    for task in prange(tasks):
        first, samples = _share(task, tasks, n)
        _forward(x[first * c * h * wd:], w, samples, c, h, wd, top, left, o, ho, wo, hp, wp,
                 padded[task], acc[task], y[first * o * ho * wo:])


@njit(parallel=True, **_JIT)
def _weight_grad_shared(x, g, n, c, h, wd, top, left, o, ho, wo, hp, wp, padded, spread, gw,
                        tasks):
    """_weight_grad on `tasks` contiguous, non-empty ranges of the n samples in one parallel
    loop, each range with its own rows of the scratch (padded, spread) and its own term of
    the gradient (gw: 2-d, a row a task; the caller sums the rows)."""
    for task in prange(tasks):
        first, samples = _share(task, tasks, n)
        _weight_grad(x[first * c * h * wd:], g[first * o * ho * wo:], samples, c, h, wd, top,
                     left, o, ho, wo, hp, wp, padded[task], spread[task], gw[task])


def supports_3x3(method, dtype, w_shape, stride, padding, dilation, groups):
    """None when a 3x3 stride-1 `method` ("the direct convolution", "the Winograd
    convolution") can run the 2-d convolution, else the reason it cannot: a 3x3 kernel,
    stride 1, dilation 1, one group, padding 0..2 on each side (the input gradient pads by
    2 - padding), float32 or float64."""
    if dtype not in (np.float32, np.float64):
        return f"{method} takes float32 or float64, got {dtype}"
    if len(w_shape) != 4 or tuple(w_shape[2:]) != (3, 3):
        return f"{method} takes 3x3 kernels, got weight {tuple(w_shape)}"
    if tuple(stride) != (1, 1) or tuple(dilation) != (1, 1) or groups != 1:
        return (f"{method} takes stride 1, dilation 1, groups 1, got "
                f"stride {stride}, dilation {dilation}, groups {groups}")
    if not all(0 <= p <= 2 for side in padding for p in side):
        return f"{method} takes padding 0..2, got {padding}"
    return None


def supports(dtype, w_shape, stride, padding, dilation, groups):
    """None when these kernels can run the 2-d convolution, else why not (supports_3x3)."""
    return supports_3x3("the direct convolution", dtype, w_shape, stride, padding, dilation,
                        groups)


def faster_than_im2col(x_shape, w_shape):
    """Whether, by the measurements (the module's docstring), a layer `supports` takes runs
    faster here than in conv_cpu, at one thread: at most THIN channels in and out, maps of at
    least SMALLEST_MAP positions."""
    return max(w_shape[:2]) <= THIN and x_shape[2] * x_shape[3] >= SMALLEST_MAP


def _sizes(*sizes):
    """The loops' size arguments as uint64 (see _1)."""
    return [np.uint64(v) for v in sizes]


def _range_count(n, tasks):
    """How many ranges to cut n samples into where `tasks` are asked for: task_range's
    non-empty ones (its ranges are ceil(n / tasks) long, so the last may be empty: 7 samples
    in 5 tasks are 4 ranges, of 2, 2, 2 and 1), so at most n; 1 for an empty batch."""
    per_task = max(1, -(-n // tasks))
    return max(1, -(-n // per_task))


def _scratch(x_shape, padding, out_size, dtype, tasks, by_input=False, o=None):
    """(top, left), (hp, wp) and the loops' scratch, a row for each of `tasks` tasks: the
    padded planes and the accumulators."""
    (top, bottom), (left, right) = padding
    c, h, w = x_shape[1:]
    hp, wp = h + top + bottom, w + left + right
    padded = np.empty((tasks, c * (hp * wp + 2)), dtype=dtype)
    acc = np.empty((tasks, (o if by_input else 2) * out_size[0] * wp), dtype=dtype)
    return (top, left), (hp, wp), padded, acc


def conv_forward(x, w, stride, padding, dilation, groups, out_size, by_input=False, out=None,
                 tasks=1):
    """y (N, O, Ho, Wo) = the convolution of x (N, C, H, W) with w (O, C, 3, 3), stride 1
    (the arguments as conv_cpu.conv_forward's; see `supports`), written into `out` (a
    C-contiguous array of y's shape and dtype) where given. by_input: the other loop order
    (benchmarks only, one task). tasks: how many contiguous ranges of the samples to run in
    parallel (at most N; 1: on the calling thread, no parallel launch)."""
    if by_input and tasks > 1:
        raise ValueError(f"the by-input loop order runs as one task, got tasks={tasks}")
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n, c, h, wd = x.shape
    o = w.shape[0]
    tasks = _range_count(n, tasks)
    (top, left), (hp, wp), padded, acc = _scratch(x.shape, padding, out_size, x.dtype, tasks,
                                                  by_input, o)
    y = np.empty((n, o, *out_size), dtype=x.dtype) if out is None else out
    arrays = x.reshape(-1), w.reshape(-1)
    sizes = _sizes(n, c, h, wd, top, left, o, *out_size, hp, wp)
    if tasks > 1:
        _forward_shared(*arrays, *sizes, padded, acc, y.reshape(-1), tasks)
    elif by_input:
        _forward_by_input(*arrays, *sizes, padded[0, :hp * wp + 2], acc[0], y.reshape(-1))
    else:
        _forward(*arrays, *sizes, padded[0], acc[0], y.reshape(-1))
    return y


def conv_input_grad(gy, w, x_shape, stride, padding, dilation, groups, out=None, tasks=1):
    """gx of x_shape: the convolution of gy with the flipped, transposed filter, padded by
    2 - padding on each side (into `out` where given, in `tasks` ranges, as conv_forward)."""
    (top, bottom), (left, right) = padding
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=gy.dtype)
    return conv_forward(gy, flipped, (1, 1), ((2 - top, 2 - bottom), (2 - left, 2 - right)),
                        (1, 1), 1, tuple(x_shape[2:]), out=out, tasks=tasks)


def conv_weight_grad(x, gy, w_shape, stride, padding, dilation, groups, tasks=1):
    """gw of w_shape (O, C, 3, 3): the adjoint of conv_forward in w; with tasks > 1, the sum
    of one term per range of the samples (as conv_forward), added in task order."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy, dtype=x.dtype)
    n, c, h, wd = x.shape
    o, ho, wo = gy.shape[1:]
    tasks = _range_count(n, tasks)
    (top, left), (hp, wp), padded, _ = _scratch(x.shape, padding, (ho, wo), x.dtype, tasks)
    spread = np.empty((tasks, (o + 1) * ho * wp), dtype=x.dtype)
    gw = np.empty((tasks, (o + 1) * c * 9), dtype=x.dtype)
    arrays = x.reshape(-1), gy.reshape(-1)
    sizes = _sizes(n, c, h, wd, top, left, o, ho, wo, hp, wp)
    if tasks > 1:
        _weight_grad_shared(*arrays, *sizes, padded, spread, gw, tasks)
    else:
        _weight_grad(*arrays, *sizes, padded[0], spread[0], gw[0])
    return gw[:, :o * c * 9].sum(axis=0).reshape(w_shape)



def conv_backward(x, gy, w, stride, padding, dilation, groups, need_x=True, need_w=True):
    """(gx, gw) of y = conv(x, w), either None where not needed: conv_input_grad and
    conv_weight_grad (conv_cpu.conv_backward's form; x is read only where gw is needed, w
    only where gx is, so either may be a stand-in of the right shape)."""
    gx = conv_input_grad(gy, w, x.shape, stride, padding, dilation, groups) if need_x else None
    gw = (conv_weight_grad(x, gy, w.shape, stride, padding, dilation, groups) if need_w
          else None)
    return gx, gw

# ------------------------------------------------------------------ NumPy reference
def _taps(padded, ho, wo):
    """The 9 shifted views padded[:, :, a:a+ho, b:b+wo], by tap (a, b)."""
    return [((a, b), padded[:, :, a:a + ho, b:b + wo]) for a in range(3) for b in range(3)]


def reference_forward(x, w, padding, out_size):
    """The same sums in NumPy, one tap at a time (the tests' oracle for the loops)."""
    (top, bottom), (left, right) = padding
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    return sum(np.einsum("nchw,oc->nohw", view, w[:, :, a, b])
               for (a, b), view in _taps(padded, *out_size))


def reference_input_grad(gy, w, x_shape, padding):
    (top, bottom), (left, right) = padding
    n, c, h, wd = x_shape
    gx = np.zeros((n, c, h + top + bottom, wd + left + right), dtype=gy.dtype)
    for (a, b), view in _taps(gx, *gy.shape[2:]):
        view += np.einsum("nohw,oc->nchw", gy, w[:, :, a, b])
    return gx[:, :, top:top + h, left:left + wd]


def reference_weight_grad(x, gy, padding):
    (top, bottom), (left, right) = padding
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    gw = np.empty((gy.shape[1], x.shape[1], 3, 3), dtype=x.dtype)
    for (a, b), view in _taps(padded, *gy.shape[2:]):
        gw[:, :, a, b] = np.einsum("nohw,nchw->oc", gy, view)
    return gw
