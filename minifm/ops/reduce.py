"""Reductions: sum, mean, var/std (and var_mean/std_mean), max/min (with indices),
amax/amin/aminmax, logsumexp, prod, nansum/nanmean, median/quantile, norm; the scans cumsum,
cumprod, cummax/cummin, logcumsumexp; and the non-differentiable argmax/argmin/all/any/
count_nonzero.

`dim` is None (all dimensions), an int or a tuple, negative allowed; `keepdim` keeps the
reduced dimensions with size 1. Backward of a reduction re-expands the gradient over the
reduced dimensions (`expand_reduced`). float16 inputs accumulate in float32.
"""
from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims
from .elementwise import floating, isnan, maximum, minimum, where
from .index import ValuesIndices, argsort, gather
from .shape import stack
from ..tensor import Tensor

def expand_reduced(xp, g, axes, keepdim, shape):
    """Broadcast the gradient of a reduction back over the axes it reduced (a view)."""
    if xp is np and g.__class__ is not np.ndarray and isinstance(g, np.generic):
        g = np.asarray(g)  # a 0-d result of NumPy arithmetic (Mean's g / count) is a scalar
    if xp is np and g.__class__ is np.ndarray and g.flags.c_contiguous:
        view = _expanded_view(g, axes, keepdim, shape)
        if view is not None:
            return view
    if not keepdim and axes:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return xp.broadcast_to(g, shape)


def _expanded_view(g, axes, keepdim, shape):
    """What broadcast_to gives (a read-only view of g, stride 0 over the reduced axes), made
    by ndarray's constructor: NumPy's broadcast_to runs Python (an nditer), 3-5 us a call
    against ~1 us here (every backward through a sum or mean pays it). None when g does
    not have the reduced shape (broadcast_to then raises its error)."""
    strides, k = [], 0  # k: the axis of g that axis i of the input comes from
    for i, n in enumerate(shape):
        if i in axes:
            strides.append(0)
            if keepdim:
                if k >= g.ndim or g.shape[k] != 1:
                    return None
                k += 1
        else:
            if k >= g.ndim or g.shape[k] != n:
                return None
            strides.append(g.strides[k])
            k += 1
    if k != g.ndim:
        return None
    view = np.ndarray(shape, g.dtype, g, 0, strides)
    view.flags.writeable = False
    return view


_FLOAT16 = np.dtype(np.float16)  # a dtype compares with a dtype faster than with a type


def _accumulator(dtype):
    return np.float32 if dtype == _FLOAT16 else None


def _reduce(method, dtype, axes, keepdim):
    """x.sum or x.mean over axes; float16 is accumulated in float32, returned in float16."""
    if dtype == _FLOAT16:
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


class Std(Function):
    """sqrt(var); where the deviation is 0 its gradient is 0, as PyTorch's (sqrt's infinite
    slope times var's zero gradient would be NaN)."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, correction):
        out = ctx.xp.sqrt(Var.forward(ctx, x, axes=axes, keepdim=keepdim, correction=correction))
        ctx.save_for_backward(x, out, out == 0)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out, zero = ctx.saved
        xp = ctx.xp
        g = xp.where(zero, 0, g / (2 * xp.where(zero, 1, out)))
        g = expand_reduced(xp, g, ctx.axes, ctx.keepdim, ctx.shape)
        return g * _centered(x, ctx.axes) * (2.0 / ctx.denominator if ctx.denominator else np.inf)


def _centered(x, axes):
    """x minus its mean over axes (float16 averaged in float32)."""
    return x - x.mean(axis=axes, keepdims=True, dtype=_accumulator(x.dtype)).astype(x.dtype)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        xp = ctx.xp
        ctx.axes, ctx.keepdim, ctx.shape = axes, keepdim, x.shape
        if x.size:
            m = x.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)  # rows of -inf give -inf, not nan
        else:  # a sum of nothing: log(0) = -inf, as in PyTorch
            m = xp.zeros(tuple(1 if i in axes else n for i, n in enumerate(x.shape)), x.dtype)
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
        if flat.shape[axis] == 0:  # an empty product (1) depends on nothing
            return xp.zeros_like(x)
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


def _running(xp, ufunc, x, axis):
    """ufunc.accumulate(x, axis=axis) for an associative binary ufunc. NumPy's on the CPU;
    CuPy's ufunc.accumulate takes add only, so on a GPU a scan in log2(n) whole-array steps
    (Hillis-Steele): after the step of shift s, each element holds ufunc over the 2s
    elements up to it."""
    if xp is np:
        return ufunc.accumulate(x, axis=axis)
    out, n, shift = x.copy(), x.shape[axis], 1
    while shift < n:
        later = (slice(None),) * axis + (slice(shift, None),)
        earlier = (slice(None),) * axis + (slice(None, n - shift),)
        out[later] = ufunc(out[later], out[earlier])
        shift *= 2
    return out


class LogCumSumExp(Function):
    """out_j = log(sum_{i<=j} e^(x_i)), by logaddexp's running accumulation (no overflow).

    backward: dx_i = sum_{j>=i} g_j e^(x_i - out_j), as e^(x_i - out_0) times
    revcumsum(g_j e^(out_0 - out_j)); out never decreases along the axis, so the second
    factor stays below the sum of |g|, but the first overflows when the inputs along the
    axis span more than the dtype's exp range (~700 in float64; PyTorch's log-space
    backward does not)."""

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = axis
        out = _running(ctx.xp, ctx.xp.logaddexp, x, axis)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved
        xp, axis = ctx.xp, ctx.axis
        first = out[(slice(None),) * axis + (slice(0, 1),)]
        tail = xp.flip(xp.cumsum(xp.flip(g * xp.exp(first - out), axis), axis=axis), axis)
        return xp.exp(x - first) * tail


# ----------------------------------------------------------------------------- public API
def sum(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    axes = normalize_dims("sum", dim, input.ndim)
    dtype = input.dtype
    if dtype.kind in "ub" or dtype.kind == "i" and dtype != np.int64:
        input = input.to(backend.int64)  # PyTorch sums integers and bools as int64
    return Sum.apply(input, axes=axes, keepdim=keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                        f"point, got {backend.dtype_name(input.dtype)}")
    return Mean.apply(input, axes=normalize_dims("mean", dim, input.ndim), keepdim=keepdim)


def _var(op, input, dim, unbiased, keepdim, correction, function=Var):
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return function.apply(input, axes=normalize_dims(op, dim, input.ndim), keepdim=keepdim,
                          correction=correction)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var("var", input, dim, unbiased, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var("std", input, dim, unbiased, keepdim, correction, Std)


def logsumexp(input, dim, keepdim=False):
    input = floating(input)
    return LogSumExp.apply(input, axes=normalize_dims("logsumexp", dim, input.ndim), keepdim=keepdim)


def _nonempty_axes(op, input, dim):
    """The axes of a reduction that has no value over nothing (max, argmax...): PyTorch
    refuses an empty input unless every reduced dim is non-empty (IndexError naming the
    dim), and an empty input reduced over all dims without `dim` given."""
    axes = normalize_dims(op, dim, input.ndim)
    if input.numel() == 0:
        if dim is None:
            raise (IndexError if op.startswith("arg") else RuntimeError)(
                f"{op}(): Expected reduction dim to be specified for input.numel() == 0.")
        for a in axes:
            if input.shape[a] == 0:
                raise IndexError(f"{op}(): Expected reduction dim {a} to have non-zero size.")
    return axes


def amax(input, dim=(), keepdim=False):
    dim = None if dim == () else dim
    return Amax.apply(input, axes=_nonempty_axes("amax", input, dim), keepdim=keepdim, largest=True)


def amin(input, dim=(), keepdim=False):
    dim = None if dim == () else dim
    return Amax.apply(input, axes=_nonempty_axes("amin", input, dim), keepdim=keepdim, largest=False)


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
    axes = _nonempty_axes(op, input, dim)
    if not axes:  # a 0-d tensor is its own max, at index 0
        xp = backend.array_module(input.device)
        return ValuesIndices(input.clone(), Tensor._make(xp.zeros((), np.int64), input.device))
    (axis,) = axes
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
    if input.dtype.kind in "ub" or input.dtype.kind == "i" and input.dtype != np.int64:
        input = input.to(backend.int64)  # PyTorch multiplies integers and bools as int64
    axes = None if dim is None else normalize_dims("prod", dim, input.ndim)
    axis = axes[0] if axes else None  # a 0-d tensor is its own product
    return Prod.apply(input, axis=axis, keepdim=keepdim)


def cumsum(input, dim):
    (axis,) = normalize_dims("cumsum", dim, input.ndim) or (0,)
    if input.ndim == 0:  # a 0-d tensor stays 0-d (NumPy's cumsum would make it 1-d)
        return cumsum(input.reshape(1), 0).reshape(())
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
        axes = _nonempty_axes(name, input, dim)
        if dim is None or not axes:
            out = getattr(xp, name)(input._data.reshape(-1))
            return Tensor._make(xp.asarray(out, dtype=np.int64), input.device)
        (axis,) = axes
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


# ----------------------------------------------------------------------------- more reductions
def _cumulative_axis(op, input, dim):
    (axis,) = normalize_dims(op, dim, input.ndim) or (0,)
    return axis


def cumprod(input, dim, *, dtype=None):
    """Running products along dim, as a chain of multiplications: exact gradients where the
    input has zeros (x_i's gradient is a product of the others, never out / x_i), and
    differentiable to any order."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "ub" or input.dtype.kind == "i" and input.dtype != np.int64:
        input = input.to(backend.int64)  # as cumsum and prod: integers multiply as int64
    axis = _cumulative_axis("cumprod", input, dim)
    if input.ndim == 0 or input.shape[axis] == 0:
        return input.clone()
    running = [input.select(axis, 0)]
    for k in range(1, input.shape[axis]):
        running.append(running[-1] * input.select(axis, k))
    return stack(running, axis)


def _cumulative_extreme(op, input, dim, largest):
    """(values, indices) of the running max (min) along dim. On ties the later index wins,
    as in PyTorch; the gradient goes to the element each index names (a gather)."""
    axis = _cumulative_axis(op, input, dim)
    xp = backend.array_module(input.device)
    data = input._data if input.ndim else input._data.reshape(1)
    running = _running(xp, xp.maximum if largest else xp.minimum, data, axis)
    positions = xp.arange(data.shape[axis]).reshape((-1,) + (1,) * (data.ndim - axis - 1))
    indices = _running(xp, xp.maximum, xp.where(data == running, positions, 0), axis)
    indices = Tensor._make(indices.reshape(input.shape).astype(np.int64), input.device)
    if input.ndim == 0:
        return ValuesIndices(input.clone(), indices)
    return ValuesIndices(gather(input, axis, indices), indices)


def cummax(input, dim):
    return _cumulative_extreme("cummax", input, dim, largest=True)


def cummin(input, dim):
    return _cumulative_extreme("cummin", input, dim, largest=False)


def logcumsumexp(input, dim):
    input = floating(input)
    axis = _cumulative_axis("logcumsumexp", input, dim)
    if input.ndim == 0:
        return input.clone()
    return LogCumSumExp.apply(input, axis=axis)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over dim, in one call (torch.var_mean)."""
    return (_var("var_mean", input, dim, unbiased, keepdim, correction),
            mean(input, dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over dim, in one call (torch.std_mean)."""
    return (_var("std_mean", input, dim, unbiased, keepdim, correction, Std),
            mean(input, dim, keepdim))


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum with NaNs counted as 0 (and no gradient to them)."""
    return sum(where(isnan(input), 0, input), dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """The mean of the non-NaN entries (NaN where there are none)."""
    present = ~isnan(input)
    return nansum(input, dim, keepdim, dtype=dtype) / sum(present, dim, keepdim)


def count_nonzero(input, dim=None):
    axes = normalize_dims("count_nonzero", dim, input.ndim)
    xp = backend.array_module(input.device)
    return Tensor._make(xp.asarray((input._data != 0).sum(axis=axes), dtype=np.int64),
                        input.device)


MinMax = namedtuple("aminmax", ["min", "max"])
"""What aminmax returns: (min, max), by name or position."""


def aminmax(input, *, dim=None, keepdim=False):
    if input.numel() == 0 and dim is None:
        raise RuntimeError("aminmax(): expected a non-empty tensor")
    dims = () if dim is None else dim
    return MinMax(amin(input, dims, keepdim), amax(input, dims, keepdim))


def _sorted_along(op, input, dim):
    """(input sorted along one axis, the sort's indices, that axis); dim None flattens."""
    if dim is None:
        input, dim = input.reshape(-1), 0
    axis = _cumulative_axis(op, input, dim)
    if input.ndim == 0:
        input, axis = input.reshape(1), 0
    return input, argsort(input, axis), axis


def median(input, dim=None, keepdim=False):
    """The lower median (the (n-1)//2-th smallest value, no averaging, as in PyTorch): over
    all elements a 0-d tensor, along dim (values, indices). The gradient goes to the median
    element."""
    if input.numel() == 0:
        if dim is None:  # the median of nothing is NaN, as in PyTorch
            return input.sum() * float("nan")
        _nonempty_axes("median", input, dim)
    flat, order, axis = _sorted_along("median", input, dim)
    k = (flat.shape[axis] - 1) // 2
    index = order.narrow(axis, k, 1)
    value = gather(flat, axis, index)
    if dim is None:
        return value.reshape(())
    if not keepdim or input.ndim == 0:
        value, index = value.squeeze(axis), index.squeeze(axis)
    return ValuesIndices(value, index)


_QUANTILE_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles along dim (all elements when None), between the two order
    statistics around q (n - 1) as `interpolation` says; a 1-D q puts its axis first."""
    if interpolation not in _QUANTILE_METHODS:
        raise ValueError(f"quantile: interpolation must be one of {_QUANTILE_METHODS}, "
                         f"got {interpolation!r}")
    if input.dtype.kind != "f":
        raise TypeError(f"quantile: input must be a floating-point tensor, got {input.dtype}")
    qs = np.atleast_1d(backend.move_array(q._data, backend.CPU) if isinstance(q, Tensor)
                       else np.asarray(q, dtype=np.float64))
    if qs.ndim > 1 or ((qs < 0) | (qs > 1)).any():
        raise ValueError("quantile: q must be a scalar or 1-D tensor of values in [0, 1]")
    if input.numel() == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    flat, order, axis = _sorted_along("quantile", input, dim)
    sorted_values = gather(flat, axis, order)
    position = qs * (flat.shape[axis] - 1)
    lo, hi = np.floor(position).astype(np.int64), np.ceil(position).astype(np.int64)
    frac = {"linear": position - lo, "lower": 0 * position, "higher": 0 * position + 1,
            "midpoint": np.where(hi > lo, 0.5, 0.0),
            "nearest": (np.round(position) > lo).astype(np.float64)}[interpolation]
    if interpolation == "linear" and isinstance(q, Tensor):  # differentiable in q too
        frac = q.reshape(-1) * (flat.shape[axis] - 1) - Tensor._make(
            backend.move_array(lo.astype(q.dtype), q.device), q.device)
        frac = [frac.select(0, i) for i in range(len(lo))]
    rows = []
    for a, b, t in zip(lo, hi, frac):
        low = sorted_values.select(axis, int(a))
        rows.append(low + (sorted_values.select(axis, int(b)) - low) * t)
    out = stack(rows, 0)
    if keepdim and (dim is None or input.ndim):
        out = out.unsqueeze(axis + 1) if dim is not None else out.reshape(
            len(rows), *([1] * input.ndim))
    if not isinstance(q, Tensor) and np.ndim(q) == 0 or isinstance(q, Tensor) and q.ndim == 0:
        out = out.squeeze(0)
    return out
