"""Softmax and log-softmax over the last axis on the CPU with Numba, forward and backward.

The NumPy version in minifm/ops/activation.py makes a whole-array pass per step (max,
subtract, exp, sum, divide), each through memory. Here the (rows, cols) input is done a
block of rows at a time (BLOCK elements, in the L2 cache while it is worked on):

    softmax      y = exp(x - max) / sum(exp(x - max));  dx = y * (dy - sum(dy * y))
    log_softmax  y = (x - max) - log(sum(exp(x - max)));  dx = dy - exp(y) * sum(dy)

exp is cpu_exp.exp_inplace (vectorized arithmetic; libm's exp is a scalar call per
element), valid for the arguments here, which are <= 0. It runs once per block, not once
per row: its two loops then stay vectorized over thousands of elements, where rows of 128
left them short (measured on (768, 128) float32, one thread: 120 us of exp per row, 70 us
per block; the whole forward went from 3.6x PyTorch's time to 1.7x). Sums are accumulated
in float64. fastmath allows only reassociation and fused multiply-add, so -inf and NaN
behave as in the NumPy version: a row of all -inf gives NaN (-inf - -inf), as in PyTorch.
Rows are cut into one range per thread, or run on the calling thread for small problems
(cpu_tasks).

Small inputs: the kernels are faster than the NumPy version at every size measured, down
to one row of 8 (forward of (16, 16) float32: 5-7 us against NumPy's 26-36 us, PyTorch
2 us), once the call passes no NumPy type object: Numba types a class argument (np.int32,
to view the bits) by a slow generic path, ~6 us a call, the "dispatch cost" that
made small softmaxes slow. An empty integer array carries that type instead. So no size
sends small inputs to NumPy.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_exp import INT_VIEW, exp_constants, exp_inplace
from .cpu_tasks import run_in_ranges, task_range

_FASTMATH = {"reassoc", "contract"}
BLOCK = 4096  # elements per block of rows (a row longer than this is a block alone)
# Time per element relative to ReLU's, for cpu_tasks (bench_split.py, rows of 128, forward +
# backward at two threads under OpenMP, split / serial, one run: 1.10-1.32 at 8-16 K
# elements, 0.85 at 32 K, 0.55-0.84 above).
WEIGHT = 2
# Per dtype, made once: _row_max's integer key constants in the integer type of its width
# (a NumPy type passed to a Numba function is typed by a slow path, measured ~6 us a call;
# this array's dtype types the view of x's bits instead), and exp_inplace's constants.
_ROW_MAX_KEYS = {dtype: np.array([8 * np.dtype(ints).itemsize - 1, np.iinfo(ints).max,
                                  np.iinfo(ints).min], ints)
                 for dtype, ints in INT_VIEW.items()}
_EXP_CONSTANTS = {dtype: exp_constants(dtype) for dtype in INT_VIEW}


@njit(cache=True)
def _row_max(x_bits, r, keys):
    """The bits of max(row r), from the row's bits x_bits[r] (x viewed as integers). A
    float's bits b, as the integer b ^ ((b >> shift) & mask), order as the floats do (a
    negative float's magnitude bits are flipped), and LLVM vectorizes an integer max; it
    left every float form of this loop scalar (float32 (128, 128): 5.0 -> 3.1 us). The
    inverse map is the same map. A NaN gives its row NaN whatever this returns (its exp,
    and so the row's sum, is NaN); -0.0 orders below +0.0, which changes no result."""
    shift, mask, key = keys[0], keys[1], keys[2]
    for j in range(x_bits.shape[1]):
        b = x_bits[r, j]
        key = max(key, b ^ ((b >> shift) & mask))
    return key ^ ((key >> shift) & mask)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _forward_rows(x, log, ints, c, y, r0, r1):
    """Rows r0..r1, a block at a time: exp(x - max) of the block's rows into scratch, one
    exp_inplace over the block, then each row's sum, and y = e / sum (softmax) or
    (x - max) - log(sum) (log_softmax). ints: _row_max's constants, in the integer type of
    x's width.

    The loops index 2-D arrays (x[r, j]) rather than row slices, and each row's scale goes
    through `per_row` (x's dtype) rather than a float64 scalar: a slice of a slice, or a
    float64 factor, left these loops scalar (float32 (128, 128), one thread: 31 -> 19 us)."""
    cols = x.shape[1]
    per_block = max(1, BLOCK // cols)
    e = np.empty((per_block, cols), x.dtype)
    m = np.empty(per_block, x.dtype)
    m_bits, x_bits = m.view(ints.dtype), x.view(ints.dtype)
    per_row = np.empty(per_block, x.dtype)  # 1 / sum, or log(sum), in x's dtype
    for b in range(r0, r1, per_block):
        rows = min(b + per_block, r1) - b
        for i in range(rows):
            m_bits[i] = _row_max(x_bits, b + i, ints)
            mi = m[i]
            for j in range(cols):
                e[i, j] = x[b + i, j] - mi
        eb = e.reshape(per_block * cols)[:rows * cols]
        exp_inplace(eb, c)
        for i in range(rows):
            s = 0.0
            for j in range(cols):
                s += np.float64(e[i, j])
            if log:
                per_row[i] = np.log(s)
                shift, mi = per_row[i], m[i]
                for j in range(cols):
                    y[b + i, j] = (x[b + i, j] - mi) - shift
            else:
                per_row[i] = 1.0 / s
                scale = per_row[i]
                for j in range(cols):
                    y[b + i, j] = e[i, j] * scale


@njit(parallel=True, cache=True)
def _forward_shared(tasks, rows, *args):
    """_forward_rows on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _forward_rows(*args, start, stop)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _backward_rows(g, y, log, c, dx, r0, r1):
    """softmax: dx = y (g - sum(g y)) row by row; log_softmax: exp(y) of a block of rows
    into dx by one exp_inplace, then dx = g - exp(y) sum(g) per row. Indexing and the row
    sums in y's dtype as in _forward_rows."""
    cols = y.shape[1]
    s_ = np.empty(1, y.dtype)
    if not log:
        for r in range(r0, r1):
            s = 0.0
            for j in range(cols):
                s += np.float64(g[r, j]) * np.float64(y[r, j])
            s_[0] = s
            sr = s_[0]
            for j in range(cols):
                dx[r, j] = y[r, j] * (g[r, j] - sr)
        return
    per_block = max(1, BLOCK // cols)
    for b in range(r0, r1, per_block):
        rows = min(b + per_block, r1) - b
        p = dx[b:b + rows].reshape(rows * cols)
        p[:] = y[b:b + rows].reshape(rows * cols)
        exp_inplace(p, c)
        for i in range(b, b + rows):
            s = 0.0
            for j in range(cols):
                s += np.float64(g[i, j])
            s_[0] = s
            sr = s_[0]
            for j in range(cols):
                dx[i, j] = g[i, j] - dx[i, j] * sr


@njit(parallel=True, cache=True)
def _backward_shared(tasks, rows, *args):
    """_backward_rows on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _backward_rows(*args, start, stop)


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
        if a.dtype not in INT_VIEW or not a.flags.c_contiguous or not a.ndim or not a.shape[-1]:
            raise TypeError(f"{name}: expected C-contiguous float32 or float64 arrays with a "
                            f"non-empty last axis, got {a.dtype} of shape {a.shape}")


def _rows(a):
    """a C-contiguous array as (rows, last axis), the kernels' layout (2-D as it is)."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def softmax_forward(x, log=False):
    """softmax (or log_softmax when log) over the last axis of x, each row in turn."""
    _check("softmax forward", x)
    y = np.empty_like(x)
    run_in_ranges(_forward_rows, _forward_shared, _rows(y), _rows(x), bool(log),
                  _ROW_MAX_KEYS[x.dtype], _EXP_CONSTANTS[x.dtype], weight=WEIGHT)
    return y


def softmax_backward(g, y, log=False):
    """dL/dx from g = dL/dy, given softmax_forward's output y."""
    g = np.ascontiguousarray(g, dtype=y.dtype)
    _check("softmax backward", g, y)
    if g.shape != y.shape:
        raise ValueError(f"softmax backward: gradient of shape {g.shape} for an output of "
                         f"shape {y.shape}")
    dx = np.empty_like(y)
    run_in_ranges(_backward_rows, _backward_shared, _rows(dx), _rows(g), _rows(y), bool(log),
                  _EXP_CONSTANTS[y.dtype], weight=WEIGHT)
    return dx
