"""Batch norm on the CPU with Numba: training and eval, forward and backward, a channel at
a time.

The input is seen as (N, C, S), S the product of the spatial sizes: channel c is N
contiguous blocks of S elements, x[n, c, :]. The NumPy version in minifm/ops/norm.py is a
chain of whole-array operations (mean, subtract, square, mean, sqrt, multiply, add, and in
backward as many again), each writing a temporary as large as the input; here each
channel is finished while its blocks are in the cache, and the only arrays as large as
the input are the output (and the gradient in backward):

    training forward   mean, then the biased variance as the sum of (x - mean)^2 (two
                       passes, as PyTorch's CPU kernel: no cancellation), then
                       y = x * scale + shift with scale = rstd * weight and
                       shift = bias - mean * scale: three reads of the channel.
    eval forward       scale and shift from the running estimates, one pass.
    backward           dbias = sum(dy) and dweight = sum(dy * xhat) in one pass (xhat
                       recomputed from x, mean and rstd: forward keeps two numbers per
                       channel, not a copy of xhat); then, in training,
                       dx = rstd * weight * (dy - dbias / M - xhat * dweight / M),
                       M = N * S (the chain rule through the batch mean and variance);
                       in eval dx = dy * rstd * weight, in the same pass as the sums.

Statistics and sums are accumulated in float64. Channels are cut into one range per
thread (cpu_tasks.run_tasks), or run on the calling thread for small problems. (N, C)
inputs, where a channel is a strided column, go a row at a time instead (_forward_2d). fastmath
allows only reassociation (so sums vectorize) and fused multiply-add; NaN and infinity
propagate as in the NumPy version.

The running estimates are updated by the caller (minifm/ops/norm.py), in NumPy, from the
mean and biased variance returned here, exactly as the NumPy version does.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import run_tasks, task_range

_FASTMATH = {"reassoc", "contract"}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Time per element relative to ReLU's, for cpu_tasks (bench_split.py, (64, 32, H, W) forward +
# backward at two threads under OpenMP, split / serial, one run: 0.81-0.90 from 8 K to 64 K
# elements, 0.64-0.79 from 128 K).
WEIGHT = 4


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _stats_channels(x, eps, mean, var, rstd, c0, c1):
    """mean, biased variance and 1 / sqrt(var + eps) of channels c0..c1 of x (N, C, S)."""
    n_batch, size = x.shape[0], x.shape[2]
    count = n_batch * size
    for c in range(c0, c1):
        s = 0.0
        for n in range(n_batch):
            row = x[n, c]
            for j in range(size):
                s += row[j]
        m = s / count
        v = 0.0
        for n in range(n_batch):
            row = x[n, c]
            for j in range(size):
                d = row[j] - m
                v += d * d
        mean[c] = m
        var[c] = v / count
        rstd[c] = 1.0 / np.sqrt(v / count + eps)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _forward_channels(x, eps, weight, bias, training, mean, var, rstd, scale, y, c0, c1):
    """Channels c0..c1: the statistics (in training), then y = x * a + b with the
    channel's a = rstd * weight and b = bias - mean * a, rounded to x's dtype (`scale`, of
    x's dtype, holds them) so that the loop runs in that dtype."""
    if training:
        _stats_channels(x, eps, mean, var, rstd, c0, c1)
    n_batch, size = x.shape[0], x.shape[2]
    for c in range(c0, c1):
        scale[c, 0] = rstd[c] * weight[c]
        scale[c, 1] = bias[c] - mean[c] * rstd[c] * weight[c]
        a, b = scale[c, 0], scale[c, 1]
        for n in range(n_batch):
            row, out = x[n, c], y[n, c]
            for j in range(size):
                out[j] = row[j] * a + b


@njit(parallel=True, cache=True)
def _forward_shared(tasks, rows, *args):
    """_forward_channels on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _forward_channels(*args, start, stop)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _backward_channels(g, x, mean, rstd, weight, training, need_dx, scale, dx, dweight,
                       dbias, c0, c1):
    """Channels c0..c1: the two sums, then dx (`scale`, of x's dtype, holds each channel's
    constants so that the loop runs in that dtype)."""
    n_batch, size = x.shape[0], x.shape[2]
    count = n_batch * size
    for c in range(c0, c1):
        m, rs, w = mean[c], rstd[c], weight[c]
        sum_g = 0.0   # dbias
        sum_gx = 0.0  # dweight: sum of dy * xhat
        for n in range(n_batch):
            gr, xr = g[n, c], x[n, c]
            for j in range(size):
                sum_g += gr[j]
                sum_gx += gr[j] * ((xr[j] - m) * rs)
        dbias[c] = sum_g
        dweight[c] = sum_gx
        if not need_dx:
            continue
        k = rs * w
        scale[c, 0] = k
        if not training:
            k_ = scale[c, 0]
            for n in range(n_batch):
                gr, out = g[n, c], dx[n, c]
                for j in range(size):
                    out[j] = k_ * gr[j]
            continue
        # dx = k (dy - mean(dy) - xhat mean(dy xhat)) with xhat = (x - m) rs, that is
        # dx = k dy + x a + b with the channel's constants a and b
        mean_g, mean_gx = sum_g / count, sum_gx / count
        scale[c, 1] = -k * mean_gx * rs
        scale[c, 2] = k * (mean_gx * rs * m - mean_g)
        k_, a, b = scale[c, 0], scale[c, 1], scale[c, 2]
        for n in range(n_batch):
            gr, xr, out = g[n, c], x[n, c], dx[n, c]
            for j in range(size):
                out[j] = k_ * gr[j] + (xr[j] * a + b)


@njit(parallel=True, cache=True)
def _backward_shared(tasks, rows, *args):
    """_backward_channels on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _backward_channels(*args, start, stop)


# (N, C) inputs (S = 1): a channel is a column, one element per 4 or 8 bytes of stride C,
# so going a channel at a time reads a whole cache line per element (measured at (4096,
# 256) float32, forward + backward: 128 ms a channel at a time, 28 ms NumPy, 70 ms
# PyTorch). These go a row at a time instead, accumulating every channel's sums in a row
# of float64, vectorized across the channels; on the calling thread.
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _forward_2d(x, eps, weight, bias, training, mean, var, rstd, scale, y):
    n_batch, channels = x.shape
    if training:
        acc = np.zeros(channels)
        for n in range(n_batch):
            row = x[n]
            for c in range(channels):
                acc[c] += row[c]
        for c in range(channels):
            mean[c] = acc[c] / n_batch
            acc[c] = 0.0
        for n in range(n_batch):
            row = x[n]
            for c in range(channels):
                d = row[c] - mean[c]
                acc[c] += d * d
        for c in range(channels):
            var[c] = acc[c] / n_batch
            rstd[c] = 1.0 / np.sqrt(acc[c] / n_batch + eps)
    a, b = scale[0], scale[1]  # rows of x's dtype
    for c in range(channels):
        a[c] = rstd[c] * weight[c]
        b[c] = bias[c] - mean[c] * rstd[c] * weight[c]
    for n in range(n_batch):
        row, out = x[n], y[n]
        for c in range(channels):
            out[c] = row[c] * a[c] + b[c]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_2d(g, x, mean, rstd, weight, training, need_dx, scale, dx, dweight, dbias):
    n_batch, channels = x.shape
    sum_g, sum_gx = np.zeros(channels), np.zeros(channels)
    for n in range(n_batch):
        gr, xr = g[n], x[n]
        for c in range(channels):
            sum_g[c] += gr[c]
            sum_gx[c] += gr[c] * ((xr[c] - mean[c]) * rstd[c])
    dbias[:] = sum_g
    dweight[:] = sum_gx
    if not need_dx:
        return
    k, a, b = scale[0], scale[1], scale[2]  # rows of x's dtype
    for c in range(channels):
        k[c] = rstd[c] * weight[c]
        a[c] = -k[c] * (sum_gx[c] / n_batch) * rstd[c] if training else 0.0
        b[c] = (k[c] * ((sum_gx[c] / n_batch) * rstd[c] * mean[c] - sum_g[c] / n_batch)
                if training else 0.0)
    for n in range(n_batch):
        gr, xr, out = g[n], x[n], dx[n]
        for c in range(channels):
            out[c] = k[c] * gr[c] + (xr[c] * a[c] + b[c])


def supports(dtype):
    """None when the kernels can run this problem, else the reason they cannot."""
    if dtype not in _DTYPES:
        return f"the Numba batch norm kernel takes float32 or float64, got {dtype}"
    return None


def _as_3d(where, a):
    """a (N, C, *) as a C-contiguous (N, C, S) array (a copy only if a is not contiguous)."""
    if a.dtype not in _DTYPES or a.ndim < 2:
        raise TypeError(f"{where}: expected a float32 or float64 array of shape (N, C, *), got "
                        f"{a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def _param(p, channels, fill):
    """A (C,) float64 parameter, or `fill` everywhere for an absent one."""
    return np.full(channels, fill) if p is None else p.astype(np.float64)


def batch_norm_forward(x, weight, bias, eps, training, running_mean=None, running_var=None):
    """(y, mean, biased var, rstd) of batch norm over x (N, C, *), the statistics of shape
    (C,) in float64: the batch's own in training, the running estimates in eval (var is
    then None)."""
    x3 = _as_3d("batch_norm forward", x)
    channels = x3.shape[1]
    if training:
        mean, var, rstd = np.empty(channels), np.empty(channels), np.empty(channels)
    else:
        mean, var = running_mean.astype(np.float64), None
        rstd = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    y = np.empty_like(x3)
    args = (x3, float(eps), _param(weight, channels, 1.0), _param(bias, channels, 0.0),
            bool(training), mean, np.empty(channels) if var is None else var, rstd)
    if x3.shape[2] == 1:
        rows = (x3.shape[0], channels)
        _forward_2d(x3.reshape(rows), *args[1:], np.empty((2, channels), x3.dtype),
                    y.reshape(rows))
        return y.reshape(x.shape), mean, var, rstd
    args = args + (np.empty((channels, 2), x3.dtype), y)
    run_tasks(_forward_channels, _forward_shared, channels, x3.size * WEIGHT, *args)
    return y.reshape(x.shape), mean, var, rstd


def batch_norm_backward(g, x, mean, rstd, weight, training, need_dx=True):
    """(dx or None, dweight, dbias) from g = dL/dy, given the forward's input and the
    statistics it used; dweight and dbias in float64."""
    x3, g3 = _as_3d("batch_norm backward", x), _as_3d("batch_norm backward", g)
    if g3.shape != x3.shape:
        raise ValueError(f"batch_norm backward: gradient of shape {g.shape} for input of "
                         f"shape {x.shape}")
    g3 = g3.astype(x3.dtype, copy=False)
    channels = x3.shape[1]
    dx = np.empty_like(x3) if need_dx else np.empty((0, channels, 1), x3.dtype)
    dweight, dbias = np.empty(channels), np.empty(channels)
    if x3.shape[2] == 1:
        rows = (x3.shape[0], channels)
        _backward_2d(g3.reshape(rows), x3.reshape(rows), mean, rstd,
                     _param(weight, channels, 1.0), bool(training), bool(need_dx),
                     np.empty((3, channels), x3.dtype), dx.reshape(dx.shape[0], channels),
                     dweight, dbias)
        return (dx.reshape(x.shape) if need_dx else None), dweight, dbias
    args = (g3, x3, mean, rstd, _param(weight, channels, 1.0), bool(training), bool(need_dx),
            np.empty((channels, 3), x3.dtype), dx, dweight, dbias)
    run_tasks(_backward_channels, _backward_shared, channels, x3.size * WEIGHT, *args)
    return (dx.reshape(x.shape) if need_dx else None), dweight, dbias
