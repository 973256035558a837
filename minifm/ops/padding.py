"""Padding: torch.nn.functional.pad, in its four modes.

'constant' writes the input into a block filled with `value` (its gradient is the matching
slice of the output's gradient). The other modes only choose which input position each
output position copies, along each padded axis: with i = j - left the input position output
j would hold unpadded,
    reflect     mirror at the edges, the edge itself not repeated   (-1 -> 1, n -> n - 2)
    replicate   clamp into the input                               (-1 -> 0, n -> n - 1)
    circular    wrap around                                        (-1 -> n - 1, n -> 0)
so they are gathers through one index table per axis, the interpolation's Resample Function
(ops/interpolate.py): a gather forward, a gather through the transposed table backward.
Negative widths crop.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from .interpolate import Resample, axis_table


class ConstantPadNd(Function):
    @staticmethod
    def forward(ctx, x, *, widths, value):
        ctx.key = tuple(slice(lo, x.shape[i] + lo) for i, (lo, hi) in enumerate(widths))
        return ctx.xp.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.key]


# PyTorch's grad_fn names (Function-suffixed so as not to share the nn modules' names).
class ReflectionPad1DFunction(Resample):
    pass


class ReflectionPad2DFunction(Resample):
    pass


class ReflectionPad3DFunction(Resample):
    pass


class ReplicationPad1DFunction(Resample):
    pass


class ReplicationPad2DFunction(Resample):
    pass


class ReplicationPad3DFunction(Resample):
    pass


class CircularPad(Resample):
    """PyTorch builds circular padding from slice copies (its node is CopySlices)."""


_FUNCTIONS = {
    ("reflect", 1): ReflectionPad1DFunction, ("reflect", 2): ReflectionPad2DFunction,
    ("reflect", 3): ReflectionPad3DFunction, ("replicate", 1): ReplicationPad1DFunction,
    ("replicate", 2): ReplicationPad2DFunction, ("replicate", 3): ReplicationPad3DFunction,
    ("circular", 1): CircularPad, ("circular", 2): CircularPad, ("circular", 3): CircularPad,
}


def _source_index(mode, n, left, right):
    """The input position each of the n + left + right output positions copies. Circular
    padding wraps around the input as cropped by negative widths (as PyTorch's)."""
    if mode == "circular":
        lo, hi = max(-left, 0), n - max(-right, 0)
        return lo + (np.arange(n + left + right) - max(left, 0)) % (hi - lo)
    i = np.arange(n + left + right) - left
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    i = np.abs(i)  # reflect: mirror at 0, then at n - 1
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


def _check_nonconstant(mode, input, pad, dims):
    """PyTorch's checks for the reflect, replicate and circular modes."""
    op, shape = "pad", tuple(input.shape)
    batched = input.ndim == dims + 2
    if mode != "circular" and 0 in shape[int(batched):]:
        raise RuntimeError(f"{op}: Expected {dims + 1}D or {dims + 2}D (batch mode) tensor with "
                           "possibly 0 batch size and other non-zero dimensions for input, but "
                           f"got: {list(shape)}")
    for k in range(dims):
        left, right = pad[2 * k], pad[2 * k + 1]
        axis = input.ndim - 1 - k
        n = shape[axis]
        if mode == "reflect" and (left >= n or right >= n):
            raise RuntimeError(f"{op}: Padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({left}, {right}) at dimension "
                               f"{axis} of input {list(shape)}")
        out, kept = n + left + right, n - max(-left, 0) - max(-right, 0)
        if mode == "circular" and out < 0:
            raise RuntimeError(f"{op}: Negative padding value is resulting in an empty "
                               f"dimension (padding ({left}, {right}) at dimension {axis} of "
                               f"input {list(shape)})")
        if mode == "circular" and out > 0 and max(left, right) > kept:
            # PyTorch checks the uncropped size only, and then copies unwritten memory
            raise RuntimeError(f"{op}: Padding value causes wrapping around more than once "
                               f"(padding ({left}, {right}) at dimension {axis} of input "
                               f"{list(shape)}, {kept} positions left after cropping)")
        if mode != "circular" and out < 1:
            raise RuntimeError(f"{op}: input (size {n} at dimension {axis}) is too small. "
                               f"Calculated output size: {out}")


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: `pad` lists (left, right) widths for the last dim, then the
    one before, ...; negative widths crop. mode 'constant' (fill with value, default 0)
    pads any dims; 'reflect', 'replicate' and 'circular' pad the last 1, 2 or 3 dims of a
    (C, *) or (N, C, *) input (pad of length 2, 4 or 6) and take no value."""
    op, pad = "pad", tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError(f"{op}: Padding length must be divisible by 2, got length "
                           f"{len(pad)} for a tensor of {input.ndim} dimensions")
    if len(pad) > 2 * input.ndim:
        raise RuntimeError(f"{op}: Padding length should be less than or equal to two times "
                           f"the input dimension but got padding length {len(pad)} and input "
                           f"of dimension {input.ndim}")
    if mode == "constant":
        return _constant(input, pad, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"{op}: Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f"{op}: Padding mode \"{mode}\" doesn't take in value argument")
    dims = len(pad) // 2
    if not 1 <= dims <= 3 or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(f"{op}: Padding size {len(pad)} is not supported for "
                                  f"{input.ndim}D input tensor (non-constant padding pads the "
                                  "last 1, 2 or 3 dims of a (C, *) or (N, C, *) input with 2, 4 "
                                  "or 6 widths)")
    _check_nonconstant(mode, input, pad, dims)
    xp = backend.array_module(backend.device_of_array(input._data))
    tables = []
    for k in range(dims):
        axis = input.ndim - 1 - k
        n = input.shape[axis]
        idx = _source_index(mode, n, pad[2 * k], pad[2 * k + 1])[:, None]
        tables.append((axis, axis_table(xp, idx, None, n, np.dtype(input.dtype))))
    return _FUNCTIONS[mode, dims].apply(input, tables=tuple(tables))


def _constant(input, pad, value):
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    for axis, ((lo, hi), n) in enumerate(zip(widths, input.shape)):
        if n + lo + hi < 0:
            raise RuntimeError(f"pad: The input size {n}, plus negative padding {lo} and {hi} "
                               "resulted in a negative output size, which is invalid. Check "
                               f"dimension {axis} of your input.")
        if n - max(-lo, 0) - max(-hi, 0) < 0:
            raise RuntimeError(f"pad: narrow(): length must be non-negative (negative widths "
                               f"({lo}, {hi}) crop more than the size {n} of dimension {axis})")
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0))
                     for (lo, hi), n in zip(widths, input.shape))
        input = input[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    return ConstantPadNd.apply(input, widths=tuple(widths), value=value)
