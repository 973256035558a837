"""F.unfold and F.fold: sliding blocks of an image as columns (im2col) and back (col2im).

unfold turns (N, C, H, W) into (N, C*kh*kw, L): column l holds the kh x kw block at the l-th
position of the kernel sliding over the zero-padded image (row-major over the output grid),
each block's entries channel first, then kernel row, then kernel column. fold is its
adjoint: each column's entries are added back at the pixels they came from, so overlapping
blocks sum.

Both walk the kh x kw kernel offsets: offset (i, j) sees one strided slice of the padded
image (every block's entry (i, j) at once), so im2col stacks kh*kw slices and col2im adds
kh*kw slices back. Each is the other's backward, written with slicing, stacking and
zeros only, so that it also runs on the differentiable array namespace (create_graph).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from .shape import reshape


def _pair(op, name, value):
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2:
        raise RuntimeError(f"{op}: It is expected {name} equals to 2, but got size {len(pair)}")
    return pair


def _check_args(op, kernel, dilation, padding, stride):
    for (name, label), (a, b), least in (
            (("kernel size", "kernel"), kernel, 1), (("dilation", "dilation"), dilation, 1),
            (("padding", "pad"), padding, 0), (("stride", "stride"), stride, 1)):
        if a < least or b < least:
            rule = "be non-negative" if least == 0 else "be greater than zero"
            raise RuntimeError(f"{op}: {name} should {rule}, but got {label}_height: {a} "
                               f"{label}_width: {b}")


def _blocks(op, size, kernel, dilation, padding, stride):
    """The number of block positions along each spatial dim (at least one each)."""
    counts = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                   for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))
    if min(counts) < 1:
        raise RuntimeError(
            f"{op}: Given input with spatial size {tuple(size)}, kernel_size={kernel}, "
            f"dilation={dilation}, padding={padding}, calculated shape of the array of "
            f"sliding blocks as {counts}, but its components must be at least one.")
    return counts


def _offset_key(i, j, dilation, stride, counts):
    """The slice of the padded image that kernel offset (i, j) reads in every block."""
    (dh, dw), (sh, sw), (oh, ow) = dilation, stride, counts
    return (slice(None), slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _im2col(xp, x, kernel, dilation, padding, stride, counts):
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = kernel, padding
    if ph or pw:
        padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        x = padded
    pieces = [x[_offset_key(i, j, dilation, stride, counts)] for i in range(kh) for j in range(kw)]
    return xp.stack(pieces, 2).reshape(n, c * kh * kw, counts[0] * counts[1])


def _col2im(xp, cols, size, kernel, dilation, padding, stride, counts):
    (h, w), (kh, kw), (ph, pw) = size, kernel, padding
    n, c = cols.shape[0], cols.shape[1] // (kh * kw)
    blocks = cols.reshape(n, c, kh, kw, *counts)
    image = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            key = _offset_key(i, j, dilation, stride, counts)
            image[key] = image[key] + blocks[:, :, i, j]
    return xp.ascontiguousarray(image[:, :, ph:ph + h, pw:pw + w]) if ph or pw else image


class Im2Col(Function):
    """(N, C, H, W) -> (N, C*kh*kw, L); the gradient is col2im of the gradient."""

    @staticmethod
    def forward(ctx, x, *, kernel, dilation, padding, stride, counts):
        ctx.size, ctx.args = x.shape[2:], (kernel, dilation, padding, stride, counts)
        return _im2col(ctx.xp, x, *ctx.args)

    @staticmethod
    def backward(ctx, g):
        return _col2im(ctx.xp, g, ctx.size, *ctx.args)


class Col2Im(Function):
    """(N, C*kh*kw, L) -> (N, C, H, W); the gradient is im2col of the gradient."""

    @staticmethod
    def forward(ctx, cols, *, size, kernel, dilation, padding, stride, counts):
        ctx.args = (kernel, dilation, padding, stride, counts)
        return _col2im(ctx.xp, cols, size, *ctx.args)

    @staticmethod
    def backward(ctx, g):
        return _im2col(ctx.xp, g, *ctx.args)


def _check_dtype(op, input):
    if input.dtype.kind != "f":
        raise NotImplementedError(f'"{op}" not implemented for {backend.dtype_name(input.dtype)}')


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C, H, W) or (C, H, W) -> (N, C*kh*kw, L) or (C*kh*kw, L): the sliding blocks as
    columns (im2col), L = the number of block positions."""
    if input.ndim not in (3, 4) or 0 in input.shape[input.ndim - 3:]:
        raise RuntimeError("unfold: Expected 3D or 4D (batch mode) tensor with possibly 0 "
                           "batch size and other non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    _check_dtype("unfold", input)
    args = [_pair("unfold", n, v) for n, v in (("kernel_size", kernel_size), ("dilation", dilation),
                                               ("padding", padding), ("stride", stride))]
    _check_args("unfold", *args)
    x = input if input.ndim == 4 else reshape(input, (1, *input.shape))
    counts = _blocks("unfold", x.shape[2:], *args)
    out = Im2Col.apply(x, kernel=args[0], dilation=args[1], padding=args[2], stride=args[3],
                       counts=counts)
    return out if input.ndim == 4 else reshape(out, out.shape[1:])


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C*kh*kw, L) or (C*kh*kw, L) -> (N, C, H, W) or (C, H, W), (H, W) = output_size:
    each column's block added back at its place (col2im); overlapping blocks sum."""
    if input.ndim not in (2, 3) or 0 in input.shape[input.ndim - 2:]:
        raise RuntimeError("fold: Expected 2D or 3D (batch mode) tensor for input with possibly "
                           "0 batch size and non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    _check_dtype("fold", input)
    size = _pair("fold", "output_size", output_size)
    args = [_pair("fold", n, v) for n, v in (("kernel_size", kernel_size), ("dilation", dilation),
                                             ("padding", padding), ("stride", stride))]
    _check_args("fold", *args)
    x = input if input.ndim == 3 else reshape(input, (1, *input.shape))
    _, ckk, length = x.shape
    (kh, kw), (dilation, padding, stride) = args[0], args[1:]
    if ckk % (kh * kw):
        raise RuntimeError(f"fold: Expected size of input's dimension 1 to be divisible by the "
                           f"product of kernel_size, but got input.size(1)={ckk} and "
                           f"kernel_size={args[0]}.")
    counts = _blocks("fold", size, *args)
    if counts[0] * counts[1] != length:
        raise RuntimeError(
            f"fold: Given output_size={size}, kernel_size={args[0]}, dilation={dilation}, "
            f"padding={padding}, stride={stride}, expected size of input's dimension 2 to match "
            f"the calculated number of sliding blocks {counts[0]} * {counts[1]} = "
            f"{counts[0] * counts[1]}, but got input.size(2)={length}.")
    out = Col2Im.apply(x, size=size, kernel=args[0], dilation=dilation, padding=padding,
                       stride=stride, counts=counts)
    return out if input.ndim == 3 else reshape(out, out.shape[1:])
