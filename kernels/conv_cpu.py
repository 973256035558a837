"""2-D convolution on the CPU: Numba im2col/col2im over small chunks of samples around
BLAS matrix products (float32 and float64).

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

The copies are im2col_cpu's; each share of chunks runs as one compiled, GIL-free call
(conv_chunks_cpu), its products NumPy's OpenBLAS called from Numba (blas_cpu). Run from
Python, a chunk returned to the interpreter between its copies and products (~20 us a
chunk) and two threads waited on each other for the GIL: the CIFAR ResNet's 32-channel
16x16 layer, batch 64 (64 one-sample chunks), forward / backward at one thread 8.7 / 15.0
-> 5.6 / 10.7 ms, at two threads 6.9 / 12.6 -> 3.8 / 6.4 ms. Where NumPy's BLAS is not
that OpenBLAS, and where there are fewer chunks than threads, the same chunks run from
Python (_columns_chunk, _adjoint_chunk).

OpenBLAS runs one thread inside these kernels (blas_cpu.one_blas_thread); minifm's own
threads (Numba's count) do the sharing: each thread takes a contiguous share of the chunks,
copies and products alike, all shares in one Numba parallel loop (the passes' twins in
conv_chunks_cpu; cpu_tasks says why a parallel loop under OpenMP and not Python threads).
With fewer chunks than threads (one chunk: ResNet-18's 2x2 and 1x1 maps at batch 16, the
dense layers), the chunks run in order and each product's rows are cut among the threads
(matmul_cpu). OpenBLAS's own threads were given up for the products that run alone too:
after each product they spin, waiting for the next, and took the second core from what ran
next (a ResNet-18 step at two threads burned 213-227 ms of CPU for 109-115 ms of wall; cut
rows: 135-177 for 99-135). Sharing even the smallest layers pays: DCGAN's first
discriminator layer (2.1 M multiply-adds), forward + backward at two threads, 1.26 ms
shared against 1.43 ms on one thread (measured alternately in one process, on Python
threads, the design before; a threshold below which passes stay on one thread was dropped).

One _buffer call builds its shape's size with math.prod: np.prod took 3.8 us a call, about
3,000 calls a ResNet-20 step (a tenth of its convolution time in --profile).

Two kinds of layer leave the im2col loops: thin 3x3 stride-1 layers (at most 16 channels,
maps of 32x32 and more: CIFAR ResNet's first stage), whose products are too thin (16 rows)
for BLAS to run near its peak and whose columns are 9x the input, run conv_direct_cpu's
direct loops (on one thread, or on shares of the batch); and "dense" layers, whose kernel
covers the whole input, run as one matrix product (see _dense).
"""
from __future__ import annotations

import math
import threading

import numba
import numpy as np

from . import conv_chunks_cpu, conv_direct_cpu, matmul_cpu
from .blas_cpu import gemm_address, one_blas_thread
from .cpu_tasks import threads
from .im2col_cpu import add_columns, column_table, geometry as _geometry, to_columns

COLUMNS = 256  # the width of a chunk's column matrix: samples * Ho * Wo (see _chunks)
TRANSPOSED_FROM = 2048  # N * Ho * Wo from which the weight gradient is gw^T (see there)
CHUNK_BYTES = 1 << 19  # the most column matrix a chunk fills beyond COLUMNS (see _chunks)


def supports(dtype, nd):
    """None when the kernels can run this problem, else the reason they cannot. They are
    2-d; minifm/ops/conv.py hands them a 1-d problem as a 2-d one of height 1."""
    if nd not in (1, 2):
        return f"the Numba convolution kernels are 1-d and 2-d; this convolution is {nd}-d"
    if dtype not in (np.float32, np.float64):
        return f"the Numba convolution kernels take float32 or float64, got {dtype}"
    return None


def _chunks(n, plane, rows, itemsize):
    """Sample ranges whose columns are at least COLUMNS wide (a 4x4 map alone would make a
    product 16 columns wide, far below BLAS's efficient sizes) and, beyond that, fill up to
    CHUNK_BYTES of column matrix (rows x width): layers with few rows (one input channel:
    DCGAN's first discriminator layer, 16 rows) would otherwise run dozens of chunks whose
    Python costs more than their loops. Where Numba has several threads, chunks are cut so
    that each thread gets two, as long as they stay at least COLUMNS / threads wide
    (ResNet-18's 128-channel 4x4 layer at batch 16, fwd + bwd at two threads: 4.8 ms as one
    chunk with its products' rows cut among the threads, 2.4 ms as two half-width chunks,
    one per thread)."""
    size = max(1, -(-COLUMNS // plane), CHUNK_BYTES // (rows * plane * itemsize))
    count = threads()
    if count > 1:
        size = min(size, max(-(-COLUMNS // (plane * count)), n // (2 * count)))
    size = max(1, min(n, size))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _matmul(a, b, out=None):
    """a @ b (a, b and out: 2-d, or 3-d over the groups), into `out` where given: on
    minifm's threads, a large product cut among them (matmul_cpu)."""
    return matmul_cpu.matmul(a, b, out=out)


def _shares(chunks):
    """The chunks cut into one contiguous share per thread (Numba's thread count)."""
    per_share = -(-len(chunks) // threads())
    return [chunks[i:i + per_share] for i in range(0, len(chunks), per_share)]


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


def _block(a, start, stop, groups):
    """a[start:stop] (S, O, Ho, Wo) as (G, O/G, S*Ho*Wo): the product's layout (copied into
    a scratch buffer unless S == 1)."""
    s, o = stop - start, a.shape[1]
    block = a[start:stop].reshape(s, o, -1)
    if s > 1:
        out = _buffer("block", (o, s, block.shape[2]), a.dtype)
        out[...] = block.transpose(1, 0, 2)
        block = out
    return block.reshape(groups, o // groups, -1)


def _live_taps(in_size, kernel_size, stride, padding, dilation, out_size):
    """(index, padding): the kernel positions that meet the input at some output position,
    as an index of w (every position outside it meets only padding), and the padding of
    the cropped kernel; None where nothing can be cropped. ResNet-18's last stage at 32x32
    inputs runs 3x3 kernels on 1x1 maps: one live position of nine, and without the crop
    nine times the products and the weight traffic of the live one (512->512, batch 16, at
    one thread: forward 2.7 ms, backward 6.5 ms). The leading side is not cropped where
    that would need negative leading padding (a dilated kernel's live positions starting
    past the padding); the trailing side still is."""
    index, cropped_padding, crops = [slice(None), slice(None)], [], False
    for size, k, s, (lead, trail), d, out in zip(in_size, kernel_size, stride, padding,
                                                 dilation, out_size):
        live = [a for a in range(k) if _meets(size, out, s, a * d - lead)]
        first, last = (live[0], live[-1] + 1) if live else (0, k)
        if first * d > lead:
            first = 0
        index.append(slice(first, last))
        cropped_padding.append((lead - first * d, trail - (k - last) * d))
        crops = crops or (first, last) != (0, k)
    return (tuple(index), tuple(cropped_padding)) if crops else None


def _meets(size, out, stride, offset):
    """Whether some output position i < out reads input position i*stride + offset inside
    [0, size)."""
    first = max(0, -(offset // stride))  # the first i with i*stride + offset >= 0
    return first < out and first * stride + offset < size


def _on_live_taps(backward, x, gy, w, in_size, out_size, stride, padding, dilation, groups,
                  need_x, need_w):
    """(gx, gw) by `backward` (conv_backward or conv_transpose_backward) on w cropped to the
    kernel positions that meet the input (_live_taps: in_size is the size of the map the
    kernel slides over, out_size that of the other), gw back in w's shape; None where
    nothing is cropped."""
    crop = _live_taps(in_size, w.shape[2:], stride, padding, dilation, out_size)
    if crop is None:
        return None
    gx, gw = backward(x, gy, w[crop[0]], stride, crop[1], dilation, groups, need_x, need_w)
    return gx, _uncropped(gw, w.shape, crop[0])


def _uncropped(gw, w_shape, index):
    """The weight gradient of w_shape from that of the cropped kernel w[index] (None stays
    None): zero at the positions that meet only padding."""
    if gw is None:
        return None
    full = np.zeros(w_shape, dtype=gw.dtype)
    full[index] = gw
    return full


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
    crop = _live_taps(x.shape[2:], w.shape[2:], stride, padding, dilation, out_size)
    if crop is not None:
        return conv_forward(x, w[crop[0]], stride, crop[1], dilation, groups, out_size)
    if _dense(x.shape, w.shape, padding, dilation, groups):
        return _product(x.reshape(n, -1), w.reshape(o, -1).T, (n, o, 1, 1))
    if _direct(x.shape, w.shape, stride, padding, dilation, groups, x.dtype):
        return conv_direct_cpu.conv_forward(x, w, stride, padding, dilation, groups, out_size,
                                            tasks=threads())
    geometry = _geometry(x.shape, w.shape[2:], stride, padding, dilation, out_size)
    y = np.empty((n, o, *out_size), dtype=x.dtype)
    _run_pass("columns", x, np.ascontiguousarray(w).reshape(groups, o // groups, -1), y, None,
              w.shape, groups, geometry)
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
    """gw of w_shape, the sum of the terms (see _weight_term, each an array of its own),
    summed into the first, so that gw is an array of its own too: a leaf's gradient that is
    a view of another array is copied by the engine (a reshape of the sum was, for every
    convolution weight of every step: 8 ms a ResNet-18 step)."""
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
    cropped = _on_live_taps(conv_backward, x, gy, w, x.shape[2:], gy.shape[2:], stride,
                            padding, dilation, groups, need_x, need_w)
    if cropped is not None:
        return cropped
    if _dense(x.shape, w.shape, padding, dilation, groups):
        g = gy.reshape(n, o)
        gx = _product(g, w.reshape(o, -1), x.shape) if need_x else None
        gw = _product(g.T, x.reshape(n, -1), w.shape) if need_w else None
        return gx, gw
    if _direct(x.shape, w.shape, stride, padding, dilation, groups, gy.dtype):
        return _direct_backward(x, gy, w, stride, padding, dilation, groups, need_x, need_w)
    geometry = _geometry(x.shape, w.shape[2:], stride, padding, dilation, gy.shape[2:])
    gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None
    weight = np.ascontiguousarray(w).reshape(groups, o // groups, -1) if need_x else None
    return gx, _run_pass("adjoint", gy, weight, gx, x if need_w else None, w.shape, groups,
                         geometry)


def _direct_backward(x, gy, w, stride, padding, dilation, groups, need_x, need_w):
    """conv_backward by conv_direct_cpu, the batch shared among the threads there."""
    tasks = threads()
    gx = (conv_direct_cpu.conv_input_grad(gy, w, x.shape, stride, padding, dilation, groups,
                                          tasks=tasks) if need_x else None)
    gw = (conv_direct_cpu.conv_weight_grad(x, gy, w.shape, stride, padding, dilation, groups,
                                           tasks=tasks) if need_w else None)
    return gx, gw


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
    cropped = _on_live_taps(conv_transpose_backward, x, gy, w, gy.shape[2:], x.shape[2:],
                            stride, padding, dilation, groups, need_x, need_w)
    if cropped is not None:
        return cropped
    if _dense(gy.shape, w.shape, padding, dilation, groups):
        g = gy.reshape(n, -1)
        gx = _product(g, w.reshape(o, -1).T, x.shape) if need_x else None
        gw = _product(x.reshape(n, o).T, g, w.shape) if need_w else None
        return gx, gw
    geometry = _geometry(gy.shape, w.shape[2:], stride, padding, dilation, x.shape[2:])
    gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None
    weight = np.ascontiguousarray(w).reshape(groups, o // groups, -1) if need_x else None
    return gx, _run_pass("columns", gy, weight, gx, x if need_w else None, w.shape, groups,
                         geometry)


def _share_gemm_address(dtype, chunks):
    """The gemm address (blas_cpu) with which the chunks run as compiled shares
    (conv_chunks_cpu: no return to Python between chunks), or 0 where they run from Python:
    NumPy's OpenBLAS not found, Numba's compiler switched off (NUMBA_DISABLE_JIT: the
    passes would run as Python, without the intrinsic), or fewer chunks than threads (one
    chunk on two threads: the products' rows are then cut among the threads instead, by
    matmul_cpu)."""
    if len(chunks) < threads() or numba.config.DISABLE_JIT:
        return 0
    return gemm_address(dtype)


def _share_bounds(chunks):
    """The chunks as the compiled shares take them: `bounds`, every chunk boundary (int64),
    and `firsts`, the index in bounds where each thread's contiguous share of the chunks
    begins (the last entry: the end of the last share), so that share s runs the chunks
    between bounds[firsts[s]] and bounds[firsts[s + 1]]."""
    bounds = np.array([start for start, _ in chunks] + [chunks[-1][1]], dtype=np.int64)
    firsts = np.cumsum([0] + [len(share) for share in _shares(chunks)], dtype=np.int64)
    return bounds, firsts


def _pass_buffers(bounds, shares, plane, column_rows, block_rows, dtype):
    """Scratch buffers for the widest chunk, one row for each share: its columns, and its
    block (a gradient or product laid out (rows, samples * plane))."""
    width = int((bounds[1:] - bounds[:-1]).max()) * plane
    return (_buffer("cols", (shares, column_rows * width), dtype),
            _buffer("block", (shares, block_rows * width), dtype))


def _term_shape(w_shape, groups, transposed):
    """The shape of a weight-gradient term: w_shape, or gw^T's (G, C/G*kh*kw, O/G) where
    `transposed` (see _weight_term)."""
    if transposed:
        return (groups, math.prod(w_shape[1:]), w_shape[0] // groups)
    return tuple(w_shape)


def _grouped(terms, groups, transposed):
    """Terms (..., *term shape) as conv_chunks_cpu takes them: (..., G, O/G, K), or
    (..., G, K, O/G) where transposed."""
    if transposed:
        return terms
    lead, o = terms.shape[:-4], terms.shape[-4]
    return terms.reshape(*lead, groups, o // groups, -1)


def _run_pass(kind, source, weight, out, other, w_shape, groups, geometry):
    """One pass ("columns" or "adjoint", see _PASSES) over the chunks of samples of `source`
    (gy for the adjoint pass): as compiled shares (conv_chunks_cpu's pass, or its parallel
    twin for several threads) where _share_gemm_address allows, else the pass's Python
    chunk function chunk by chunk. `out` is filled where given; where `other` is (x for the
    adjoint pass), the weight gradient of w_shape is returned (else None). Arrays are
    (N, channels, H, W); weight is (G, O/G, K)."""
    compiled, shared, python_chunk = _PASSES[kind]
    n = source.shape[0]
    rows = w_shape[1] * w_shape[2] * w_shape[3]  # K, a group's rows of the column matrix
    plane = geometry[-2] * geometry[-1]
    table = column_table(geometry)
    transposed = _transposed_terms(n, plane)
    chunks = _chunks(n, plane, groups * rows, source.itemsize)
    address = _share_gemm_address(source.dtype, chunks)
    if not address:
        terms = [python_chunk(source, weight, out, other, w_shape, groups, geometry, table,
                              transposed, start, stop) for start, stop in chunks]
        return None if other is None else _weight_grad(terms, transposed, w_shape)
    nothing = _nothing(source.dtype)

    def flat(a):
        return nothing if a is None else a.reshape(n, a.shape[1], -1)

    bounds, firsts = _share_bounds(chunks)
    shares = len(firsts) - 1
    # the weight gradient's terms: one array for one share, else a term a row (or an empty
    # stand-in where there is no weight gradient)
    lead = () if shares == 1 else (shares,)
    if other is None:
        terms = nothing if shares == 1 else np.empty((shares, 0, 0, 0), source.dtype)
    else:
        terms = np.empty((*lead, *_term_shape(w_shape, groups, transposed)), source.dtype)
    cols, scratch = _pass_buffers(bounds, shares, plane, groups * rows, w_shape[0],
                                  source.dtype)
    arrays = (flat(source), nothing if out is None else weight, flat(out), flat(other))
    grouped = terms if other is None else _grouped(terms, groups, transposed)
    with one_blas_thread():
        if shares == 1:
            compiled(address, bounds, geometry, table, *arrays, grouped, transposed,
                     cols[0], scratch[0])
        else:
            shared(address, bounds, firsts, geometry, table, *arrays, grouped, transposed,
                   cols, scratch)
    if other is None:
        return None
    return _weight_grad([terms if shares == 1 else terms.sum(axis=0)], transposed, w_shape)


def _columns_chunk(source, weight, out, other, w_shape, groups, geometry, table, transposed,
                   start, stop):
    """conv_chunks_cpu.columns_pass on one chunk, from Python: the columns of source, then
    out = weight @ columns and the chunk's weight-gradient term of other @ columns^T
    (returned), each where its array is given."""
    s, plane = stop - start, geometry[-2] * geometry[-1]
    cols = _buffer("cols", (groups, w_shape[1] * w_shape[2] * w_shape[3], s * plane),
                   source.dtype)
    to_columns(source[start:stop].reshape(-1), s, geometry, table, cols.reshape(-1))
    if out is not None:
        _place_product(weight, cols, out, start, stop)
    if other is not None:
        return _weight_term(_block(other, start, stop, groups), cols, transposed, w_shape)
    return None


def _adjoint_chunk(gy, weight, gx, x, w_shape, groups, geometry, table, transposed, start,
                   stop):
    """conv_chunks_cpu.adjoint_pass on one chunk, from Python: gx = col2im(weight^T @ gy)
    and the chunk's weight-gradient term gy @ columns(x)^T (returned), each where its array
    is given."""
    s, plane = stop - start, geometry[-2] * geometry[-1]
    block = _block(gy, start, stop, groups)
    cols = _buffer("cols", (groups, w_shape[1] * w_shape[2] * w_shape[3], s * plane), gy.dtype)
    if gx is not None:
        _matmul(weight.transpose(0, 2, 1), block, out=cols)
        add_columns(cols.reshape(-1), s, geometry, table, gx[start:stop].reshape(-1))
    if x is not None:
        to_columns(x[start:stop].reshape(-1), s, geometry, table, cols.reshape(-1))
        return _weight_term(block, cols, transposed, w_shape)
    return None


_NOTHING = {}


def _nothing(dtype):
    """An empty (0, 0, 0) array of dtype: what the compiled passes get for an array they
    are not to compute or read."""
    if dtype not in _NOTHING:
        _NOTHING[dtype] = np.empty((0, 0, 0), dtype=dtype)
    return _NOTHING[dtype]


# each pass: (compiled share, its parallel twin, one chunk from Python)
_PASSES = {"columns": (conv_chunks_cpu.columns_pass, conv_chunks_cpu.columns_pass_shared,
                       _columns_chunk),
           "adjoint": (conv_chunks_cpu.adjoint_pass, conv_chunks_cpu.adjoint_pass_shared,
                       _adjoint_chunk)}
