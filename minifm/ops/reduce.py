"""Reductions: sum, mean, var/std, max/min (with indices), amax/amin, logsumexp, prod,
cumsum, norm, and the non-differentiable argmax/argmin/all/any.

`dim` is None (all dimensions), an int or a tuple, negative allowed; `keepdim` keeps the
reduced dimensions with size 1. Backward of a reduction re-expands the gradient over the
reduced dimensions (`expand_reduced`). float16 inputs accumulate in float32.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims
from .elementwise import floating, maximum, minimum
from .index import ValuesIndices, gather
from ..tensor import Tensor

def expand_reduced(xp, g, axes, keepdim, shape):
    """Broadcast the gradient of a reduction back over the axes it reduced (a view)."""
    if not keepdim and axes:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return xp.broadcast_to(g, shape)


def _accumulator(dtype):
    return np.float32 if dtype == np.float16 else None


def _reduce(method, dtype, axes, keepdim):
    """x.sum or x.mean over axes; float16 is accumulated in float32, returned in float16."""
    if dtype == np.float16:
        return method(axis=axes, keepdims=keepdim, dtype=np.float32).astype(np.float16)
    return method(axis=axes, keepdims=keepdim)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        return _reduce(x.sum, x.dtype, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        return expand_reduced(ctx.xp, g, ctx.axes, ctx.keepdim, ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        ctx.count = math.prod([x.shape[a] for a in axes])
        return _reduce(x.mean, x.dtype, axes, keepdim)

    @staticmethod
    def backward(ctx, g):
        return expand_reduced(ctx.xp, g / ctx.count, ctx.axes, ctx.keepdim, ctx.shape)


class Var(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim, correction):
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        count = math.prod([x.shape[a] for a in axes])
        ctx.denominator = builtins.max(count - correction, 0)
        centered = _centered(x, axes)
        ctx.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (centered * centered).sum(axis=axes, keepdims=keepdim, dtype=_accumulator(x.dtype))
            return (out / ctx.denominator).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved  # the centered x is recomputed: one array less kept
        g = expand_reduced(ctx.xp, g, ctx.axes, ctx.keepdim, ctx.shape)
        return g * _centered(x, ctx.axes) * (2.0 / ctx.denominator if ctx.denominator else np.inf)


def _centered(x, axes):
    """x minus its mean over axes (float16 averaged in float32)."""
    return x - x.mean(axis=axes, keepdims=True, dtype=_accumulator(x.dtype)).astype(x.dtype)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        xp = ctx.xp
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # rows of -inf give -inf, not nan
        out = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        out = out if keepdim else out.squeeze(axes)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved
        xp = ctx.xp
        g = expand_reduced(xp, g, ctx.axes, ctx.keepdim, ctx.shape)
        return g * xp.exp(x - expand_reduced(xp, out, ctx.axes, ctx.keepdim, ctx.shape))


class Amax(Function):
    """max over dims; ties share the gradient evenly (PyTorch's amax/amin rule)."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, largest):
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        out = (x.max if largest else x.min)(axis=axes, keepdims=True)
        ctx.save_for_backward(x == out)
        return out if keepdim else out.squeeze(axes)

    @staticmethod
    def backward(ctx, g):
        (hits,) = ctx.saved
        g = expand_reduced(ctx.xp, g, ctx.axes, ctx.keepdim, ctx.shape)
        return g * hits / hits.sum(axis=ctx.axes, keepdims=True)


def _prod_composite(x, axis, keepdim):
    """The product as a chain of multiplications: differentiable to any order, zeros
    included, for create_graph (Prod's own backward uses cumprod)."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    out = x.select(axis, 0)
    for k in range(1, x.shape[axis]):
        out = out * x.select(axis, k)
    return out.unsqueeze(axis) if keepdim else out


class Prod(Function):
    composite = staticmethod(_prod_composite)

    @staticmethod
    def forward(ctx, x, *, axis, keepdim):
        ctx.axis, ctx.keepdim = axis, keepdim
        ctx.save_for_backward(x)
        return x.prod(axis=axis, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        # d prod / d x_i = product of all the others = (exclusive cumprod from the left) *
        # (exclusive cumprod from the right): correct even where x has zeros.
        (x,) = ctx.saved
        xp = ctx.xp
        flat = x.reshape(-1) if ctx.axis is None else x
        axis = 0 if ctx.axis is None else ctx.axis
        ones = xp.ones_like(xp.take(flat, [0], axis=axis))
        left = xp.cumprod(xp.concatenate([ones, xp.take(flat, range(flat.shape[axis] - 1), axis=axis)], axis), axis)
        rev = xp.flip(flat, axis)
        right = xp.flip(xp.cumprod(xp.concatenate(
            [ones, xp.take(rev, range(flat.shape[axis] - 1), axis=axis)], axis), axis), axis)
        if ctx.axis is None:
            return (g * left * right).reshape(x.shape)
        if not ctx.keepdim:
            g = xp.expand_dims(g, axis)
        return g * left * right


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = axis
        return xp_cumsum(x, axis)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        return xp.flip(xp.cumsum(xp.flip(g, ctx.axis), axis=ctx.axis), ctx.axis)


def xp_cumsum(x, axis):
    return x.cumsum(axis=axis, dtype=np.int64 if x.dtype.kind in "iub" else None)


# ----------------------------------------------------------------------------- public API
def sum(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    axes = normalize_dims("sum", dim, input.ndim)
    if input.dtype.kind in "ub" or input.dtype.kind == "i" and input.dtype != np.int64:
        input = input.to(backend.int64)  # PyTorch sums integers and bools as int64
    return Sum.apply(input, axes=axes, keepdim=keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                        f"point, got {backend.dtype_name(input.dtype)}")
    return Mean.apply(input, axes=normalize_dims("mean", dim, input.ndim), keepdim=keepdim)


def _var(op, input, dim, unbiased, keepdim, correction):
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var.apply(input, axes=normalize_dims(op, dim, input.ndim), keepdim=keepdim,
                     correction=correction)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var("var", input, dim, unbiased, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var("std", input, dim, unbiased, keepdim, correction).sqrt()


def logsumexp(input, dim, keepdim=False):
    input = floating(input)
    return LogSumExp.apply(input, axes=normalize_dims("logsumexp", dim, input.ndim), keepdim=keepdim)


def amax(input, dim=(), keepdim=False):
    dim = None if dim == () else dim
    return Amax.apply(input, axes=normalize_dims("amax", dim, input.ndim), keepdim=keepdim, largest=True)


def amin(input, dim=(), keepdim=False):
    dim = None if dim == () else dim
    return Amax.apply(input, axes=normalize_dims("amin", dim, input.ndim), keepdim=keepdim, largest=False)


def _extreme(op, input, dim, keepdim, largest):
    """max()/min(): the value over all elements, or (values, indices) along dim.
    Along a dim the gradient goes to the returned index, as in PyTorch."""
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError(f"{op}(): expected a non-empty tensor")
        return Amax.apply(input, axes=normalize_dims(op, None, input.ndim), keepdim=False,
                          largest=largest)
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        return (maximum if largest else minimum)(input, dim)
    (axis,) = normalize_dims(op, dim, input.ndim) or (0,)
    indices = (argmax if largest else argmin)(input, axis, keepdim=True)
    values = gather(input, axis, indices)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return ValuesIndices(values, indices)


def max(input, dim=None, keepdim=False):
    return _extreme("max", input, dim, keepdim, largest=True)


def min(input, dim=None, keepdim=False):
    return _extreme("min", input, dim, keepdim, largest=False)


def prod(input, dim=None, keepdim=False):
    axis = None if dim is None else normalize_dims("prod", dim, input.ndim)[0]
    return Prod.apply(input, axis=axis, keepdim=keepdim)


def cumsum(input, dim):
    (axis,) = normalize_dims("cumsum", dim, input.ndim) or (0,)
    return Cumsum.apply(input, axis=axis)


def norm(input, p=2, dim=None, keepdim=False):
    """The vector p-norm over dim (p = 1, 2, inf or any positive number)."""
    if p == 2:
        return (input * input).sum(dim, keepdim).sqrt()
    if p == 1:
        return input.abs().sum(dim, keepdim)
    if p == float("inf"):
        return input.abs().amax(() if dim is None else dim, keepdim)
    return (input.abs() ** p).sum(dim, keepdim) ** (1.0 / p)


def _index_reduction(name):
    def op(input, dim=None, keepdim=False):
        xp = backend.array_module(input.device)
        if dim is None:
            out = getattr(xp, name)(input._data.reshape(-1))
            return Tensor._make(xp.asarray(out, dtype=np.int64), input.device)
        (axis,) = normalize_dims(name, dim, input.ndim) or (0,)
        out = getattr(xp, name)(input._data, axis=axis, keepdims=keepdim)
        return Tensor._make(out.astype(np.int64, copy=False), input.device)

    op.__name__ = name
    op.__doc__ = f"Indices of the {name[3:]} along dim (of the flattened tensor when None)."
    return op


argmax = _index_reduction("argmax")
argmin = _index_reduction("argmin")


def all(input, dim=None, keepdim=False):
    axes = normalize_dims("all", dim, input.ndim)
    return Tensor._make(input._data.astype(bool).all(axis=axes, keepdims=keepdim), input.device)


def any(input, dim=None, keepdim=False):
    axes = normalize_dims("any", dim, input.ndim)
    return Tensor._make(input._data.astype(bool).any(axis=axes, keepdims=keepdim), input.device)
