"""Pooling of (N, C, H, W) images.

max_pool2d and avg_pool2d reuse the convolution's windows (ops/conv.py): the forward
reduces the strided view (N, C, Ho, Wo, kh, kw) over the kernel axes, and the backward
builds the gradient of that view and hands it to col2im, the same scatter-add the
convolution's input gradient uses.

adaptive_avg_pool2d is separable: each output row reads a set of input rows and each output
column a set of input columns, so it is the matrix product  A_h @ x @ A_w^T  with small
(out, in) matrices, and its gradient is A_h^T @ g @ A_w. (As a matrix product, an inf in the
input spreads NaN (0 * inf) over its row of outputs, where PyTorch gives inf.)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from .conv import batched, col2im, output_size, pad_array, pair, unbatched, windows


def _xp(array):
    return backend.array_module(backend.device_of_array(array))


def _check_floating(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {backend.dtype_name(x.dtype)}")


# ----------------------------------------------------------------------------- window geometry
def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated kernel, stride, padding, dilation and the output size (PyTorch's rules).

    With ceil_mode the last window may start inside the input but run past its padded end;
    `overhang` is how much extra padding the windows view needs there."""
    _check_floating(op, input)
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    out_hw, overhang = [], []
    for i in range(2):
        size, k, s, p, d = input.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]
        if 2 * p > d * (k - 1) + 1:
            raise ValueError(f"{op}: padding {padding} should be at most half of the "
                             f"effective kernel size {kernel} (dilation {dilation})")
        n = output_size(size, k, s, 2 * p + (s - 1 if ceil_mode else 0), d)
        if ceil_mode and (n - 1) * s >= size + p:  # the last window would start in the padding
            n -= 1
        if n < 1:
            raise ValueError(f"{op}: input of shape {tuple(input.shape)} is too small for "
                             f"kernel {kernel} with padding {padding} and dilation {dilation}")
        out_hw.append(n)
        overhang.append(max(0, (n - 1) * s + d * (k - 1) + 1 - (size + 2 * p)))
    pads = tuple((p, p + e) for p, e in zip(padding, overhang))
    return kernel, stride, pads, dilation, tuple(out_hw)


# ----------------------------------------------------------------------------- max pooling
class MaxPool2DWithIndices(Function):
    """Max over each window; the gradient goes to the first maximum of the window (as
    PyTorch), and a NaN in a window is its maximum."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, pads, dilation, out_hw):
        xp = ctx.xp
        n, c = x.shape[:2]
        view = windows(xp, pad_array(xp, x, pads, value=-np.inf), kernel, stride, dilation,
                       out_hw)
        # one copy with the kernel positions flattened, where argmax runs fastest
        view = view.reshape(n, c, *out_hw, kernel[0] * kernel[1])
        argmax = view.argmax(axis=-1)
        ctx.argmax, ctx.x_shape = argmax, x.shape
        ctx.kernel, ctx.stride, ctx.pads, ctx.dilation = kernel, stride, pads, dilation
        return xp.take_along_axis(view, argmax[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        offsets = xp.arange(ctx.kernel[0] * ctx.kernel[1])
        gcols = xp.where(offsets == ctx.argmax[..., None], g[..., None], 0)
        gcols = gcols.astype(g.dtype, copy=False).reshape(*g.shape, *ctx.kernel)
        return col2im(xp, gcols, ctx.x_shape, ctx.stride, ctx.pads, ctx.dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d: the input is padded with -inf. (return_indices=True is
    not implemented.)"""
    op = "max_pool2d"
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not implemented")
    x, was_unbatched = batched(op, input)
    kernel, stride, pads, dilation, out_hw = _pool_geometry(
        op, x, kernel_size, stride, padding, dilation, ceil_mode)
    y = MaxPool2DWithIndices.apply(x, kernel=kernel, stride=stride, pads=pads,
                                   dilation=dilation, out_hw=out_hw)
    return unbatched(y, was_unbatched)


# ----------------------------------------------------------------------------- average pooling
def _divisor_1d(size, k, s, p, n, count_include_pad):
    """How many positions each of the n windows along one axis averages over (PyTorch's
    rule: padding counts or not, the ceil_mode overhang past the padding never counts)."""
    start = np.arange(n) * s - p
    end = np.minimum(start + k, size + p)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


class AvgPool2D(Function):
    @staticmethod
    def forward(ctx, x, *, kernel, stride, pads, divisor):
        out_hw = divisor.shape
        xp = ctx.xp
        view = windows(xp, pad_array(xp, x, pads), kernel, stride, (1, 1), out_hw)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.pads, ctx.divisor = (
            x.shape, kernel, stride, pads, divisor)
        return view.sum(axis=(4, 5)) / divisor

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        share = g / ctx.divisor  # every position of a window receives the same share
        gcols = xp.broadcast_to(share[..., None, None], (*g.shape, *ctx.kernel))
        return col2im(xp, gcols, ctx.x_shape, ctx.stride, ctx.pads, (1, 1))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool2d: the mean of each window (zero padding)."""
    op = "avg_pool2d"
    x, was_unbatched = batched(op, input)
    kernel, stride, pads, _, out_hw = _pool_geometry(
        op, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be zero")
        divisor = np.full(out_hw, divisor_override)
    else:
        rows, cols = (_divisor_1d(x.shape[2 + i], kernel[i], stride[i], pads[i][0], out_hw[i],
                                  count_include_pad) for i in range(2))
        divisor = np.outer(rows, cols)
    xp = _xp(x._data)
    divisor = xp.asarray(divisor.astype(x.dtype))
    y = AvgPool2D.apply(x, kernel=kernel, stride=stride, pads=pads, divisor=divisor)
    return unbatched(y, was_unbatched)


# ----------------------------------------------------------------------------- adaptive, nearest
class AdaptiveAvgPool2D(Function):
    """The mean of each window: y = A_h @ x @ A_w^T for x (N, C, H, W), A_h (Ho, H) and
    A_w (Wo, W) holding 1/window-size inside the windows."""

    @staticmethod
    def forward(ctx, x, *, a_h, a_w):
        ctx.a_h, ctx.a_w = a_h, a_w
        return a_h @ x @ a_w.T

    @staticmethod
    def backward(ctx, g):
        return ctx.a_h.T @ g @ ctx.a_w


def _adaptive_matrix(size, out, dtype):
    """Row i averages input positions floor(i*size/out) .. ceil((i+1)*size/out) - 1."""
    a = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        a[i, start:end] = 1.0 / (end - start)
    return a


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d: output_size is an int or (Ho, Wo), where None
    keeps the input's size. Windows may overlap and differ in size when sizes don't divide."""
    op = "adaptive_avg_pool2d"
    x, was_unbatched = batched(op, input)
    _check_floating(op, x)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    if any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ValueError(f"{op}: output_size must hold positive ints, got {output_size!r}")
    xp = _xp(x._data)
    a_h, a_w = (xp.asarray(_adaptive_matrix(x.shape[2 + i], sizes[i], x.dtype)) for i in range(2))
    return unbatched(AdaptiveAvgPool2D.apply(x, a_h=a_h, a_w=a_w), was_unbatched)
