"""Matrix products on minifm's threads: each thread multiplies a block of rows (or batch
entries) through NumPy's OpenBLAS, itself on one thread.

Why not OpenBLAS's own threads: minifm's other kernels share their work among the threads
of Numba's OpenMP layer (cpu_tasks), whose workers spin for a while after each parallel
loop waiting for the next; OpenBLAS's threads spin after each product too. With both pools
awake on a 2-core machine, each took cores the other was waiting on: a GPT training step
(4 layers, width 128, batch 12 x 64) at two threads took 124 ms, against 79-83 ms with
Numba's sleeping workqueue threads and OpenBLAS's. Here the products run on the OpenMP pool
too, one pool, one spin: the same step in alternating rounds against the commit before
(workqueue, OpenBLAS's threads), 76-87 ms against 79-115, 1.40-1.63x PyTorch's time
against 1.77-2.09x (`bash benchmarks/compare_commits.sh d57ad96 HEAD 3 2`).

The cut: a product of at least SPLIT_FROM multiply-adds is cut into one contiguous block of
output rows per thread, each block one gemm call (blas_cpu.gemm, called from compiled code:
no return to Python, no GIL). The threads share B; each packs its own copy of it, which
OpenBLAS's threads would share, a cost that is small against the product from this size.
A batched product (b, m, k) @ (b, k, n) is cut into blocks of whole batch entries where
there are at least as many entries as threads, else into row blocks of each entry. Smaller
products run whole on the calling thread. Operands may be C-contiguous or transposes of
C-contiguous arrays (x.T and swapaxes(x, -1, -2) are read as they lie, through gemm's
transpose flags); other layouts are copied first.

With one thread, or where NumPy's OpenBLAS is not found, a product is NumPy's matmul.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .blas_cpu import NO_TRANS, TRANS, gemm, gemm_address, one_blas_thread, pointer
from .cpu_tasks import task_range, threads

# Multiply-adds from which a product is cut among threads: `python benchmarks/bench_matmul.py`
# (two threads, cut / whole, two runs): 1.18-1.61 up to 512 K, 0.85-1.22 from 1 M to 4 M,
# 0.51-0.77 from 12 M (a GPT linear layer's (768, 128) @ (128, 128)).
SPLIT_FROM = 1 << 22
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def supports(dtype):
    """None when the kernel can run this problem, else the reason it cannot."""
    if dtype not in _DTYPES:
        return f"the Numba matmul kernel takes float32 or float64, got {dtype}"
    if not gemm_address(dtype):
        return "NumPy's BLAS is not the OpenBLAS minifm can call from compiled code"
    return None


@njit(parallel=True, cache=True)
def _blocks_product(address, a, trans_a, b, trans_b, out, k, alpha, beta, tasks, by_batch):
    """out[e] = op(a[e]) @ op(b[e]) for every batch entry e, in `tasks` blocks: of whole
    entries where by_batch, else of the rows of every entry (entries x row blocks). a and b
    are C-contiguous 3-d arrays as they lie in memory (op transposes where trans_* is
    TRANS); out is (entries, m, n), C-contiguous."""
    entries, m, n = out.shape
    a_rows, b_rows = a.shape[1] * a.shape[2], b.shape[1] * b.shape[2]
    if by_batch:
        for task in prange(tasks):
            first, last = task_range(task, tasks, entries)
            for e in range(first, last):
                gemm(address, trans_a, trans_b, m, n, k, alpha, pointer(a, e * a_rows),
                     a.shape[2], pointer(b, e * b_rows), b.shape[2], beta,
                     pointer(out, e * m * n), n)
    else:
        per_entry = tasks // entries
        for task in prange(tasks):
            e = task // per_entry
            start, stop = task_range(task % per_entry, per_entry, m)
            if start == stop:  # an empty last range (see task_range)
                continue
            offset = start * a.shape[2] if trans_a == NO_TRANS else start
            gemm(address, trans_a, trans_b, stop - start, n, k, alpha,
                 pointer(a, e * a_rows + offset), a.shape[2], pointer(b, e * b_rows),
                 b.shape[2], beta, pointer(out, e * m * n + start * n), n)


def _as_stored(x):
    """(array as it lies in memory, C-contiguous; NO_TRANS or TRANS) for a 3-d operand."""
    if x.flags.c_contiguous:
        return x, NO_TRANS
    flipped = x.swapaxes(-1, -2)
    if flipped.flags.c_contiguous:
        return flipped, TRANS
    return np.ascontiguousarray(x), NO_TRANS


def matmul(a, b, out=None):
    """a @ b for 2-d operands, or 3-d ones with the same batch size, of one float dtype;
    written into `out` (C-contiguous, of the product's shape and dtype) where given."""
    count = threads()
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    entries = a.shape[0] if a.ndim == 3 else 1
    address = gemm_address(a.dtype) if a.dtype == b.dtype else 0
    if count == 1 or not address or (out is not None and out.dtype != a.dtype):
        return np.matmul(a, b, out=out)
    if entries * m * n * k < SPLIT_FROM or (out is not None and not out.flags.c_contiguous):
        with one_blas_thread():  # OpenBLAS's threads would wake and spin (see above)
            return np.matmul(a, b, out=out)
    by_batch = entries >= count
    tasks = min(entries, count) if by_batch else entries * min(m, count)
    a3, b3 = (a, b) if a.ndim == 3 else (a[None], b[None])
    a_stored, trans_a = _as_stored(a3)
    b_stored, trans_b = _as_stored(b3)
    if out is None:
        out = np.empty((*a.shape[:-1], n), dtype=a.dtype)
    one = a.dtype.type(1)
    with one_blas_thread():
        _blocks_product(address, a_stored, trans_a, b_stored, trans_b,
                        out.reshape(entries, m, n), k, one, one - one, tasks, by_batch)
    return out
