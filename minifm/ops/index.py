"""Indexing ops: t[key] (writes t[key] = v are in inplace.py), gather, scatter_add, index_select, sort/topk, one_hot.

The backward of a read is a scatter-add of the gradient into zeros: `xp.add.at` when the
key can select an element twice (integer arrays), a plain slice assignment otherwise.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..dims import normalize_dims
from ..tensor import Tensor


ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
"""What max/min along a dim, sort and topk return: (values, indices), by name or position."""


def raw_key(key):
    """Replace Tensors in an index key by their arrays; lists become int/bool arrays."""
    if isinstance(key, tuple):
        return tuple(raw_key(k) for k in key)
    if isinstance(key, Tensor):
        if key.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be long, int or bool, got "
                             f"{backend.dtype_name(key.dtype)}")
        return key._data
    if isinstance(key, list):
        return np.asarray(key)
    return key


def _is_basic(key):
    """True when the key has only slices, ints, None and Ellipsis (no element repeats)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)) for k in parts)


class GetItem(Function):
    """x[key]. A basic key (ints, slices, None, Ellipsis) gives a view, as in PyTorch; an
    advanced one (integer or bool arrays) a copy."""

    view = True

    @staticmethod
    def forward(ctx, x, *, key):
        ctx.key, ctx.shape = key, x.shape
        return x[key]

    @staticmethod
    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(ctx.key):
            grad[ctx.key] = g
        else:
            ctx.xp.add.at(grad, ctx.key, g)
        return grad


def getitem(input, key):
    key = raw_key(key)
    if _is_basic(key):  # a trailing Ellipsis makes x[0] of a vector a 0-d view, not a scalar
        parts = key if isinstance(key, tuple) else (key,)
        key = parts if Ellipsis in parts else parts + (Ellipsis,)
    try:
        return GetItem.apply(input, key=key)
    except IndexError as err:
        raise IndexError(f"getitem: index {key!r} is invalid for a tensor of shape "
                         f"{tuple(input.shape)}: {err}") from None


class SetItem(Function):
    """out = x with out[key] = value, out of place (see `setitem`)."""

    @staticmethod
    def forward(ctx, x, value, *, key):
        ctx.key = key
        out = x.copy()
        out[key] = value
        return out

    @staticmethod
    def backward(ctx, g):
        gx = None
        if ctx.needs_input_grad[0]:
            gx = g.copy()
            gx[ctx.key] = 0
        return gx, (g[ctx.key] if ctx.needs_input_grad[1] else None)


class IndexAdd(Function):
    """out = x with `values` added at x[key], repeated indices accumulating (NumPy's
    add.at), out of place: the recorded form of `xp.add.at` under create_graph."""

    @staticmethod
    def forward(ctx, x, values, *, key):
        ctx.key = key
        out = x.copy()
        ctx.xp.add.at(out, key, values)
        return out

    @staticmethod
    def backward(ctx, g):
        return g, g[ctx.key]  # the engine sums the second back to the values' shape


def index_add(input, key, values):
    return IndexAdd.apply(input, values, key=raw_key(key))


def _along_axis_key(xp, index, axis):
    """The fancy-index tuple that addresses x[..., index[...], ...] along `axis`."""
    key = []
    for d, n in enumerate(index.shape):
        if d == axis:
            key.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            key.append(xp.arange(n).reshape(shape))
    return tuple(key)


def _check_index(op, input, dim, index):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer Tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    axis = normalize_dims(op, dim, input.ndim)[0] if input.ndim else 0
    if index.ndim != input.ndim:
        raise ValueError(f"{op}: index of shape {tuple(index.shape)} must have as many "
                         f"dimensions as the input of shape {tuple(input.shape)}")
    for d, (n, m) in enumerate(zip(index.shape, input.shape)):
        if d != axis and n > m:
            raise ValueError(f"{op}: index of shape {tuple(index.shape)} is larger than the "
                             f"input of shape {tuple(input.shape)} in dimension {d}")
    size = input.shape[axis]
    if index.numel() and (int(index._data.min()) < -size or int(index._data.max()) >= size):
        raise IndexError(f"{op}: index out of range for dimension {dim} of size {size}")
    return axis


class Gather(Function):
    @staticmethod
    def forward(ctx, x, index, *, axis):
        ctx.shape = x.shape
        ctx.key = _along_axis_key(ctx.xp, index, axis)
        return x[ctx.key]

    @staticmethod
    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        ctx.xp.add.at(grad, ctx.key, g)
        return grad, None


def gather(input, dim, index):
    axis = _check_index("gather", input, dim, index)
    return Gather.apply(input, index, axis=axis)


class ScatterAdd(Function):
    @staticmethod
    def forward(ctx, x, index, src, *, axis):
        ctx.key = _along_axis_key(ctx.xp, index, axis)
        ctx.src_shape = src.shape
        ctx.used = tuple(slice(0, n) for n in index.shape)  # the part of src that is added
        out = x.copy()
        ctx.xp.add.at(out, ctx.key, src[ctx.used])
        return out

    @staticmethod
    def backward(ctx, g):
        gsrc = None
        if ctx.needs_input_grad[2]:
            gsrc = ctx.xp.zeros(ctx.src_shape, dtype=g.dtype)
            gsrc[ctx.used] = g[ctx.key]
        return g, None, gsrc


def scatter_add(input, dim, index, src):
    axis = _check_index("scatter_add", input, dim, index)
    if any(n > m for n, m in zip(index.shape, src.shape)):
        raise ValueError(f"scatter_add: index of shape {tuple(index.shape)} is larger than "
                         f"src of shape {tuple(src.shape)}")
    return ScatterAdd.apply(input, index, src.to(input.dtype), axis=axis)


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, index, *, axis):
        ctx.axis, ctx.shape = axis, x.shape
        ctx.save_for_backward(index)
        return ctx.xp.take(x, index, axis=axis)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        ctx.xp.add.at(grad, (slice(None),) * ctx.axis + (index,), g)
        return grad, None


def index_select(input, dim, index):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError(f"index_select: index must be a 0-D or 1-D integer Tensor, got "
                        f"{getattr(index, 'shape', type(index).__name__)}")
    axis = normalize_dims("index_select", dim, input.ndim)[0]
    size = input.shape[axis]
    if index.numel() and (int(index._data.min()) < -size or int(index._data.max()) >= size):
        raise IndexError(f"index_select: index out of range for dimension {dim} of size {size}")
    return IndexSelect.apply(input, index.reshape(-1), axis=axis)


def argsort(input, dim=-1, descending=False, stable=False):
    xp = backend.array_module(input.device)
    axis = normalize_dims("argsort", dim, input.ndim)[0] if input.ndim else 0
    data = -input._data if descending and input.dtype.kind != "b" else input._data
    order = xp.argsort(data, axis=axis, kind="stable")
    if descending and input.dtype.kind == "b":
        order = xp.flip(order, axis)
    return Tensor._make(order.astype(np.int64, copy=False), input.device)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices); values are differentiable (a gather of the input)."""
    indices = argsort(input, dim, descending, stable)
    axis = normalize_dims("sort", dim, input.ndim)[0] if input.ndim else 0
    return ValuesIndices(gather(input, axis, indices), indices)


def topk(input, k, dim=-1, largest=True, sorted=True):
    axis = normalize_dims("topk", dim, input.ndim)[0] if input.ndim else 0
    if not 0 <= k <= input.shape[axis]:
        raise ValueError(f"topk: k ({k}) is out of range for dimension {dim} of size {input.shape[axis]}")
    order = argsort(input, axis, descending=largest)
    key = (slice(None),) * axis + (slice(0, k),)
    indices = Tensor._make(order._data[key], input.device)
    return ValuesIndices(gather(input, axis, indices), indices)


def one_hot(tensor, num_classes=-1):
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensors, got {backend.dtype_name(tensor.dtype)}")
    xp = backend.array_module(tensor.device)
    if num_classes < 0:
        num_classes = int(tensor._data.max()) + 1 if tensor.numel() else 0
    if tensor.numel() and (int(tensor._data.min()) < 0 or int(tensor._data.max()) >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes})")
    out = (tensor._data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._make(out, tensor.device)
