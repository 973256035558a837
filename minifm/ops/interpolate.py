"""Resizing of (N, C, ...) images: torch.nn.functional.interpolate."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function


def _xp(array):
    return backend.array_module(backend.device_of_array(array))


def _nearest_source(size, out, scale, exact):
    """The input position each of `out` output positions reads (PyTorch's nearest_idx and
    nearest_exact_idx, including their float32 arithmetic, so edge cases round alike):
    floor(j * scale) or floor((j + 0.5) * scale), where scale = 1/scale_factor if one was
    given, else size/out. Plain 'nearest' copies when out == size and halves when
    out == 2*size, whatever the scale factor."""
    j = np.arange(out)
    if not exact and out == size:
        return j
    if not exact and out == 2 * size:
        return j // 2
    scale = np.float32(1.0 / scale) if scale is not None else np.float32(size) / np.float32(out)
    if exact:
        position = ((j + 0.5) * np.float64(scale)).astype(np.float32)
    else:
        position = j.astype(np.float32) * scale
    return np.minimum(np.floor(position).astype(np.int64), size - 1)


class Nearest(Function):
    """y[n, c, i, j] = x[n, c, rows[i], cols[j]]; the gradient of x sums the gradients of the
    outputs that copied it: one_hot(rows)^T @ g @ one_hot(cols)."""

    @staticmethod
    def forward(ctx, x, *, rows, cols):
        ctx.rows, ctx.cols, ctx.in_hw = rows, cols, x.shape[2:]
        return x[:, :, rows[:, None], cols[None, :]]

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        a_h = (ctx.rows[:, None] == xp.arange(ctx.in_hw[0])).astype(g.dtype)
        a_w = (ctx.cols[:, None] == xp.arange(ctx.in_hw[1])).astype(g.dtype)
        return a_h.T @ g @ a_w


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """torch.nn.functional.interpolate for 4-D input with mode 'nearest' or 'nearest-exact'.
    Give exactly one of size (int or (Ho, Wo)) and scale_factor (float or pair)."""
    op = "interpolate"
    if mode not in ("nearest", "nearest-exact"):
        raise NotImplementedError(f"{op}: mode {mode!r} is not implemented (only 'nearest' and "
                                  "'nearest-exact')")
    if align_corners is not None:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating "
                         f"modes: linear | bilinear | bicubic | trilinear, not {mode!r}")
    if input.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {tuple(input.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    in_hw = input.shape[2:]
    if size is not None:
        out_hw = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        scales = (None, None)
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (
            scale_factor, scale_factor)
        if len(scales) != 2 or any(s <= 0 for s in scales):
            raise ValueError(f"{op}: scale_factor must be a positive number or pair, got "
                             f"{scale_factor!r}")
        out_hw = tuple(math.floor(n * s) for n, s in zip(in_hw, scales))
        if recompute_scale_factor:
            scales = (None, None)
    if len(out_hw) != 2 or any(n < 1 for n in out_hw):
        raise ValueError(f"{op}: output size {out_hw} for input of shape {tuple(input.shape)} "
                         "must hold two positive sizes")
    xp = _xp(input._data)
    rows, cols = (xp.asarray(_nearest_source(in_hw[i], out_hw[i], scales[i],
                                             mode == "nearest-exact")) for i in range(2))
    return Nearest.apply(input, rows=rows, cols=cols)
