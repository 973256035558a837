"""F.unfold and F.fold: sliding blocks of an image as columns (im2col) and back (col2im).

unfold turns (N, C, H, W) into (N, C*kh*kw, L): column l holds the kh x kw block at the l-th
position of the kernel sliding over the zero-padded image (row-major over the output grid),
each block's entries channel first, then kernel row, then kernel column. fold is its
adjoint: each column's entries are added back at the pixels they came from, so overlapping
blocks sum.

Both are one integer map, `_block_index`, from (kernel row, kernel column, block row, block
column) to a pixel of the flattened image, with padding pointing at one extra zero pixel
past the end. unfold gathers with index_select along that map and fold scatter-adds with
index_add, so each one's gradient is the other, through ops that are differentiable again.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from .index import index_add, index_select
from .shape import cat, narrow, reshape


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


def _block_index(size, kernel, dilation, padding, stride, counts):
    """For each (kernel row, kernel column, block row, block column), flattened in that
    order, the index of its pixel in the flattened H x W image; H * W where it falls in the
    padding."""
    (h, w), (kh, kw), (dh, dw), (ph, pw), (sh, sw), (oh, ow) = (
        size, kernel, dilation, padding, stride, counts)
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(oh) * sh)[:, None] - ph
    cols = (np.arange(kw) * dw)[None, :, None, None] + np.arange(ow) * sw - pw
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    return np.where(inside, rows * w + cols, h * w).reshape(-1)


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
    n, c, h, w = x.shape
    counts = _blocks("unfold", (h, w), *args)
    index = _block_index((h, w), *args, counts)
    flat = reshape(x, (n, c, h * w))
    if any(args[2]):  # padding: an extra zero pixel for the indices past the end
        xp = backend.array_module(x.device)
        flat = cat([flat, Tensor._make(xp.zeros((n, c, 1), x.dtype), x.device)], 2)
    index = Tensor._make(backend.move_array(index, x.device), x.device)
    kh, kw = args[0]
    out = reshape(index_select(flat, 2, index), (n, c * kh * kw, counts[0] * counts[1]))
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
    n, ckk, length = x.shape
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
    h, w = size
    c = ckk // (kh * kw)
    index = _block_index(size, *args, counts)
    index = Tensor._make(backend.move_array(index, x.device), x.device)
    xp = backend.array_module(x.device)
    image = Tensor._make(xp.zeros((n, c, h * w + 1), x.dtype), x.device)
    image = index_add(image, 2, index, reshape(x, (n, c, kh * kw * length)))
    out = reshape(narrow(image, 2, 0, h * w), (n, c, h, w))
    return out if input.ndim == 3 else reshape(out, out.shape[1:])
