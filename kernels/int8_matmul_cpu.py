"""The integer product of dynamic int8 quantization on the CPU with Numba.

    out[m, n] = sum_k (a[m, k] - a_zero) * b[n, k]        (int32)

a is an activation quantized to uint8 with zero point a_zero (per tensor, affine), b a
weight quantized to int8 (per output channel, symmetric: no zero point), both with K
contiguous, so each output is one dot product of two contiguous rows. The sum is exact in
int32: |a - a_zero| <= 255 and |b| <= 128, so a row of K terms overflows only beyond
K = 2^31 / (255 * 128) ~ 65,000, which `supports` refuses.

The zero point is taken out of the loop: sum_k (a - z) b = sum_k a b - z sum_k b, where
sum_k b[n, k] is computed once per call. What remains is a product of uint8 and int8 lanes:
each product fits int16 (255 * 128 < 2^15), so the loop multiplies in int16 and adds in
int32, which LLVM vectorizes (pmaddwd-style); rows of `a` are shared among threads.
Written with int32 products throughout, Numba widens the sum to int64 and the loop
measured 1.3x slower.
The result equals minifm/quantization/int8_matmul.py's NumPy reference exactly.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import run_in_ranges, task_range

MAX_K = (2 ** 31 - 1) // (255 * 128)


def supports(dtype_a=None, dtype_b=None, k=0, **_):
    """None if the kernel can take these inputs, else why not."""
    if dtype_a != np.uint8 or dtype_b != np.int8:
        return f"needs uint8 activations and int8 weights, got {dtype_a} and {dtype_b}"
    if k > MAX_K:
        return f"an inner dimension of {k} could overflow int32 (at most {MAX_K})"
    return None


@njit(cache=True)
def _row_sums(b):
    """sum_k b[n, k] in int32 (NumPy's b.sum(axis=1, dtype=int32) took 90 us for a
    512 x 128 weight, ten times the product itself at one row of a)."""
    sums = np.zeros(b.shape[0], dtype=np.int32)
    for n in range(b.shape[0]):
        for k in range(b.shape[1]):
            sums[n] += b[n, k]
    return sums


@njit(cache=True, nogil=True)
def _rows(a, a_zero, b, b_sums, out, start, stop):
    """Rows start .. stop of out."""
    n_out, k_in = b.shape
    for m in range(start, stop):
        for n in range(n_out):
            acc = np.int32(0)
            for k in range(k_in):
                acc = np.int32(acc + np.int16(a[m, k]) * np.int16(b[n, k]))
            out[m, n] = acc - a_zero * b_sums[n]


@njit(parallel=True, cache=True)
def _rows_shared(tasks, rows, *args):
    """_rows on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _rows(*args, start, stop)


def int8_matmul(a, a_zero, b):
    """(a - a_zero) @ b.T in int32, for a (M, K) uint8 and b (N, K) int8."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    b_sums = _row_sums(b)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    # Work: K multiply-adds an output, each weighed as a sixteenth of a ReLU element. Two
    # threads under OpenMP, split / serial at K = 128, N = 512 (`python
    # benchmarks/bench_split.py --kernels int8_matmul`, one run on this noisy VM): 4 rows 0.96,
    # 8 rows 0.91, 16 rows 0.86, 32 rows 0.85, 64-512 rows 0.58-0.69; so from 32 rows.
    run_in_ranges(_rows, _rows_shared, out, a, np.int32(a_zero), b, b_sums,
                  weight=max(1, a.shape[1] // 16))
    return out
