"""Layer norm on the CPU with Numba: forward and backward, one pass over memory each.

The NumPy version in minifm/ops/norm.py is a chain of whole-array operations (mean,
subtract, square, mean, sqrt, multiply, ...), each writing a temporary of the input's
size. Here each row of the (rows, cols) input is read while it is in the cache:

    forward   mean and the biased variance by two passes over the row (the second sums
              (x - mean)^2, which has no cancellation), then y = xhat * weight + bias with
              xhat = (x - mean) * rstd.
    backward  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
              dxhat = dy * weight, with xhat recomputed from x, mean and rstd (forward
              saves two numbers per row, not a copy of xhat).

Row statistics are accumulated in float64 for float32 inputs too. The elementwise loops
then run in x's dtype: with float64 operands they converted every element and ran on half
the vector lanes (float32 forward + backward at (8, 256, 384): 0.62-0.74x the time, one
and two threads, `python benchmarks/compare_kernels.py 24a5aaa`). The mean goes to them as two numbers of x's dtype, its rounded
value and the rest (m_hi + m_lo), and x is centered as (x - m_hi) - m_lo: the first
difference is exact where x is near the mean, so a large offset (values 1e4 + N(0, 1))
is centered as accurately as in float64, where x - round(m) would be off by a rounding of
1e4 (5e-4). _centered has no reassociation, so that LLVM cannot fold the two subtractions
into x - (m_hi + m_lo). A float32 scalar comes from a small scratch array of x's dtype,
Numba's way to round one. dweight = sum over rows
of dy * xhat and dbias = sum of dy would be written by every row: each task (a contiguous
range of rows) sums into its own float64 row of a (tasks, cols) buffer, and the buffer is
reduced once at the end, so no two threads write one element. The ranges run as cpu_tasks
says (a prange over the tasks, each calling the one-thread loops), problems below
cpu_tasks.SERIAL_BELOW / WEIGHT elements as one range on the calling thread.

Numbers: fastmath allows only reassociation (so row sums vectorize) and fused
multiply-add; NaN and infinity propagate as in the NumPy version, and division by zero
(eps=0 on a constant row) gives infinity as in NumPy (error_model="numpy"), not an error.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import run_tasks, task_count, task_range

_FASTMATH = {"reassoc", "contract"}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Time per element relative to ReLU's, for cpu_tasks (bench_split.py, rows of 128, forward +
# backward at two threads under OpenMP, split / serial, one run: 1.11 at 8 K elements, 1.03
# at 16 K, 0.92 at 32 K, 0.89 at 64 K, 0.71-0.85 above).
WEIGHT = 2


@njit(cache=True, fastmath={"contract"})
def _centered(x, m_hi, m_lo):
    """x - m for m = m_hi + m_lo (see above); inlined by LLVM into the loops."""
    return (x - m_hi) - m_lo


@njit(cache=True)
def _in_x_dtype(scratch, mean, rstd):
    """(m_hi, m_lo, rstd) of a row in x's dtype (scratch's, three elements or more), with
    m_hi + m_lo = mean (see above)."""
    scratch[0] = mean
    scratch[1], scratch[2] = mean - scratch[0], rstd
    return scratch[0], scratch[1], scratch[2]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _forward_rows(x, weight, bias, eps, y, mean, rstd, r0, r1):
    cols = x.shape[1]
    row_stats = np.empty(3, x.dtype)  # m_hi, m_lo, rstd in x's dtype
    for r in range(r0, r1):
        s = 0.0
        for j in range(cols):
            s += x[r, j]
        m = s / cols
        v = 0.0
        for j in range(cols):
            d = x[r, j] - m
            v += d * d
        rs = 1.0 / np.sqrt(v / cols + eps)
        mean[r] = m
        rstd[r] = rs
        m_hi, m_lo, rs = _in_x_dtype(row_stats, m, rs)
        for j in range(cols):
            y[r, j] = _centered(x[r, j], m_hi, m_lo) * rs * weight[j] + bias[j]


@njit(parallel=True, cache=True)
def _forward_shared(tasks, rows, *args):
    """_forward_rows on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _forward_rows(*args, start, stop)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _backward_rows(g, x, mean, rstd, weight, need_dx, dx, dweight_part, dbias_part, r0, r1):
    cols = x.shape[1]
    row_stats = np.empty(5, x.dtype)  # m_hi, m_lo, rstd, mean(dxhat), mean(dxhat * xhat)
    for r in range(r0, r1):
        m_hi, m_lo, rs = _in_x_dtype(row_stats, mean[r], rstd[r])
        sum_g = 0.0   # sum of dxhat
        sum_gx = 0.0  # sum of dxhat * xhat
        for j in range(cols):
            xhat = _centered(x[r, j], m_hi, m_lo) * rs
            dweight_part[j] += g[r, j] * xhat
            dbias_part[j] += g[r, j]
            gxhat = g[r, j] * weight[j]
            sum_g += gxhat
            sum_gx += gxhat * xhat
        if need_dx:
            row_stats[3], row_stats[4] = sum_g / cols, sum_gx / cols
            mean_g, mean_gx = row_stats[3], row_stats[4]
            for j in range(cols):
                xhat = _centered(x[r, j], m_hi, m_lo) * rs
                dx[r, j] = rs * (g[r, j] * weight[j] - mean_g - xhat * mean_gx)


@njit(parallel=True, cache=True)
def _backward_shared(tasks, rows, g, x, mean, rstd, weight, need_dx, dx, dweight_parts,
                     dbias_parts):
    """_backward_rows on `tasks` contiguous ranges of rows at once, each task summing its
    weight and bias gradients into its own row of dweight_parts and dbias_parts."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _backward_rows(g, x, mean, rstd, weight, need_dx, dx, dweight_parts[task],
                       dbias_parts[task], start, stop)


def supports(dtype, cols):
    """None when the kernel can run this problem (cols: the number of normalized
    elements per row), else the reason it cannot."""
    if dtype not in _DTYPES:
        return f"the Numba layer_norm kernel takes float32 or float64, got {dtype}"
    if cols == 0:
        return "the Numba layer_norm kernel needs at least one normalized element"
    return None


def _params(weight, bias, cols, dtype):
    """weight and bias as arrays: ones and zeros stand in for absent ones, so that one
    compiled kernel serves every case."""
    weight = np.ones(cols, dtype) if weight is None else np.ascontiguousarray(weight.reshape(-1))
    bias = np.zeros(cols, dtype) if bias is None else np.ascontiguousarray(bias.reshape(-1))
    return weight, bias


def layer_norm_forward(x, weight, bias, eps):
    """Layer norm of x (rows, cols) over its columns. Returns y (x's dtype) and the
    float64 mean and rstd of each row, which backward takes."""
    rows, cols = x.shape
    x = np.ascontiguousarray(x)
    weight, bias = _params(weight, bias, cols, x.dtype)
    y = np.empty_like(x)
    mean, rstd = np.empty(rows), np.empty(rows)
    run_tasks(_forward_rows, _forward_shared, rows, rows * cols * WEIGHT, x, weight, bias,
              float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(g, x, mean, rstd, weight, need_dx=True):
    """(dx or None, dweight, dbias) from g = dL/dy, for layer_norm_forward's x, mean and
    rstd; dweight and dbias have shape (cols,) and are computed whether or not a weight
    and bias were given."""
    rows, cols = x.shape
    g = np.ascontiguousarray(g, dtype=x.dtype)
    x = np.ascontiguousarray(x)
    weight, _ = _params(weight, None, cols, x.dtype)
    dx = np.empty_like(x) if need_dx else np.empty((0, 0), x.dtype)
    tasks = task_count(rows, rows * cols * WEIGHT)
    dweight_parts, dbias_parts = np.zeros((tasks, cols)), np.zeros((tasks, cols))
    args = (g, x, mean, rstd, weight, bool(need_dx), dx, dweight_parts, dbias_parts)
    if tasks == 1:
        _backward_rows(*args[:-2], dweight_parts[0], dbias_parts[0], 0, rows)
    else:
        _backward_shared(tasks, rows, *args)
    return (dx if need_dx else None, dweight_parts.sum(axis=0).astype(x.dtype),
            dbias_parts.sum(axis=0).astype(x.dtype))
