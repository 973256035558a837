"""Softmax and log-softmax over the last axis on the CPU with Numba, forward and backward.

The NumPy version in minifm/ops/activation.py makes a whole-array pass per step (max,
subtract, exp, sum, divide), each through memory. Here each row of the (rows, cols) input
is handled while it is in the cache:

    softmax      y = exp(x - max) / sum(exp(x - max));  dx = y * (dy - sum(dy * y))
    log_softmax  y = (x - max) - log(sum(exp(x - max)));  dx = dy - exp(y) * sum(dy)

exp is cpu_exp.exp_inplace (vectorized arithmetic; libm's exp is a scalar call per
element), valid for the arguments here, which are <= 0. Sums are accumulated in float64.
fastmath allows only reassociation and fused multiply-add, so -inf and NaN behave as in
the NumPy version: a row of all -inf gives NaN (-inf - -inf), as in PyTorch. Rows are cut
into one range per thread, or run on the calling thread for small problems (cpu_tasks).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_exp import INT_VIEW, exp_constants, exp_inplace
from .cpu_tasks import run_in_ranges, task_range

_FASTMATH = {"reassoc", "contract"}


@njit(cache=True)
def _row_max(row):
    """max(row) with four independent running maxima: one chain of comparisons waits on
    each previous one, four overlap. (A NaN anywhere makes the softmax row NaN whatever
    this returns.)"""
    m0 = m1 = m2 = m3 = row[0]
    n4 = row.shape[0] - row.shape[0] % 4
    for j in range(0, n4, 4):
        m0, m1 = max(m0, row[j]), max(m1, row[j + 1])
        m2, m3 = max(m2, row[j + 2]), max(m3, row[j + 3])
    for j in range(n4, row.shape[0]):
        m0 = max(m0, row[j])
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _forward_rows(x, log, int_view, c, y, r0, r1):
    cols = x.shape[1]
    e = np.empty(cols, x.dtype)  # exp(x - max) of a row
    e_bits, exponent = e.view(int_view), np.empty(cols, int_view)
    for r in range(r0, r1):
        m = _row_max(x[r])
        for j in range(cols):
            e[j] = x[r, j] - m
        if log:
            y[r] = e
        exp_inplace(e, e_bits, exponent, c)
        s = 0.0
        for j in range(cols):
            s += e[j]
        if log:
            log_s = np.log(s)
            for j in range(cols):
                y[r, j] -= log_s
        else:
            for j in range(cols):
                y[r, j] = e[j] / s


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_rows(g, y, log, int_view, c, dx, r0, r1):
    cols = y.shape[1]
    p = np.empty(cols, y.dtype)  # log_softmax: exp(y) of a row
    p_bits, exponent = p.view(int_view), np.empty(cols, int_view)
    for r in range(r0, r1):
        s = 0.0
        if log:
            for j in range(cols):
                s += g[r, j]
            p[:] = y[r]
            exp_inplace(p, p_bits, exponent, c)
            for j in range(cols):
                dx[r, j] = g[r, j] - p[j] * s
        else:
            for j in range(cols):
                s += g[r, j] * y[r, j]
            for j in range(cols):
                dx[r, j] = y[r, j] * (g[r, j] - s)


@njit(parallel=True, cache=True)
def _forward(x, log, int_view, c, y, tasks):
    for t in prange(tasks):
        r0, r1 = task_range(t, tasks, x.shape[0])
        _forward_rows(x, log, int_view, c, y, r0, r1)


@njit(parallel=True, cache=True)
def _backward(g, y, log, int_view, c, dx, tasks):
    for t in prange(tasks):
        r0, r1 = task_range(t, tasks, y.shape[0])
        _backward_rows(g, y, log, int_view, c, dx, r0, r1)


def supports(dtype, last_axis, contiguous, cols):
    """None when the kernels can run this problem (cols: the length of the softmax axis),
    else the reason they cannot."""
    if dtype not in INT_VIEW:
        return f"the Numba softmax kernel takes float32 or float64, got {dtype}"
    if not last_axis:
        return "the Numba softmax kernel works over the last axis only"
    if not contiguous:
        return "the Numba softmax kernel takes C-contiguous arrays"
    if cols == 0:
        return "the Numba softmax kernel needs a non-empty softmax axis"
    return None


def _check(name, *arrays):
    for a in arrays:
        if a.dtype not in INT_VIEW or not a.flags.c_contiguous or a.ndim != 2 or not a.shape[1]:
            raise TypeError(f"{name}: expected C-contiguous 2-D float32 or float64 arrays with "
                            f"at least one column, got {a.dtype} of shape {a.shape}")


def softmax_forward(x, log=False):
    """softmax (or log_softmax when log) of each row of x (rows, cols)."""
    _check("softmax forward", x)
    y = np.empty_like(x)
    run_in_ranges(_forward_rows, _forward, y, x, bool(log), INT_VIEW[x.dtype],
                  exp_constants(x.dtype))
    return y


def softmax_backward(g, y, log=False):
    """dL/dx from g = dL/dy, given softmax_forward's output y."""
    g = np.ascontiguousarray(g, dtype=y.dtype)
    _check("softmax backward", g, y)
    dx = np.empty_like(y)
    run_in_ranges(_backward_rows, _backward, dx, g, y, bool(log), INT_VIEW[y.dtype],
                  exp_constants(y.dtype))
    return dx
