"""Winograd F(2x2, 3x3) convolution on the CPU (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", 2016): 3x3 stride-1 layers, float32 and float64; forward
and input gradient. A measured negative result: slower than the im2col kernels (conv_cpu)
on every benchmarked layer but one noisy run, so nothing dispatches to it; it is kept,
tested, as the benchmark's Winograd column and the numbers below.

The output is cut into 2x2 tiles; tile t of channel c reads the 4x4 input patch d at
(2*ti - top, 2*tj - left). With B^T, G, A^T the F(2x2, 3x3) matrices below,

    U[xi, nu, o, c] = (G g[o, c] G^T)[xi, nu]                 (filter transform, NumPy)
    V[xi, nu, c, t] = (B^T d B)[xi, nu]                       (input transform, Numba)
    M[xi, nu]       = U[xi, nu] @ V[xi, nu]                   (16 products, one np.matmul)
    y[o, tile t]    = A^T M[:, :, o, t] A                     (output transform, Numba)

so each output pair of a tile costs 16 multiply-adds per input channel where the direct
convolution costs 36 (2.25x fewer), and the products are BLAS's (O x C @ C x tiles). The
three steps run over chunks of samples of about TILES tiles, so V and M (16 * channels *
TILES values each) stay in the cache between the transforms and the product. The
transforms work on whole rows: the input transform first combines the patch's 4 input rows
(contiguous, vectorized), then each tile's 4 columns; the output transform the reverse.

The input gradient is the same convolution of gy with the flipped, transposed filter
(padding 2 - padding on each side).

Numerics: the transforms' coefficients are 0, +-1 and +-1/2, so F(2x2, 3x3) loses at most a
few ulps against the direct sum (the tests hold it to PyTorch's float32 tolerances).

Measured (benchmarks/bench_conv_methods.py, one thread, Intel Xeon 2.8 GHz AVX-512, 2 cores
shared with other jobs; results/conv_methods.md), forward / im2col forward over 3-8 runs:
1.0-1.3 on CIFAR ResNet's 16->16 32x32 (8.8 against 8.9 ms at best; PyTorch 5.8),
1.13-1.29 on 32->32 16x16, 1.2-1.4 on 64->64 8x8, 0.76-1.22 on ResNet-18's 64->64 16x16
b16, 1.3-1.4 on 128->128 8x8; the input gradient alike. Where the time goes, per batch (16->16 32x32 b64 / 64->64
8x8 b64): input transform 3.2-3.7 / 2.8 ms, the 16 products 1.9 / 2.3 ms, output transform
2.0-2.2 / 1.7 ms. The products do 2.25x fewer multiply-adds than im2col's, but as 16 thin
ones (16x16 @ 16x256 runs at ~59 GFLOP/s, 64x64 @ 64x256 at ~61), and the transforms, which
read and write 4x the input and output (16 values per 2x2 tile), cost more than the
products: 12-14 ns per tile and channel in the input transform. Their tile loops are short
(4-16 tiles a row: at most two 8-wide vectors), read with stride 2 and write 16 streams
that LLVM's vector versions must check for aliasing at run time. A variant splitting the
padded plane by row and column parity first, so that every load is contiguous, was slower
(input transform 15.6 ms). oneDNN's Winograd fuses hand-vectorized transforms with the
products; matching it would take explicit SIMD transforms, which Numba does not offer.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit

from .conv_direct_cpu import supports_3x3

_JIT = dict(cache=True, nogil=True, fastmath=True, error_model="numpy")
TILES = 256  # tiles per chunk: V and M, 16 * channels * TILES values each, fit L2 to C = 64

# Every size the loops take is uint64 (the wrappers pass np.uint64) and so are the constants
# in their index arithmetic: Numba checks signed indices for wraparound (see conv_cpu), types
# uint64 + int literal as int64 and uint64 * int64 as float64.
_1, _2, _3, _4, _5, _6, _7, _8 = (np.uint64(k) for k in range(1, 9))

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


@njit(**_JIT)
def _input_transform(x, samples, c, h, w, top, left, th, tw, rows, v):
    """v (flat 16 x c x samples*th*tw) = B^T d B of every tile's 4x4 patch d of x (flat
    samples x c x h x w, zero outside). rows: scratch of 8 * (2*tw + 2) values."""
    width = _2 * tw + _2
    tiles = samples * th * tw
    stream = c * tiles  # the distance between consecutive (xi, nu) in v
    r0, r1, r2, r3 = rows[:width], rows[width:_2 * width], rows[_2 * width:_3 * width], \
        rows[_3 * width:_4 * width]
    t0, t1, t2, t3 = rows[_4 * width:_5 * width], rows[_5 * width:_6 * width], \
        rows[_6 * width:_7 * width], rows[_7 * width:_8 * width]
    # the patch columns j (0..width) that lie in the input: [j_lo, j_hi)
    j_lo = min(left, width)
    j_hi = max(min(w + left, width), j_lo)
    for s in range(samples):
        for ch in range(c):
            plane = (s * c + ch) * h * w
            for ti in range(th):
                for k in range(_4):  # the patch's 4 rows, zero outside the input
                    r = rows[k * width:(k + _1) * width]
                    i = _2 * ti + k  # in padded coordinates
                    if i < top or i >= h + top:
                        r[:] = 0
                        continue
                    src = plane + (i - top) * w - left
                    r[:j_lo] = 0
                    for j in range(j_lo, j_hi):
                        r[j] = x[src + j]
                    r[j_hi:] = 0
                for j in range(width):  # B^T d: rows r0 - r2, r1 + r2, r2 - r1, r1 - r3
                    t0[j] = r0[j] - r2[j]
                    t1[j] = r1[j] + r2[j]
                    t2[j] = r2[j] - r1[j]
                    t3[j] = r1[j] - r3[j]
                base = ch * tiles + (s * th + ti) * tw
                for k in range(_4):  # (B^T d) B: the same on each tile's 4 columns
                    t = rows[(_4 + k) * width:(_5 + k) * width]
                    out = v[_4 * k * stream + base:]
                    for tj in range(tw):
                        a = t[_2 * tj]
                        b = t[_2 * tj + _1]
                        e = t[_2 * tj + _2]
                        f = t[_2 * tj + _3]
                        out[tj] = a - e
                        out[stream + tj] = b + e
                        out[_2 * stream + tj] = e - b
                        out[_3 * stream + tj] = b - f


@njit(**_JIT)
def _output_transform(m, samples, o, ho, wo, th, tw, rows, y):
    """y (flat samples x o x ho x wo) = A^T M A of every tile of m (flat 16 x o x
    samples*th*tw), cropped to ho x wo. rows: scratch of 2 * 2*tw values."""
    tiles = samples * th * tw
    stream = o * tiles
    width = _2 * tw
    top_row, bottom_row = rows[:width], rows[width:_2 * width]
    s1, s2, s3, s4 = stream, _2 * stream, _3 * stream, _4 * stream
    s5, s6, s7, s8 = s4 + s1, s4 + s2, s4 + s3, s4 + s4
    s9, s10, s11, s12 = s8 + s1, s8 + s2, s8 + s3, s8 + s4
    s13, s14, s15 = s12 + s1, s12 + s2, s12 + s3
    for s in range(samples):
        for oc in range(o):
            for ti in range(th):
                base = oc * tiles + (s * th + ti) * tw
                for tj in range(tw):
                    p = base + tj
                    m00, m01, m02, m03 = m[p], m[p + s1], m[p + s2], m[p + s3]
                    m10, m11, m12, m13 = m[p + s4], m[p + s5], m[p + s6], m[p + s7]
                    m20, m21, m22, m23 = m[p + s8], m[p + s9], m[p + s10], m[p + s11]
                    m30, m31, m32, m33 = m[p + s12], m[p + s13], m[p + s14], m[p + s15]
                    # A^T M: rows 0 + 1 + 2 and 1 - 2 - 3
                    u0, u1, u2, u3 = m00 + m10 + m20, m01 + m11 + m21, m02 + m12 + m22, \
                        m03 + m13 + m23
                    l0, l1, l2, l3 = m10 - m20 - m30, m11 - m21 - m31, m12 - m22 - m32, \
                        m13 - m23 - m33
                    # (A^T M) A: columns 0 + 1 + 2 and 1 - 2 - 3
                    top_row[_2 * tj] = u0 + u1 + u2
                    top_row[_2 * tj + _1] = u1 - u2 - u3
                    bottom_row[_2 * tj] = l0 + l1 + l2
                    bottom_row[_2 * tj + _1] = l1 - l2 - l3
                dst = (s * o + oc) * ho * wo + _2 * ti * wo
                for j in range(wo):
                    y[dst + j] = top_row[j]
                if _2 * ti + _1 < ho:
                    for j in range(wo):
                        y[dst + wo + j] = bottom_row[j]


def supports(dtype, w_shape, stride, padding, dilation, groups):
    """None when these kernels can run the 2-d convolution, else why not (the direct
    kernels' conditions: conv_direct_cpu.supports_3x3)."""
    return supports_3x3("the Winograd convolution", dtype, w_shape, stride, padding, dilation,
                        groups)


def filter_transform(w):
    """U (16, O, C) = G w[o, c] G^T for every filter, (xi, nu) flattened."""
    g = _G.astype(w.dtype)
    u = np.einsum("ia,ocab,jb->ijoc", g, w, g, optimize=True)
    return np.ascontiguousarray(u.reshape(16, *w.shape[:2]))


_scratch = threading.local()


def _buffer(name, size, dtype):
    """A flat scratch array of `size` for the calling thread, reused across calls (see
    conv_cpu._buffer: fresh pages fault in on first write)."""
    store = _scratch.__dict__
    memory = store.get(name)
    if memory is None or memory.dtype != dtype or memory.size < size:
        memory = store[name] = np.empty(size, dtype=dtype)
    return memory[:size]


def conv_forward(x, w, stride, padding, dilation, groups, out_size):
    """y (N, O, Ho, Wo) = the convolution of x (N, C, H, W) with w (O, C, 3, 3), stride 1
    (the arguments as conv_cpu.conv_forward's; see `supports`)."""
    x = np.ascontiguousarray(x)
    n, c, h, w_ = x.shape
    o = w.shape[0]
    ho, wo = out_size
    th, tw = -(-ho // 2), -(-wo // 2)
    u = filter_transform(np.asarray(w, dtype=x.dtype))
    y = np.empty((n, o, ho, wo), dtype=x.dtype)
    chunk = max(1, min(n, TILES // (th * tw)))
    rows = _buffer("rows", 8 * (2 * tw + 2), x.dtype)
    sizes = [np.uint64(v) for v in (c, h, w_, padding[0][0], padding[1][0], th, tw)]
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    for start in range(0, n, chunk):
        s = min(chunk, n - start)
        tiles = s * th * tw
        v = _buffer("v", 16 * c * tiles, x.dtype)
        m = _buffer("m", 16 * o * tiles, x.dtype)
        _input_transform(flat_x[start * c * h * w_:], np.uint64(s), *sizes, rows, v)
        np.matmul(u, v.reshape(16, c, tiles), out=m.reshape(16, o, tiles))
        _output_transform(m, np.uint64(s), *[np.uint64(k) for k in (o, ho, wo, th, tw)], rows,
                          flat_y[start * o * ho * wo:])
    return y


def conv_input_grad(gy, w, x_shape, stride, padding, dilation, groups):
    """gx of x_shape: the convolution of gy with the flipped, transposed filter, padded by
    2 - padding on each side."""
    (top, bottom), (left, right) = padding
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=gy.dtype)
    return conv_forward(gy, flipped, (1, 1), ((2 - top, 2 - bottom), (2 - left, 2 - right)),
                        (1, 1), 1, tuple(x_shape[2:]))


# ------------------------------------------------------------------ NumPy reference
_BT = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0],
                [0.0, 1.0, 0.0, -1.0]])
_AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


def reference_forward(x, w, padding, out_size):
    """F(2x2, 3x3) in NumPy on the whole batch (the tests' oracle for the loops): the tiles'
    4x4 patches as a strided view of the padded input, the transforms as einsums."""
    (top, _), (left, _) = padding
    n, c, h, wd = x.shape
    ho, wo = out_size
    th, tw = -(-ho // 2), -(-wo // 2)
    padded = np.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    rows, cols = min(h, 2 * th + 2 - top), min(wd, 2 * tw + 2 - left)
    padded[:, :, top:top + rows, left:left + cols] = x[:, :, :rows, :cols]
    patches = np.lib.stride_tricks.sliding_window_view(padded, (4, 4), axis=(2, 3))
    patches = patches[:, :, ::2, ::2]  # (N, C, th, tw, 4, 4)
    bt, at = _BT.astype(x.dtype), _AT.astype(x.dtype)
    v = np.einsum("ia,nctjab,kb->ikcntj", bt, patches, bt).reshape(16, c, -1)
    m = filter_transform(np.asarray(w, dtype=x.dtype)) @ v  # (16, O, N*th*tw)
    m = m.reshape(4, 4, -1, n, th, tw)
    y = np.einsum("pi,ikontj,qk->notpjq", at, m, at).reshape(n, -1, 2 * th, 2 * tw)
    return np.ascontiguousarray(y[:, :, :ho, :wo])
