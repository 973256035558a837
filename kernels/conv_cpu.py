"""2-D convolution on the CPU: Numba im2col/col2im over small chunks of samples around
NumPy's matrix products (float32 and float64).

The reference (minifm/ops/conv.py) builds the column matrix of the whole batch,
(G, C/G*kh*kw, N*Ho*Wo), with NumPy's strided views, multiplies once, and transposes the
product into (N, O, Ho, Wo); its input gradient transposes the column gradient into the
windows' layout and adds kh*kw strided slices into a padded buffer. Measured on the
benchmark's layers (benchmarks/bench_conv.py, one thread, 2 busy cores), that column matrix
is many MB (14 MB for a 3x3 32->64 layer on 14x14 maps, batch 64), so every pass over it
runs at memory speed: building it cost as much as its matrix product, and the col2im with
its two copies more than both together.

Here the same three maps run a chunk of samples at a time: the chunk's columns (a few
hundred KB, about COLUMNS wide) are written by one Numba loop and stay in the cache while the
matrix product (BLAS) reads them; for a one-sample chunk the product (O, Ho*Wo) is written
straight into y[n], already y's layout. The input gradient multiplies W^T by the chunk's
gradient and col2im adds it back while it is cached; the weight gradient sums
gy @ cols^T over the chunks. Chunk products are as fast as one large product on these
shapes (measured: 64 x (64x288 @ 288x196) 32 ms, one 64x288 @ 288x12544 33 ms); chunks
narrower than COLUMNS (4x4 maps and smaller in ResNet-18) wasted BLAS. Net on the 3x3
layer's forward+backward: 130 ms -> 82 ms (PyTorch 72 ms in the same session).

OpenBLAS runs one thread inside these kernels (its count set through ctypes for the call,
restored after); minifm's own threads (Numba's count) do the sharing. With at least two
chunks per thread, each thread takes a contiguous share of the chunks (the caller one of
them), im2col/col2im and product alike; with fewer (ResNet-18's small maps at batch 16, the
dense layers), the chunks run in order and each product's rows are cut among the threads
(_products_on). Measured, fwd+bwd of the CIFAR ResNet 16->16 32x32 layer, batch 64, at 1 and
2 threads, another process busy on a core: shares 20-26 ms wall for 35-44 ms of CPU, against
32-34 ms on one thread, where OpenBLAS's two threads on the products alone gave 29.2 against
30.7 ms (the copies, most of this thin layer's time, stayed on one thread). OpenBLAS's
threads were given up for the products that run alone too: after each product they spin,
waiting for the next, and took the second core from what ran next (a ResNet-18 step at two
threads burned 213-227 ms of CPU for 109-115 ms of wall; cut rows: 135-177 for 99-135). An
earlier version of the shares went no faster than one thread because its BLAS limit went
through threadpoolctl, missing from the environment of those runs: each share ran
OpenBLAS's two-thread products (4 threads on 2 cores).

The copy loops index with unsigned integers: Numba checks a signed index for wraparound on
every access, which kept them scalar (one 32x14x14 sample: 118 us signed, 32 us unsigned;
NumPy's strided copy of the same windows 73 us). Padding is never materialized: each row's
valid output range is computed once and the rest written as zeros. On "same" maps (stride 1,
output width = input width: every 3x3 layer of a ResNet) a column row is the input plane
shifted by a constant, so it is one flat copy (col2im: one flat add) plus zeroed row ends,
instead of a loop per output row: one sample's im2col / col2im, 16x32x32 36 / 33 -> 20 / 21
us, 64x16x16 47 / 46 -> 33 / 29 us, four 64x8x8 samples 67 / 80 -> 62 / 62 us. (Separate
tiny loops per row for the zeros and the copy, tried first, were slower than the row-zeroing
loop on 8x8 maps: 102 against 67 us.) The flat offsets are uint64 and may wrap below zero
(the first rows of a padded plane); their sums with the span positions land in range.
The same idea for strided maps, a flat span over each stride phase of the input (copied out
first) where the output is as wide as a phase, was measured and dropped: one sample's
im2col / col2im, k4s2 64x16x16 53 / 48 -> 52 / 42 us, k3s2 64x16x16 27 / 29 -> 35 / 30,
k4s2 128x8x8 53 / 45 -> 72 / 53 (short spans on small maps, plus the phase copy).

One _buffer call builds its shape's size with math.prod: np.prod took 3.8 us a call, about
3,000 calls a ResNet-20 step (a tenth of its convolution time in --profile).

Two kinds of layer leave the im2col loops: thin 3x3 stride-1 layers (at most 16 channels,
maps of 32x32 and more: CIFAR ResNet's first stage), whose products are too thin (16 rows)
for BLAS to run near its peak and whose columns are 9x the input, run conv_direct_cpu's
direct loops (on one thread, or on shares of the batch); and "dense" layers, whose kernel
covers the whole input, run as one matrix product (see _dense).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import math
import os
import threading

import numba
import numpy as np
from numba import njit, uint64

from . import conv_direct_cpu
from .cpu_tasks import run_parts, task_range

COLUMNS = 256  # the width of a chunk's column matrix: samples * Ho * Wo (see _chunks)
TRANSPOSED_FROM = 2048  # N * Ho * Wo from which the weight gradient is gw^T (see there)
CHUNK_BYTES = 1 << 19  # the most column matrix a chunk fills beyond COLUMNS (see _chunks)
GATHER_BELOW = 16  # output widths below which im2col/col2im go through a gather table
SPLIT_FROM = 1 << 22  # multiply-adds from which a product is cut among threads (_matmul)


@njit(cache=True)
def _valid_range(size, out, stride, offset):
    """The output positions j in [lo, hi) whose input position j*stride + offset lies in
    [0, size)."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    return min(lo, out), max(min(hi, out), min(lo, out))


# Indices are unsigned (uint64): see the module's docstring.
@njit(cache=True, nogil=True, inline="always")
def _zero(a, start, stop):
    for t in range(start, stop):
        a[t] = 0


@njit(cache=True, nogil=True, inline="always")
def _same_span(i_lo, i_hi, j_lo, j_hi, wo):
    """[lo, hi): the flat positions, in a "same" map, from the first valid entry to the last;
    (0, 0) when none is valid."""
    if i_lo >= i_hi or j_lo >= j_hi:
        return uint64(0), uint64(0)
    return uint64(i_lo * wo + j_lo), uint64((i_hi - 1) * wo + j_hi)


@njit(cache=True, nogil=True, inline="always")
def _zero_row_ends(a, base, i_lo, i_hi, j_lo, j_hi, wo):
    """a[base + i*wo + j] = 0 for the rows i in [i_lo, i_hi) and the columns j outside
    [j_lo, j_hi): the entries a flat span over those rows wraps into."""
    for i in range(i_lo, i_hi):
        row = base + uint64(i * wo)
        _zero(a, row, row + uint64(j_lo))
        _zero(a, row + uint64(j_hi), row + uint64(wo))


@njit(cache=True, nogil=True)
def _im2col(x, samples, channels, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """A chunk of samples: cols (flat: C*kh*kw rows of samples*ho*wo) from x (flat:
    samples*C*h*w); row (c, a, b) holds x[s, c, i*sh - ph + a*dh, j*sw - pw + b*dw] at
    column (s, i, j), 0 outside the input.

    A "same" map (stride 1, wo == w: ResNet's 3x3 layers) is a shifted copy of each input
    plane, one flat span, whose wrapped row ends are zeroed after; other maps copy row by
    row into a zeroed row."""
    plane = ho * wo
    width = samples * plane
    step = uint64(sw)
    same = sh == 1 and sw == 1 and wo == w
    for c in range(channels):
        for a in range(kh):
            i_lo, i_hi = _valid_range(h, ho, sh, a * dh - ph)
            for b in range(kw):
                j_lo, j_hi = _valid_range(w, wo, sw, b * dw - pw)
                row = uint64(((c * kh + a) * kw + b) * width)
                if same:
                    lo, hi = _same_span(i_lo, i_hi, j_lo, j_hi, wo)
                    for n in range(samples):
                        base = row + uint64(n * plane)
                        src = uint64((n * channels + c) * h * w + (a * dh - ph) * w
                                     + b * dw - pw)
                        _zero(cols, base, base + lo)
                        for t in range(lo, hi):
                            cols[base + t] = x[src + t]
                        _zero(cols, base + hi, base + uint64(plane))
                        _zero_row_ends(cols, base, i_lo, i_hi, j_lo, j_hi, wo)
                    continue
                _zero(cols, row, row + uint64(width))
                for n in range(samples):
                    for i in range(i_lo, i_hi):
                        src = uint64(((n * channels + c) * h + i * sh - ph + a * dh) * w
                                     + j_lo * sw + b * dw - pw)
                        dst = uint64(row + n * plane + i * wo + j_lo)
                        for j in range(uint64(j_hi - j_lo)):
                            cols[dst + j] = x[src + j * step]


@njit(cache=True, nogil=True)
def _col2im(cols, samples, channels, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, gx):
    """A chunk of samples, the adjoint of _im2col: gx (flat samples*C*h*w) = the sum of every
    column entry at the input position it was read from. Each (sample, channel) plane is
    finished while it sits in the L1 cache. On a "same" map the entries read from padding
    are zeroed in cols (a scratch buffer) so one flat span adds each row (c, a, b) back."""
    plane = ho * wo
    width = samples * plane
    step = uint64(sw)
    same = sh == 1 and sw == 1 and wo == w
    _zero(gx, uint64(0), uint64(samples * channels * h * w))
    for n in range(samples):
        for c in range(channels):
            for a in range(kh):
                i_lo, i_hi = _valid_range(h, ho, sh, a * dh - ph)
                for b in range(kw):
                    j_lo, j_hi = _valid_range(w, wo, sw, b * dw - pw)
                    row = uint64(((c * kh + a) * kw + b) * width + n * plane)
                    if same:
                        lo, hi = _same_span(i_lo, i_hi, j_lo, j_hi, wo)
                        _zero_row_ends(cols, row, i_lo, i_hi, j_lo, j_hi, wo)
                        dst = uint64((n * channels + c) * h * w + (a * dh - ph) * w
                                     + b * dw - pw)
                        for t in range(lo, hi):
                            gx[dst + t] += cols[row + t]
                        continue
                    for i in range(i_lo, i_hi):
                        dst = uint64(((n * channels + c) * h + i * sh - ph + a * dh) * w
                                     + j_lo * sw + b * dw - pw)
                        src = uint64(row + i * wo + j_lo)
                        for j in range(uint64(j_hi - j_lo)):
                            gx[dst + j * step] += cols[src + j]


@njit(cache=True, nogil=True)
def _im2col_gather(x, samples, channels, plane_in, taps, width, table, cols):
    """_im2col through a gather table: table[tap, p] (taps = kh*kw rows of ho*wo) is the
    position in an input plane that output position p reads at that kernel position, or
    -1 in the padding. For small output maps, where a row of the loops above copies only
    a few elements (see the module's docstring)."""
    plane = table.shape[1]
    for c in range(channels):
        for tap in range(taps):
            row = uint64((c * taps + tap) * width)
            for n in range(samples):
                src = uint64((n * channels + c) * plane_in)
                dst = row + uint64(n * plane)
                for p in range(plane):
                    at = table[tap, p]
                    cols[dst + uint64(p)] = x[src + uint64(at)] if at >= 0 else 0


@njit(cache=True, nogil=True)
def _col2im_scatter(cols, samples, channels, plane_in, taps, width, table, gx):
    """The adjoint of _im2col_gather: gx (flat, zeroed here) += each column entry at the
    input position the table gives."""
    plane = table.shape[1]
    for t in range(uint64(samples * channels * plane_in)):
        gx[t] = 0
    for n in range(samples):
        for c in range(channels):
            dst = uint64((n * channels + c) * plane_in)
            for tap in range(taps):
                src = uint64((c * taps + tap) * width + n * plane)
                for p in range(plane):
                    at = table[tap, p]
                    if at >= 0:
                        gx[dst + uint64(at)] += cols[src + uint64(p)]


@functools.lru_cache(maxsize=64)
def _gather_table(geometry):
    """The gather table of _im2col_gather for this geometry (int64, kh*kw x ho*wo; read
    only). Kept per geometry: building it costs 30-80 us, a training step asks for the same
    few tables every time."""
    _, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo = geometry
    rows = (np.arange(ho) * sh - ph)[None, :, None] + (np.arange(kh) * dh)[:, None, None]
    columns = (np.arange(wo) * sw - pw)[None, None, :] + (np.arange(kw) * dw)[:, None, None]
    inside_rows = (rows >= 0) & (rows < h)                     # (kh, ho, 1)
    inside_columns = (columns >= 0) & (columns < w)            # (kw, 1, wo)
    table = rows[:, None] * w + columns[None]                  # (kh, kw, ho, wo)
    inside = inside_rows[:, None] & inside_columns[None]
    table = np.where(inside, table, -1).reshape(kh * kw, ho * wo)
    table.flags.writeable = False
    return table


def _column_maps(geometry):
    """(im2col, col2im) for a convolution of this geometry, each called as
    im2col(x_flat, samples, cols_flat) and col2im(cols_flat, samples, gx_flat): through a
    gather table where output rows are short (wo < GATHER_BELOW) and the map is not "same"
    (stride 1, wo = w: flat spans are faster there), else the row loops. Measured, one
    chunk's im2col / col2im, us, rows against gather: k4s2 32x8x8 x16 216 / 310 against
    107 / 101, k4s2 64x4x4 x16 195 / 388 against 83 / 78, k3s2 64x16x16 x4 149 / 185
    against 98 / 117, 1x1 s2 64x8x8 x16 34 / 57 against 18 / 24; and the other way for long
    rows: k5 valid 8x28x28 x2 92 / 87 against 168 / 187, a "same" 32x16x16 26 / 22 against
    46 / 54. The table costs 30-80 us, once per call."""
    channels, h, w, kh, kw, sh, sw = geometry[:7]
    wo = geometry[-1]
    if wo >= GATHER_BELOW or (sh == 1 and sw == 1 and wo == w):
        return (lambda x, samples, cols: _im2col(x, samples, *geometry, cols),
                lambda cols, samples, gx: _col2im(cols, samples, *geometry, gx))
    table, plane = _gather_table(geometry), geometry[-2] * wo
    return (lambda x, samples, cols: _im2col_gather(x, samples, channels, h * w, kh * kw,
                                                    samples * plane, table, cols),
            lambda cols, samples, gx: _col2im_scatter(cols, samples, channels, h * w, kh * kw,
                                                      samples * plane, table, gx))


def supports(dtype, nd):
    """None when the kernels can run this problem, else the reason they cannot. They are
    2-d; minifm/ops/conv.py hands them a 1-d problem as a 2-d one of height 1."""
    if nd not in (1, 2):
        return f"the Numba convolution kernels are 1-d and 2-d; this convolution is {nd}-d"
    if dtype not in (np.float32, np.float64):
        return f"the Numba convolution kernels take float32 or float64, got {dtype}"
    return None


def _geometry(x_shape, kernel_size, stride, padding, dilation, out_size):
    """The loops' scalar arguments after the sample count; padding is
    ((top, bottom), (left, right)) and only the leading sides matter (the trailing ones are
    implied by out_size)."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    return (*x_shape[1:], kh, kw, sh, sw, padding[0][0], padding[1][0], dh, dw, ho, wo)


def _chunks(n, plane, rows, itemsize):
    """Sample ranges whose columns are at least COLUMNS wide (a 4x4 map alone would make a
    product 16 columns wide, far below BLAS's efficient sizes) and, beyond that, fill up to
    CHUNK_BYTES of column matrix (rows x width): layers with few rows (one input channel:
    DCGAN's first discriminator layer, 16 rows) would otherwise run dozens of chunks whose
    Python costs more than their loops. Where Numba has several threads, chunks wider than
    COLUMNS are cut so that each thread gets two (_run_chunks shares them out)."""
    size = max(1, -(-COLUMNS // plane), CHUNK_BYTES // (rows * plane * itemsize))
    threads = numba.get_num_threads()
    if threads > 1:
        size = min(size, max(-(-COLUMNS // plane), n // (2 * threads)))
    size = max(1, min(n, size))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


_blas = []  # (get, set) of NumPy's BLAS thread count, or None where neither way is found


def _blas_thread_functions():
    """(get, set) of the thread count of the OpenBLAS NumPy bundles, called through ctypes;
    None where it is not found (another BLAS, another packaging). threadpoolctl does the same
    through a heavier API; it is not one of minifm's dependencies."""
    here = os.path.dirname(np.__file__)
    for path in (glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                 + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_"), ("openblas", "")):
            try:
                return (getattr(library, f"{prefix}_get_num_threads{suffix}"),
                        getattr(library, f"{prefix}_set_num_threads{suffix}"))
            except AttributeError:
                continue
    return None


@contextlib.contextmanager
def _blas_threads(threads):
    """A context in which NumPy's BLAS runs `threads` threads (the count is restored after:
    other products keep theirs). Setting and restoring the count costs under 1 us."""
    if not _blas:
        _blas.append(_blas_thread_functions())
    if _blas[0] is None:  # the BLAS thread count stays as it is
        yield
        return
    get, set_ = _blas[0]
    previous = get()
    set_(threads)
    try:
        yield
    finally:
        set_(previous)


def _run_in_order(work, chunks):
    return [work(start, stop) for start, stop in chunks]


@contextlib.contextmanager
def _products_on(threads):
    """A context in which the products made through _matmul run on `threads` threads: the
    rows of each are cut among the calling thread and the pool's, each part on a one-thread
    BLAS. Not OpenBLAS's own threads: after a product they spin, waiting for the next, and
    took the second core from whatever ran next (measured in a ResNet-18 step at two threads:
    the SGD kernel's parallel loop ran 3 ms a call against 1.4 ms alone)."""
    previous = getattr(_scratch, "row_parts", 1)
    _scratch.row_parts = threads
    try:
        with _blas_threads(1):
            yield
    finally:
        _scratch.row_parts = previous


def _matmul(a, b, out=None):
    """a @ b (a, b and out: 2-d, or 3-d over the groups), into `out` where given; inside
    _products_on(threads), a product of at least SPLIT_FROM multiply-adds with one group is
    cut by rows of a among the threads."""
    if out is None:
        out = np.empty((*a.shape[:-1], b.shape[-1]), dtype=np.result_type(a, b))
    parts, rows = getattr(_scratch, "row_parts", 1), a.shape[-2]
    if (parts == 1 or (a.ndim == 3 and a.shape[0] != 1) or rows < 2 * parts
            or rows * a.shape[-1] * b.shape[-1] < SPLIT_FROM):
        return np.matmul(a, b, out=out)
    run_parts(_rows_product, [(a, b, out, *task_range(part, parts, rows))
                              for part in range(parts)])
    return out


def _rows_product(a, b, out, start, stop):
    """Rows start .. stop of out = a @ b."""
    np.matmul(a[..., start:stop, :], b, out=out[..., start:stop, :])


def _run_chunks(chunks, work):
    """work(start, stop) for every chunk; returns the results in chunk order.

    On Numba's thread count (minifm.kernels.set_num_threads): with one thread, or fewer
    chunks than two per thread, the chunks run in order on the calling thread with each
    product's rows cut among the threads (_products_on); otherwise each thread takes a
    contiguous share of the chunks (the caller one of them) on a one-thread BLAS, so the
    copies run in parallel too (why: the module's docstring)."""
    threads = numba.get_num_threads()
    if threads == 1 or len(chunks) < 2 * threads:
        with _products_on(threads):
            return _run_in_order(work, chunks)
    share = -(-len(chunks) // threads)
    parts = [chunks[i:i + share] for i in range(0, len(chunks), share)]
    with _blas_threads(1):
        shares = run_parts(_run_in_order, [(work, part) for part in parts])
    return [result for share in shares for result in share]


_scratch = threading.local()


def _buffer(name, shape, dtype):
    """A scratch array of `shape` for the calling thread, reused across calls (one per name):
    a fresh large array per chunk or call is fresh memory whose pages fault in on first
    write, measured at 5x the im2col that fills it (one 576x256 chunk: 1.5 ms, 0.27 ms
    reused)."""
    size = math.prod(shape)  # np.prod: 3.8 us a call, ~3,000 calls a ResNet-20 step
    store = _scratch.__dict__
    memory = store.get(name)
    if memory is None or memory.dtype != dtype or memory.size < size:
        memory = store[name] = np.empty(size, dtype=dtype)
    return memory[:size].reshape(shape)


def _to_columns(a, start, stop, groups):
    """a[start:stop] (S, O, Ho, Wo) as (G, O/G, S*Ho*Wo): the product's layout (copied into
    a scratch buffer unless S == 1)."""
    s, o = stop - start, a.shape[1]
    block = a[start:stop].reshape(s, o, -1)
    if s > 1:
        out = _buffer("block", (o, s, block.shape[2]), a.dtype)
        out[...] = block.transpose(1, 0, 2)
        block = out
    return block.reshape(groups, o // groups, -1)


def _dense(x_shape, w_shape, padding, dilation, groups):
    """Whether the kernel covers the whole (unpadded) input, one output position per plane:
    the column matrix is then the input itself, (N, C*kh*kw), and the convolution a matrix
    product (DCGAN's last discriminator layer, its generator's first layer, k4 on 4x4 maps).
    The im2col loops cost a row per output row: for these 1x1 outputs a row per element
    (DCGAN's 64->1 k4 layer on 4x4 maps, batch 64, per call: forward 0.86 ms by the loops,
    0.08 ms as the product; backward 2.4 against 0.38 ms)."""
    return (groups == 1 and tuple(x_shape[2:]) == tuple(w_shape[2:])
            and all(p == (0, 0) for p in padding) and all(d == 1 for d in dilation))


def _product(a, b, shape):
    """a @ b into a new array of `shape` (its own memory, not a reshaped view: see
    _weight_grad)."""
    out = np.empty(shape, dtype=np.result_type(a, b))
    _matmul(a, b, out=out.reshape(a.shape[0], b.shape[1]))
    return out


def _direct(x_shape, w_shape, stride, padding, dilation, groups, dtype):
    """Whether conv_direct_cpu runs this convolution: 3x3 stride-1 layers of at most 16
    channels on maps of 32x32 and more, where its direct loops beat im2col + BLAS (CIFAR
    ResNet's first stage; measurements in its docstring)."""
    return (conv_direct_cpu.supports(dtype, w_shape, stride, padding, dilation, groups) is None
            and conv_direct_cpu.faster_than_im2col(x_shape, w_shape))


def _sample_shares(n):
    """The batch as one range on one thread; else two ranges per thread, which _run_chunks
    shares out (the direct kernels are single-threaded loops over whole sub-batches)."""
    threads = numba.get_num_threads()
    if threads == 1:
        return [(0, n)]
    size = -(-n // min(n, 2 * threads))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _place_product(weight, cols, y, start, stop):
    """y[start:stop] (S, O, Ho, Wo) = weight @ cols, the chunk's product (straight into y
    for one sample, else through a scratch buffer: the product is (O, S*Ho*Wo))."""
    s, o = stop - start, y.shape[1]
    groups = weight.shape[0]
    if s == 1:
        _matmul(weight, cols, out=y[start].reshape(groups, o // groups, -1))
        return
    product = _buffer("product", (groups, o // groups, cols.shape[2]), y.dtype)
    _matmul(weight, cols, out=product)
    y[start:stop] = product.reshape(o, s, -1).transpose(1, 0, 2).reshape(y[start:stop].shape)


def conv_forward(x, w, stride, padding, dilation, groups, out_size):
    """y (N, O, Ho, Wo) = the convolution of x (N, C, H, W) with w (O, C/G, kh, kw)."""
    x = np.ascontiguousarray(x)
    n, o = x.shape[0], w.shape[0]
    if n == 0:
        return np.empty((0, o, *out_size), dtype=x.dtype)
    if _dense(x.shape, w.shape, padding, dilation, groups):
        with _products_on(numba.get_num_threads()):
            return _product(x.reshape(n, -1), w.reshape(o, -1).T, (n, o, 1, 1))
    if _direct(x.shape, w.shape, stride, padding, dilation, groups, x.dtype):
        y = np.empty((n, o, *out_size), dtype=x.dtype)
        _run_chunks(_sample_shares(n), lambda start, stop: conv_direct_cpu.conv_forward(
            x[start:stop], w, stride, padding, dilation, groups, out_size,
            out=y[start:stop]))
        return y
    geometry = _geometry(x.shape, w.shape[2:], stride, padding, dilation, out_size)
    im2col, col2im = _column_maps(geometry)
    plane = out_size[0] * out_size[1]
    weight = np.ascontiguousarray(w).reshape(groups, o // groups, -1)
    y = np.empty((n, o, *out_size), dtype=x.dtype)

    def work(start, stop):
        s = stop - start
        cols = _buffer("cols", (groups, weight.shape[2], s * plane), x.dtype)
        im2col(x[start:stop].reshape(-1), s, cols.reshape(-1))
        _place_product(weight, cols, y, start, stop)

    _run_chunks(_chunks(n, plane, weight.shape[0] * weight.shape[2], x.itemsize), work)
    return y


def conv_input_grad(gy, w, x_shape, stride, padding, dilation, groups):
    """gx of x_shape, the adjoint in x: per chunk of samples, W^T @ gy into the (cached)
    columns, then col2im. (Also the transposed convolution's forward.)"""
    return conv_backward(shape_only(x_shape, gy.dtype), gy, w, stride, padding, dilation,
                         groups, need_w=False)[0]


def _weight_term(block, cols, transposed, w_shape):
    """A chunk's term of gw: an array of w_shape of its own, or, where `transposed`, of gw^T
    (G, C/G*kh*kw, O/G)."""
    if transposed:
        return _matmul(cols, block.transpose(0, 2, 1))
    term = np.empty(w_shape, dtype=cols.dtype)
    _matmul(block, cols.transpose(0, 2, 1), out=term.reshape(*block.shape[:2], -1))
    return term


def _weight_grad(terms, transposed, w_shape):
    """gw of w_shape, the sum of the chunks' terms (see _weight_term), in an array of its
    own: the engine copies a leaf's gradient that is a view of another array (a reshape of
    the sum was, for every convolution weight of every step: 8 ms a ResNet-18 step)."""
    total = terms[0]
    for term in terms[1:]:
        total += term
    if not transposed:
        return total
    gw = np.empty(w_shape, dtype=total.dtype)
    gw.reshape(total.shape[0], total.shape[2], total.shape[1])[...] = total.transpose(0, 2, 1)
    return gw


def _transposed_terms(n, plane):
    """Whether the weight gradient's terms are gw^T = cols @ gy^T: where the batch's columns
    are wide (N*Ho*Wo >= TRANSPOSED_FROM), OpenBLAS runs that orientation 1.3-1.7x faster
    on these shapes (64x392 @ 392x288 211 us, 288x392 @ 392x64 143 us); on narrow ones the
    final transpose of gw^T costs more than the product saves (ResNet-18's 512->512 3x3 on
    1x1 maps, batch 16: 33 ms against 7 ms)."""
    return n * plane >= TRANSPOSED_FROM


def _empty_batch_grads(x, w, dtype, need_x, need_w):
    """(gx, gw) of an empty batch: no samples, so zero for the weight."""
    return (np.empty(x.shape, dtype=dtype) if need_x else None,
            np.zeros(w.shape, dtype=dtype) if need_w else None)


def conv_backward(x, gy, w, stride, padding, dilation, groups, need_x=True, need_w=True):
    """(gx, gw) of the convolution y = conv(x, w), either None where not needed, in one pass
    over the chunks of samples: each chunk's gradient, laid out once as the products take
    it, is used by both while it is cached. gx: W^T @ gy into the columns, then col2im; gw:
    the sum over chunks of gy @ columns^T (columns of x, rebuilt by im2col). x (where gw is
    not needed) and w (where gx is not) may be shape_only stand-ins."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x) if need_w else x
    n, o = gy.shape[:2]
    if n == 0:
        return _empty_batch_grads(x, w, gy.dtype, need_x, need_w)
    if _dense(x.shape, w.shape, padding, dilation, groups):
        with _products_on(numba.get_num_threads()):
            g = gy.reshape(n, o)
            gx = _product(g, w.reshape(o, -1), x.shape) if need_x else None
            gw = _product(g.T, x.reshape(n, -1), w.shape) if need_w else None
        return gx, gw
    if _direct(x.shape, w.shape, stride, padding, dilation, groups, gy.dtype):
        return _direct_backward(x, gy, w, stride, padding, dilation, groups, need_x, need_w)
    geometry = _geometry(x.shape, w.shape[2:], stride, padding, dilation, gy.shape[2:])
    im2col, col2im = _column_maps(geometry)
    plane = gy.shape[2] * gy.shape[3]
    rows = x.shape[1] // groups * w.shape[2] * w.shape[3]
    if need_x:
        weight_t = np.ascontiguousarray(w).reshape(groups, o // groups, -1).transpose(0, 2, 1)
        gx = np.empty(x.shape, dtype=gy.dtype)
    else:
        gx = None
    transposed = _transposed_terms(n, plane)

    def work(start, stop):
        s = stop - start
        block = _to_columns(gy, start, stop, groups)
        cols = _buffer("cols", (groups, rows, s * plane), gy.dtype)
        if need_x:
            _matmul(weight_t, block, out=cols)
            col2im(cols.reshape(-1), s, gx[start:stop].reshape(-1))
        if need_w:
            im2col(x[start:stop].reshape(-1), s, cols.reshape(-1))
            return _weight_term(block, cols, transposed, w.shape)

    terms = _run_chunks(_chunks(n, plane, groups * rows, gy.itemsize), work)
    return gx, (_weight_grad(terms, transposed, w.shape) if need_w else None)


def _direct_backward(x, gy, w, stride, padding, dilation, groups, need_x, need_w):
    """conv_backward by conv_direct_cpu, on each share of the batch (see _sample_shares)."""
    gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None

    def work(start, stop):
        if need_x:
            conv_direct_cpu.conv_input_grad(gy[start:stop], w, x.shape, stride, padding,
                                            dilation, groups, out=gx[start:stop])
        if need_w:
            return conv_direct_cpu.conv_weight_grad(x[start:stop], gy[start:stop], w.shape,
                                                    stride, padding, dilation, groups)

    terms = _run_chunks(_sample_shares(gy.shape[0]), work)
    return gx, (sum(terms[1:], terms[0]) if need_w else None)


def conv_weight_grad(x, gy, w_shape, stride, padding, dilation, groups):
    """gw of w_shape alone (see conv_backward)."""
    return conv_backward(x, gy, shape_only(w_shape, gy.dtype), stride, padding, dilation,
                         groups, need_x=False)[1]


def shape_only(shape, dtype):
    """A stand-in for an array of which the backward functions need only the shape (the
    one not saved for backward): read-only, no memory of its own."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def conv_transpose_backward(x, gy, w, stride, padding, dilation, groups, need_x=True,
                            need_w=True):
    """(gx, gw) of the transposed convolution y = conv_input_grad(x, w, y.shape, ...), either
    None where not needed, in one pass over the chunks: gx = conv(gy, w) and gw = the sum of
    x @ columns(gy)^T share each chunk's columns of gy (one im2col, not two). x and w may be
    shape_only stand-ins where gw, respectively gx, is not needed."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x) if need_w else x
    n, o = x.shape[:2]
    if n == 0:
        return _empty_batch_grads(x, w, gy.dtype, need_x, need_w)
    if _dense(gy.shape, w.shape, padding, dilation, groups):
        with _products_on(numba.get_num_threads()):
            g = gy.reshape(n, -1)
            gx = _product(g, w.reshape(o, -1).T, x.shape) if need_x else None
            gw = _product(x.reshape(n, o).T, g, w.shape) if need_w else None
        return gx, gw
    geometry = _geometry(gy.shape, w.shape[2:], stride, padding, dilation, x.shape[2:])
    im2col, col2im = _column_maps(geometry)
    plane = x.shape[2] * x.shape[3]
    weight = np.ascontiguousarray(w).reshape(groups, o // groups, -1) if need_x else None
    gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None
    transposed = _transposed_terms(n, plane)
    rows = gy.shape[1] // groups * w.shape[2] * w.shape[3]

    def work(start, stop):
        s = stop - start
        cols = _buffer("cols", (groups, rows, s * plane), gy.dtype)
        im2col(gy[start:stop].reshape(-1), s, cols.reshape(-1))
        if need_x:
            _place_product(weight, cols, gx, start, stop)
        if need_w:
            return _weight_term(_to_columns(x, start, stop, groups), cols, transposed,
                                w.shape)

    terms = _run_chunks(_chunks(n, plane, groups * rows, gy.itemsize), work)
    return gx, (_weight_grad(terms, transposed, w.shape) if need_w else None)
