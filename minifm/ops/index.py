"""Indexing ops: t[key] (writes t[key] = v are in inplace.py), gather, scatter, scatter_add,
index_select/add/copy/fill, take, take_along_dim, masked_select, nonzero, sort/topk,
searchsorted/bucketize, unique, one_hot.

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
from .elementwise import as_tensor_like, check_broadcast, mul, to_dtype
from .elementwise import where as _where3
from .shape import broadcast_to, expand, reshape


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


def add_at(input, key, values):
    """input with values added at input[key] (NumPy's add.at), out of place and recorded."""
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


class Scatter(Function):
    """out = x with out[index[i][j]][j] = src[i][j] (dim 0; likewise along other dims).
    The written positions take src's gradient; the rest keep x's. Where index repeats a
    position, which src element lands there is unspecified, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, index, src, *, axis):
        ctx.key = _along_axis_key(ctx.xp, index, axis)
        ctx.src_shape = src.shape
        ctx.used = tuple(slice(0, n) for n in index.shape)  # the part of src that is written
        out = x.copy()
        out[ctx.key] = src[ctx.used]
        return out

    @staticmethod
    def backward(ctx, g):
        gx = gsrc = None
        if ctx.needs_input_grad[0]:
            gx = g.copy()
            gx[ctx.key] = 0
        if ctx.needs_input_grad[2]:
            gsrc = ctx.xp.zeros(ctx.src_shape, dtype=g.dtype)
            gsrc[ctx.used] = g[ctx.key]
        return gx, None, gsrc


def _scatter_multiply(input, index, src, axis):
    """input with each src element multiplied in at its index (repeats multiply in turn).
    Not differentiable, as in PyTorch (whose scatter_reduce 'prod' is)."""
    if is_grad_enabled() and (input.requires_grad or src.requires_grad):
        raise RuntimeError("scatter: the derivative of reduce='multiply' is not implemented, "
                           "as in PyTorch")
    if input.device.type != "cpu":  # CuPy has no multiply.at: done on the host
        return _scatter_multiply(input.cpu(), index.cpu(), src.cpu(), axis).to(input.device)
    xp = backend.array_module(input.device)
    out = input._data.copy()
    used = tuple(slice(0, n) for n in index.shape)
    xp.multiply.at(out, _along_axis_key(xp, index._data, axis), src._data[used])
    return Tensor._make(out, input.device)


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """PyTorch's scatter: src (a Tensor) or value (a number) written at `index` along dim;
    reduce='add' or 'multiply' accumulates them into the input instead."""
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src  # scatter(input, dim, index, 2.0): the value form
    if (src is None) == (value is None):
        raise TypeError("scatter: expected exactly one of src (a Tensor) or value (a number)")
    if reduce not in (None, "add", "multiply"):
        raise ValueError(f"scatter: reduce must be None, 'add' or 'multiply', got {reduce!r}")
    axis = _check_index("scatter", input, dim, index)
    if src is None:
        src = expand(as_tensor_like(value, input).to(input.dtype), *index.shape)
    if any(n > m for n, m in zip(index.shape, src.shape)):
        raise ValueError(f"scatter: index of shape {tuple(index.shape)} is larger than "
                         f"src of shape {tuple(src.shape)}")
    src = src.to(input.dtype)
    if reduce == "add":
        return ScatterAdd.apply(input, index, src, axis=axis)
    if reduce == "multiply":
        return _scatter_multiply(input, index, src, axis)
    return Scatter.apply(input, index, src, axis=axis)


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


def _dim_key(op, input, dim, index):
    """The key input[:, ..., index] that addresses `index` (a 1-D integer Tensor) along dim,
    for index_add, index_copy and index_fill; the index is checked against dim's size."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError(f"{op}: index must be a 0-D or 1-D integer Tensor, got "
                        f"{getattr(index, 'shape', type(index).__name__)}")
    axis = normalize_dims(op, dim, input.ndim)[0] if input.ndim else 0
    size = input.shape[axis] if input.ndim else 1
    if index.numel() and (int(index._data.min()) < -size or int(index._data.max()) >= size):
        raise IndexError(f"{op}: index out of range for dimension {dim} of size {size}")
    return (slice(None),) * axis + (index._data.reshape(-1),), axis


def _check_source(op, input, axis, index, source):
    """source must have input's shape with dim's size replaced by len(index), and its dtype."""
    expected = list(input.shape)
    if expected:
        expected[axis] = index.numel()
    if tuple(source.shape) != tuple(expected):
        raise ValueError(f"{op}: source of shape {tuple(source.shape)} must have the shape "
                         f"{tuple(expected)} (the input's, with dimension {axis} of size "
                         "len(index))")
    if source.dtype != input.dtype:
        raise TypeError(f"{op}: source must have the input's dtype "
                        f"{backend.dtype_name(input.dtype)}, got "
                        f"{backend.dtype_name(source.dtype)}")


def index_add(input, dim, index, source, *, alpha=1):
    """input with alpha * source added at `index` along dim; repeated indices accumulate."""
    key, axis = _dim_key("index_add", input, dim, index)
    _check_source("index_add", input, axis, index, source)
    return IndexAdd.apply(input, source if alpha == 1 else mul(source, alpha), key=key)


def index_copy(input, dim, index, source):
    """input with source's slices copied to positions `index` along dim."""
    key, axis = _dim_key("index_copy", input, dim, index)
    if source.ndim == 0 and input.ndim <= 1:  # a scalar source goes to one index (PyTorch's)
        if index.numel() != 1:
            raise IndexError(f"index_copy: When source is scalar, index should have one "
                             f"element (got {index.numel()})")
        source = reshape(source, 1)
    _check_source("index_copy", input, axis, index, source)
    return SetItem.apply(input, source, key=key)


def index_fill(input, dim, index, value):
    """input with the slices at `index` along dim set to value (a number or 0-d Tensor)."""
    key, _ = _dim_key("index_fill", input, dim, index)
    return SetItem.apply(input, to_dtype(as_tensor_like(value, input), input.dtype), key=key)


def take(input, index):
    """input seen as 1-D, read at index: the result has index's shape."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"take: index must be an integer Tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    size = input.numel()
    if index.numel() and (int(index._data.min()) < -size or int(index._data.max()) >= size):
        raise IndexError(f"take: index out of range for a tensor of {size} elements")
    return GetItem.apply(reshape(input, -1), key=index._data)


def take_along_dim(input, indices, dim=None):
    """gather(input, dim, indices) with input and indices broadcast against each other in
    every dimension but dim; with dim=None, take(input, indices) of the flattened input."""
    if dim is None:
        return take(input, reshape(indices, -1) if isinstance(indices, Tensor) else indices)
    if indices.ndim != input.ndim:
        raise ValueError(f"take_along_dim: input of shape {tuple(input.shape)} and indices "
                         f"of shape {tuple(indices.shape)} must have as many dimensions")
    axis = normalize_dims("take_along_dim", dim, input.ndim)[0]
    try:
        others = np.broadcast_shapes(*(tuple(1 if d == axis else n for d, n in enumerate(t.shape))
                                       for t in (input, indices)))
    except ValueError:
        raise ValueError(f"take_along_dim: input of shape {tuple(input.shape)} and indices of "
                         f"shape {tuple(indices.shape)} do not broadcast outside dim {dim}") from None
    input = expand(input, *(input.shape[d] if d == axis else n for d, n in enumerate(others)))
    indices = expand(indices, *(indices.shape[d] if d == axis else n for d, n in enumerate(others)))
    return gather(input, axis, indices)


def masked_select(input, mask):
    """The elements of input where mask (broadcast with input) is True, as a 1-D tensor."""
    if not isinstance(mask, Tensor) or mask.dtype != backend.bool_:
        raise TypeError(f"masked_select: mask must be a bool Tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    check_broadcast("masked_select", input, mask)
    shape = np.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    return GetItem.apply(broadcast_to(input, shape), key=broadcast_to(mask, shape)._data)


def nonzero(input, *, as_tuple=False):
    """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple a
    tuple of ndim 1-D tensors, one per dimension (a 0-d input counts as 1-D)."""
    xp = backend.array_module(input.device)
    found = xp.argwhere(input._data).astype(np.int64)
    if not as_tuple:
        return Tensor._make(found, input.device)
    columns = found.T if input.ndim else xp.zeros((1, len(found)), np.int64)
    return tuple(Tensor._make(xp.ascontiguousarray(c), input.device) for c in columns)


def where(condition, input=None, other=None):
    """where(condition, input, other) elementwise; where(condition) is
    nonzero(condition, as_tuple=True)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    return _where3(condition, input, other)


def argsort(input, dim=-1, descending=False, stable=False):
    xp = backend.array_module(input.device)
    axis = (normalize_dims("argsort", dim, input.ndim) or (0,))[0]
    data = -input._data if descending and input.dtype.kind != "b" else input._data
    order = xp.argsort(data, axis=axis, kind="stable").reshape(input.shape)  # 0-d stays 0-d
    if descending and input.dtype.kind == "b":
        order = xp.flip(order, axis)
    return Tensor._make(order.astype(np.int64, copy=False), input.device)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices); values are differentiable (a gather of the input)."""
    indices = argsort(input, dim, descending, stable)
    if input.ndim == 0:  # a 0-d tensor is sorted, at index 0
        return ValuesIndices(input.clone(), indices)
    axis = normalize_dims("sort", dim, input.ndim)[0]
    return ValuesIndices(gather(input, axis, indices), indices)


def topk(input, k, dim=-1, largest=True, sorted=True):
    axis = (normalize_dims("topk", dim, input.ndim) or (0,))[0]
    size = input.shape[axis] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {dim} of size {size}")
    if input.ndim == 0:  # PyTorch returns the element itself for k of 0 or 1
        return sort(input)
    order = argsort(input, axis, descending=largest)
    key = (slice(None),) * axis + (slice(0, k),)
    indices = Tensor._make(order._data[key], input.device)
    return ValuesIndices(gather(input, axis, indices), indices)


def one_hot(tensor, num_classes=-1):
    """F.one_hot: int64 (*) -> int64 (*, num_classes), a 1 at each value's position.
    num_classes=-1 takes max + 1. PyTorch's errors: int64 input only, classes in
    [0, num_classes), and no inferring num_classes from an empty tensor."""
    if tensor.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor, "
                           f"got {backend.dtype_name(tensor.dtype)}")
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool):
        raise TypeError("one_hot(): argument 'num_classes' must be int, not "
                        f"{type(num_classes).__name__}")
    data = tensor._data
    if tensor.numel() == 0:
        if num_classes <= 0:
            raise RuntimeError("one_hot: Can not infer total number of classes from empty "
                               f"tensor (shape {tuple(tensor.shape)}, num_classes={num_classes})")
    elif int(data.min()) < 0:
        raise RuntimeError(f"one_hot: Class values must be non-negative, got {int(data.min())}")
    elif num_classes == -1:
        num_classes = int(data.max()) + 1
    elif int(data.max()) >= num_classes:
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes, got "
                           f"{int(data.max())} for num_classes={num_classes}")
    xp = backend.array_module(tensor.device)
    out = (data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._make(out, tensor.device)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """For each value, the index in sorted_sequence (sorted along its last dim) where it
    would be inserted to keep the order: before equal elements, or after them with
    right=True (side='right'). An N-D sequence is searched row by row, each row with the
    matching row of values."""
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side='left' and right=True contradict each other")
        right = side == "right"
    if sorted_sequence.ndim == 0:
        raise RuntimeError("searchsorted: boundaries tensor should have positive dimension, "
                           "but got 0 dimension")
    xp = backend.array_module(sorted_sequence.device)
    seq = sorted_sequence._data
    if sorter is not None:
        if tuple(sorter.shape) != tuple(seq.shape):
            raise RuntimeError(f"searchsorted: boundary and sorter must have the same size, got "
                               f"{tuple(seq.shape)} and {tuple(sorter.shape)}")
        seq = xp.take_along_axis(seq, sorter._data, axis=-1)
    vals = values._data if isinstance(values, Tensor) else xp.asarray(values)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        found = xp.searchsorted(seq, vals, side=how)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ValueError(f"searchsorted: the leading dimensions of sorted_sequence "
                             f"{tuple(seq.shape)} and values {tuple(vals.shape)} must match")
        if seq.size == 0 or vals.size == 0:  # no rows, or empty ones: every index is 0
            found = xp.zeros(vals.shape, np.int64)
        else:
            rows = seq.reshape(-1, seq.shape[-1])
            queries = vals.reshape(-1, vals.shape[-1])
            found = xp.stack([xp.searchsorted(r, q, side=how) for r, q in zip(rows, queries)])
            found = found.reshape(vals.shape)
    return Tensor._make(xp.asarray(found, dtype=np.int32 if out_int32 else np.int64),
                        sorted_sequence.device)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each element for 1-D sorted boundaries: i with
    boundaries[i-1] < x <= boundaries[i] (boundaries[i-1] <= x < boundaries[i] with right)."""
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements of input (flattened, or the distinct slices along dim), in
    ascending order; with return_inverse each element's position in them (input's shape,
    or dim's size), with return_counts how often each occurs. Not differentiable."""
    xp = backend.array_module(input.device)
    axis = None if dim is None else normalize_dims("unique", dim, input.ndim)[0]
    if axis is not None and 0 in input.shape[:axis] + input.shape[axis + 1:]:
        raise RuntimeError("unique: There are 0 sized dimensions, and they aren't selected, "
                           f"so unique cannot be applied (shape {tuple(input.shape)}, dim {dim})")
    values, inverse, counts = xp.unique(input._data, return_inverse=True, return_counts=True,
                                        axis=axis)
    inverse = inverse.reshape(input.shape if axis is None else -1)
    out = [Tensor._make(values, input.device)]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64), input.device))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64), input.device))
    return out[0] if len(out) == 1 else tuple(out)
