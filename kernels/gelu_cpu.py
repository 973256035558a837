"""Exact GELU on the CPU with Numba, forward and backward, for float32.

    forward   y  = x Phi(x)
    backward  dx = dy (Phi(x) + x phi(x)),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

Phi is the standard normal CDF. The NumPy version (minifm/ops/activation.py with the erf of
minifm/ops/special.py) makes about fifteen passes over the whole array, each through
memory; here each chunk of CHUNK elements is finished while it is in the cache, and
backward recomputes Phi instead of keeping it, as PyTorch does (one activation less).

Phi comes from erfc, with special.py's float32 fit (Numerical Recipes, 2nd ed., 6.2,
fractional error below 1.2e-7): for z = |x| / sqrt(2) and t = 1 / (1 + z / 2),
erfc(z) = t exp(poly(t) - z^2), and Phi(x) = erfc(z) / 2 for x < 0, 1 - erfc(z) / 2
otherwise. Taking the small side from erfc keeps the left tail: 0.5 (1 + erf(x / sqrt 2)),
PyTorch's formula, cancels to 0 from x = -5.5 on in float32, while here the relative error
only grows as x^2 times float32's rounding (from rounding z^2: 8e-6 at x = -13), until
the result leaves float32's normal range near x = -13.1 and is flushed to -0. exp is
cpu_exp.exp_inplace; its arguments here are at most poly(1), a few 1e-8.

float64 is left to the NumPy version, whose erf (Cody's) is accurate to float64; this fit
is not.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .cpu_exp import exp_constants, exp_inplace
from .cpu_tasks import run_in_ranges, task_range

_FASTMATH = {"contract"}
CHUNK = 4096  # elements per step: its scratch rows (16 KB each) stay in the L2 cache
# Time per element relative to ReLU's, for cpu_tasks (bench_split.py, forward + backward at
# two threads under OpenMP, split / serial, one run: 1.15 at 8 K elements, 1.03 at 16 K, 0.92
# at 32 K, 0.63-0.77 above).
WEIGHT = 4

# Numerical Recipes' coefficients of poly(t), lowest degree first (as in special.py).
_NR = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
       -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _gelu_constants():
    """The kernels' constants as float32, so the arithmetic stays in float32 (a Python
    float literal would promote every lane to float64)."""
    return np.array((1 / math.sqrt(2), 0.5, 1.0, 1 / math.sqrt(2 * math.pi)) + _NR,
                    dtype=np.float32)


_CONSTANTS = (_gelu_constants(), exp_constants(np.dtype(np.float32)))  # made once, not per call


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _normal_cdf(x, k, t, cdf, c):
    """cdf[i] = Phi(x[i]) for one chunk; t is scratch of the same length."""
    inv_sqrt2, half, one = k[0], k[1], k[2]
    p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 = k[4:]
    for i in range(x.shape[0]):
        z = abs(x[i]) * inv_sqrt2
        ti = one / (one + half * z)
        t[i] = ti
        cdf[i] = (p0 + ti * (p1 + ti * (p2 + ti * (p3 + ti * (p4 + ti * (p5 + ti * (
            p6 + ti * (p7 + ti * (p8 + ti * p9))))))))) - z * z
    exp_inplace(cdf, c)
    for i in range(x.shape[0]):
        half_erfc = half * t[i] * cdf[i]
        cdf[i] = half_erfc if x[i] < 0 else one - half_erfc


# The chunk loops index slices from 0, not the whole arrays at s + i: Numba cannot tell that
# s + i is not negative, checks it for wraparound on every access, and the loop is then
# not vectorized (measured: 6x slower).
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _forward_range(x, k, c, y, start, stop):
    t, cdf = np.empty(CHUNK, x.dtype), np.empty(CHUNK, x.dtype)
    for s in range(start, stop, CHUNK):
        n = min(s + CHUNK, stop) - s
        x_s, y_s, cdf_s = x[s:s + n], y[s:s + n], cdf[:n]
        _normal_cdf(x_s, k, t[:n], cdf_s, c)
        for i in range(n):
            y_s[i] = x_s[i] * cdf_s[i]


@njit(parallel=True, cache=True)
def _forward_shared(tasks, rows, *args):
    """_forward_range on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _forward_range(*args, start, stop)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _backward_range(g, x, k, c, dx, start, stop):
    half, inv_sqrt_2pi = k[1], k[3]
    t, cdf = np.empty(CHUNK, x.dtype), np.empty(CHUNK, x.dtype)
    pdf = np.empty(CHUNK, x.dtype)
    for s in range(start, stop, CHUNK):
        n = min(s + CHUNK, stop) - s
        x_s, g_s, dx_s = x[s:s + n], g[s:s + n], dx[s:s + n]
        cdf_s, pdf_s = cdf[:n], pdf[:n]
        _normal_cdf(x_s, k, t[:n], cdf_s, c)
        for i in range(n):
            pdf_s[i] = -half * x_s[i] * x_s[i]
        exp_inplace(pdf_s, c)
        for i in range(n):
            dx_s[i] = g_s[i] * (cdf_s[i] + x_s[i] * inv_sqrt_2pi * pdf_s[i])


@njit(parallel=True, cache=True)
def _backward_shared(tasks, rows, *args):
    """_backward_range on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _backward_range(*args, start, stop)


def supports(dtype, approximate):
    """None when the kernels can run this problem, else the reason they cannot."""
    if approximate != "none":
        return f"the Numba GELU kernel computes exact GELU only, not approximate={approximate!r}"
    if dtype != np.float32:
        return (f"the Numba GELU kernel takes float32, got {dtype} (float64 runs Cody's erf "
                "in the NumPy version)")
    return None


def _flat(where, name, a):
    """a as a contiguous 1-D float32 array (a copy only if a is not contiguous)."""
    if a.dtype != np.float32:
        raise TypeError(f"{where}: expected float32 arrays, got {name} of dtype {a.dtype} "
                        f"and shape {a.shape}")
    return np.ascontiguousarray(a).reshape(-1)


def gelu_forward(x):
    """x * Phi(x), elementwise, for a float32 array of any shape."""
    flat = _flat("gelu forward", "x", x)
    y = np.empty_like(flat)
    run_in_ranges(_forward_range, _forward_shared, y, flat, *_CONSTANTS, weight=WEIGHT)
    return y.reshape(x.shape)


def gelu_backward(g, x):
    """dL/dx from g = dL/dy and the forward's input x (same shapes)."""
    if g.shape != x.shape:
        raise ValueError(f"gelu backward: gradient of shape {g.shape} for input of shape "
                         f"{x.shape}")
    flat_x, flat_g = _flat("gelu backward", "x", x), _flat("gelu backward", "grad", g)
    dx = np.empty_like(flat_x)
    run_in_ranges(_backward_range, _backward_shared, dx, flat_g, flat_x, *_CONSTANTS,
                  weight=WEIGHT)
    return dx.reshape(x.shape)
