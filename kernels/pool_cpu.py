"""2-D max pooling on the CPU with Numba (float32 and float64), forward and backward.

The NumPy reference (minifm/ops/pooling.py) pads the input with -inf (a copy), copies the
windows view into (N, C, Ho, Wo, kh*kw) (a copy kh*kw/(sh*sw) times the input's size), takes
argmax and then gathers; its backward builds a (N, C, Ho, Wo, kh*kw) one-hot gradient with
`where` and hands it to col2im (kh*kw strided adds over a padded buffer). Measured on the
benchmark's 2x2 pool (32 channels, 28x28, batch 64, one thread) that backward took about
twice PyTorch's whole forward+backward.

Here the forward reads each window once, in place, keeping the maximum and the offset of
its first maximum in the window (a*kw + b: the layout the reference saves, so the reference
backward can differentiate the same saved arrays again under create_graph); the backward is
one pass over the output gradient, adding each value at the input position its offset
names: no one-hot array, no padded buffer, no np.add.at. As PyTorch, a NaN counts as the
maximum, padding (implicit -inf) never wins, and a window of -inf values sends its gradient
to its first position inside the input. Threads split the batch (a sample's gradient planes
are written by one thread only, so overlapping windows need no atomics).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import run_in_ranges, task_range

# Time per window read (forward) or input element (backward) relative to a ReLU element's,
# for cpu_tasks (bench_split.py, 3x3 stride-2 pooling of (64, 32, H, W), forward + backward
# at two threads, split / serial, two runs on Python threads: 0.62-0.77 at 8x8, 0.53-0.83
# above; one under OpenMP: 0.77 at 2x2, 0.48-0.65 above).
WEIGHT = 4


@njit(cache=True, nogil=True)
def _forward_range(x, kh, kw, sh, sw, ph, pw, dh, dw, argmax, y, start, stop):
    """Samples start..stop: y[n, c, i, j] = the window's maximum, argmax its offset a*kw+b."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    ho, wo = y.shape[2], y.shape[3]
    for n in range(start, stop):
        for c in range(channels):
            for i in range(ho):
                for j in range(wo):
                    best = -np.inf
                    where = -1
                    for a in range(kh):
                        p = i * sh - ph + a * dh
                        if p < 0 or p >= h:
                            continue
                        for b in range(kw):
                            q = j * sw - pw + b * dw
                            if q < 0 or q >= w:
                                continue
                            v = x[n, c, p, q]
                            if where < 0 or v > best or (v != v and best == best):
                                best = v
                                where = a * kw + b
                    y[n, c, i, j] = best
                    argmax[n, c, i, j] = where


@njit(parallel=True, cache=True)
def _forward_shared(tasks, rows, *args):
    """_forward_range on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _forward_range(*args, start, stop)


@njit(cache=True, nogil=True)
def _backward_range(g, argmax, kw, sh, sw, ph, pw, dh, dw, gx, start, stop):
    """Samples start..stop of gx: each g[n, c, i, j] added at its window's argmax."""
    channels, ho, wo = g.shape[1], g.shape[2], g.shape[3]
    h, w = gx.shape[2], gx.shape[3]
    for n in range(start, stop):
        for c in range(channels):
            for p in range(h):
                for q in range(w):
                    gx[n, c, p, q] = 0
            for i in range(ho):
                for j in range(wo):
                    offset = argmax[n, c, i, j]
                    p = i * sh - ph + (offset // kw) * dh
                    q = j * sw - pw + (offset % kw) * dw
                    gx[n, c, p, q] += g[n, c, i, j]


@njit(parallel=True, cache=True)
def _backward_shared(tasks, rows, *args):
    """_backward_range on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _backward_range(*args, start, stop)


def supports(dtype, nd):
    """None when the kernels can run this problem, else the reason they cannot."""
    if nd != 2:
        return f"the Numba max-pooling kernel is 2-d; this pooling is {nd}-d"
    if dtype not in (np.float32, np.float64):
        return f"the Numba max-pooling kernel takes float32 or float64, got {dtype}"
    return None


def max_pool2d_forward(x, kernel, stride, pads, dilation, out_size):
    """(y, argmax) for x (N, C, H, W): argmax (int64, the reference's layout) is each
    window's first maximum as the offset a*kw + b in the window; pads are
    ((top, bottom), (left, right)) and only the leading sides matter."""
    x = np.ascontiguousarray(x)
    y = np.empty((*x.shape[:2], *out_size), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    # The work is a window per output (kh*kw reads), not an element: counted as the output
    # alone, ResNet-18's 3x3 pool at 32x32 inputs, batch 16 (65,536 outputs), ran on one
    # thread at two.
    run_in_ranges(_forward_range, _forward_shared, y, x, *kernel, *stride, pads[0][0],
                  pads[1][0], *dilation, argmax, weight=kernel[0] * kernel[1] * WEIGHT)
    return y, argmax


def max_pool2d_backward(g, argmax, x_shape, kernel, stride, pads, dilation):
    """gx of x_shape: every output gradient added at its window's maximum."""
    gx = np.empty(x_shape, dtype=g.dtype)
    run_in_ranges(_backward_range, _backward_shared, gx, np.ascontiguousarray(g), argmax,
                  kernel[1], *stride, pads[0][0], pads[1][0], *dilation, weight=WEIGHT)
    return gx
