"""Matrix products: matmul (PyTorch's 1-D, 2-D and batched-broadcast rules) and linear,
fused as one op because it is the most frequent op in every model."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .elementwise import binary_operands


class MatMul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x @ y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        xp = ctx.xp
        # Treat a 1-D x as a row (1, n) and a 1-D y as a column (n, 1), then undo it.
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        g2 = g
        if y.ndim == 1:
            g2 = g2[..., None]
        if x.ndim == 1:
            g2 = g2[..., None, :]
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = g2 @ xp.swapaxes(y2, -1, -2)
            if x.ndim == 1:
                gx = gx[..., 0, :]
        if ctx.needs_input_grad[1]:
            gy = xp.swapaxes(x2, -1, -2) @ g2
            if y.ndim == 1:
                gy = gy[..., 0]
        return gx, gy   # batch dimensions are summed by the engine's unbroadcast


def matmul(input, other):
    input, other = binary_operands(input, other)
    xs, ys = input._data.shape, other._data.shape
    if not xs or not ys:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{xs} and {ys}")
    inner_y = ys[-2] if len(ys) > 1 else ys[0]
    if xs[-1] != inner_y:
        raise ValueError(f"matmul: shapes {xs} and {ys} cannot be multiplied "
                         f"({xs[-1]} != {inner_y})")
    if len(xs) > 2 or len(ys) > 2:
        try:
            np.broadcast_shapes(xs[:-2], ys[:-2])
        except ValueError:
            raise ValueError(f"matmul: the batch dimensions of shapes {xs} and {ys} are not "
                             "broadcastable") from None
    return MatMul.apply(input, other)


def _rows(a):
    """(..., n) as one (rows, n) matrix: one BLAS call instead of one per leading index
    (NumPy's matmul loops over the batch of a 3-D @ 2-D product)."""
    return a.reshape(-1, a.shape[-1])


class LinearFunction(Function):
    """y = x @ W.T + b for x of shape (..., in), W (out, in), b (out,)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = _rows(x) @ weight.T
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        g2 = _rows(g)
        gx = (g2 @ weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = g2.T @ _rows(x) if ctx.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected input (..., {weight.shape[-1]}))")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"linear: input dtype {input.dtype} and weight dtype {weight.dtype} differ")
    return LinearFunction.apply(input, weight, bias)
