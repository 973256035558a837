"""NumPy's array API on Tensors: what an op's backward computes with under create_graph.

Every op's backward is written once, against an array namespace `ctx.xp` and arrays with
NumPy's methods (`g.sum(axis=0)`, `xp.where(mask, g, 0)`, `grad[key] = g`). On the first-order
path those are NumPy (or CuPy) and raw arrays: no overhead. Under `create_graph=True` the
engine hands the same backward an `ArrayBox` for the gradient and for each saved input or
output, and this module as `ctx.xp`: each NumPy call then runs minifm's differentiable op,
so the backward itself is recorded and can be differentiated again. This is HIPS
autograd's design (its VJPs are written over `autograd.numpy`); PyTorch and DeZero instead
write every backward in differentiable ops, which would cost the first-order path a Tensor
per array operation.

A name this namespace does not define falls through to NumPy, but only for arguments that
carry no gradient (shapes, index arrays, masks); a boxed float array there is an error that
names the function, so a backward that cannot be differentiated twice never silently
returns a wrong second derivative.
"""
from __future__ import annotations

import builtins
import sys
import types

import numpy as np

from .. import backend
from ..autograd import engine
from ..tensor import Tensor
from . import activation as act
from . import elementwise as ew
from . import index as ix
from . import inplace as ip
from . import linalg as la
from . import reduce as red
from . import shape as sh


class ArrayBox:
    """A Tensor seen through NumPy's ndarray interface (HIPS autograd's ArrayBox)."""

    __slots__ = ("tensor",)
    __array_priority__ = 2000  # ndarray (op) ArrayBox -> ArrayBox's reflected operator

    def __init__(self, tensor: Tensor):
        self.tensor = tensor

    # ---------------------------------------------------------------- attributes
    shape = property(lambda self: tuple(self.tensor.shape))
    dtype = property(lambda self: self.tensor.dtype)
    ndim = property(lambda self: self.tensor.ndim)
    size = property(lambda self: self.tensor.numel())
    T = property(lambda self: self.transpose())

    def __repr__(self):
        return f"ArrayBox({self.tensor!r})"

    def __len__(self):
        return len(self.tensor)

    # ---------------------------------------------------------------- methods (NumPy's names)
    def reshape(self, *shape):
        return box(sh.reshape(self.tensor, *shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return box(sh.permute(self.tensor, *(axes or reversed(range(self.ndim)))))

    def swapaxes(self, a, b):
        return box(sh.transpose(self.tensor, a, b))

    def astype(self, dtype, copy=True):
        return box(ew.to_dtype(self.tensor, np.dtype(dtype)))

    def copy(self):
        return box(ew.clone(self.tensor))

    def sum(self, axis=None, keepdims=False, dtype=None):
        return box(red.sum(self.tensor, axis, keepdims, dtype=dtype))

    def mean(self, axis=None, keepdims=False, dtype=None):
        return box(red.mean(self.tensor, axis, keepdims, dtype=dtype))

    def max(self, axis=None, keepdims=False):
        return box(red.amax(self.tensor, () if axis is None else axis, keepdims))

    def __getitem__(self, key):
        return box(ix.getitem(self.tensor, _unbox_key(key)))

    def __setitem__(self, key, value):
        ip.setitem(self.tensor, _unbox_key(key), _tensor(value, self.tensor))

    # ---------------------------------------------------------------- operators
    def __neg__(self):
        return box(ew.neg(self.tensor))

    def __abs__(self):
        return box(ew.abs(self.tensor))


def _binary(op, reflected=False):
    def method(self, other):
        other = _tensor(other, self.tensor)
        return box(op(other, self.tensor) if reflected else op(self.tensor, other))
    return method


for _name, _op in {"add": ew.add, "sub": ew.sub, "mul": ew.mul, "truediv": ew.div,
                   "pow": ew.pow, "matmul": la.matmul}.items():
    setattr(ArrayBox, f"__{_name}__", _binary(_op))
    setattr(ArrayBox, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {"eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt,
                   "ge": ew.ge, "and": ew.logical_and, "or": ew.logical_or}.items():
    setattr(ArrayBox, f"__{_name}__", _binary(_op))
ArrayBox.__hash__ = object.__hash__


# ----------------------------------------------------------------------------- boxing
def box(value):
    """A Tensor as an ArrayBox; anything else (a raw constant array, a scalar) unchanged."""
    return ArrayBox(value) if isinstance(value, Tensor) else value


def unbox(value, device=backend.CPU) -> Tensor:
    """The Tensor of an ArrayBox, or a constant Tensor for a raw array or scalar."""
    if isinstance(value, ArrayBox):
        return value.tensor
    if isinstance(value, Tensor):
        return value
    return Tensor._make(backend.array_module(device).asarray(value), device)


def _tensor(value, like: Tensor) -> Tensor:
    """An operand as a Tensor on like's device (scalars stay scalars: no dtype promotion)."""
    if isinstance(value, ArrayBox):
        return value.tensor
    if isinstance(value, (Tensor, int, float, bool, np.number, np.bool_)):
        return value
    return Tensor._make(backend.array_module(like.device).asarray(value), like.device)


def _unbox_key(key):
    if isinstance(key, tuple):
        return tuple(_unbox_key(k) for k in key)
    if isinstance(key, ArrayBox):
        return key.tensor
    return key


def _raw(value):
    """For NumPy fallbacks: the array of a box that carries no gradient."""
    if isinstance(value, ArrayBox):
        return value.tensor._data
    if isinstance(value, (tuple, list)):
        return type(value)(_raw(v) for v in value)
    return value


def _carries_gradient(value):
    if isinstance(value, ArrayBox):
        return value.tensor.requires_grad
    if isinstance(value, (tuple, list)):
        return builtins.any(_carries_gradient(v) for v in value)
    return False


def _like_tensor(args):
    for a in args:
        if isinstance(a, ArrayBox):
            return a.tensor
        if isinstance(a, (tuple, list)):
            found = _like_tensor(a)
            if found is not None:
                return found
    return None


# ----------------------------------------------------------------------------- the namespace
class ArrayNamespace:
    """`ctx.xp` under create_graph, for one device: NumPy's functions on ArrayBoxes, each a
    recorded minifm op; raw arrays and scalars pass through as constants."""

    def __init__(self, device):
        self.device = device
        self.array_module = backend.array_module(device)
        self.add = _AddUfunc(self)
        self.lib = types.SimpleNamespace(stride_tricks=_StrideTricks(self))

    # elementwise: see _UNARY for exp, log, sin, ...
    def maximum(self, a, b):
        return self._binary(ew.maximum, "maximum", a, b)

    def minimum(self, a, b):
        return self._binary(ew.minimum, "minimum", a, b)

    def matmul(self, a, b):
        return self._binary(la.matmul, "matmul", a, b)

    def einsum(self, equation, *operands, optimize=False):
        like = _like_tensor(operands)
        if like is None:
            return self.array_module.einsum(equation, *operands, optimize=optimize)
        return box(la.einsum(equation, *(unbox(a, like.device) for a in operands)))

    def where(self, condition, a, b):
        like = _like_tensor((a, b))  # a condition carries no gradient
        if like is None:
            return self.array_module.where(_raw(condition), a, b)
        cond = _tensor(condition, like)
        if not isinstance(cond, Tensor):
            cond = Tensor._make(self.array_module.asarray(cond), like.device)
        return box(ew.where(ew.to_dtype(cond, backend.bool_), _tensor(a, like), _tensor(b, like)))

    # new arrays: recordable zeros (backward code writes into them: grad[key] = g)
    def zeros(self, shape, dtype=float):
        return ArrayBox(Tensor._make(self.array_module.zeros(shape, dtype=dtype), self.device))

    def full(self, shape, fill_value, dtype=None):
        return ArrayBox(Tensor._make(self.array_module.full(shape, fill_value, dtype=dtype),
                                     self.device))

    def zeros_like(self, a, dtype=None):
        return self.zeros(a.shape, dtype or a.dtype)

    def ones_like(self, a, dtype=None):
        return self.array_module.ones(a.shape, dtype=dtype or a.dtype)

    def array(self, a, dtype=None, order="K", copy=True):
        if not isinstance(a, ArrayBox):
            return self.array_module.array(a, dtype=dtype, order=order, copy=copy)
        a = a if dtype is None else a.astype(dtype)
        return a.copy() if copy else a

    def ascontiguousarray(self, a):
        return a if isinstance(a, ArrayBox) else self.array_module.ascontiguousarray(a)

    # shapes
    def broadcast_to(self, a, shape):
        return self._shaped(lambda t: sh.expand(t, *shape), "broadcast_to", a, shape)

    def expand_dims(self, a, axis):
        return self._shaped(lambda t: sh.unsqueeze(t, axis), "expand_dims", a, axis)

    def swapaxes(self, a, i, j):
        return self._shaped(lambda t: sh.transpose(t, i, j), "swapaxes", a, i, j)

    def moveaxis(self, a, source, destination):
        return self._shaped(lambda t: sh.movedim(t, source, destination), "moveaxis", a,
                            source, destination)

    def flip(self, a, axis):
        return self._shaped(lambda t: sh.flip(t, axis), "flip", a, axis)

    def roll(self, a, shift, axis=None):
        return self._shaped(lambda t: sh.roll(t, shift, axis), "roll", a, shift, axis)

    def tril(self, a, k=0):
        return self._shaped(lambda t: sh.tril(t, k), "tril", a, k)

    def triu(self, a, k=0):
        return self._shaped(lambda t: sh.triu(t, k), "triu", a, k)

    def cumsum(self, a, axis):
        return self._shaped(lambda t: red.cumsum(t, axis), "cumsum", a, axis)

    def stack(self, arrays, axis=0):
        like = _like_tensor((arrays,))
        if like is None:
            return self.array_module.stack(arrays, axis)
        return box(sh.stack([unbox(a, like.device) for a in arrays], axis))

    def concatenate(self, arrays, axis=0):
        like = _like_tensor((arrays,))
        if like is None:
            return self.array_module.concatenate(arrays, axis)
        return box(sh.cat([unbox(a, like.device) for a in arrays], axis))

    def split(self, a, indices, axis=0):
        if not isinstance(a, ArrayBox):
            return self.array_module.split(a, indices, axis)
        bounds = [0, *indices, a.shape[axis]]
        return [box(sh.narrow(a.tensor, axis, lo, hi - lo)) for lo, hi in zip(bounds, bounds[1:])]

    # helpers
    def _unary(self, op, name, x):
        return box(op(x.tensor)) if isinstance(x, ArrayBox) else getattr(self.array_module, name)(x)

    def _binary(self, op, name, a, b):
        like = _like_tensor((a, b))
        if like is None:
            return getattr(self.array_module, name)(a, b)
        return box(op(_tensor(a, like), _tensor(b, like)))

    def _shaped(self, op, name, a, *args):
        return box(op(a.tensor)) if isinstance(a, ArrayBox) else getattr(self.array_module, name)(a, *args)

    def __getattr__(self, name):
        """The unary functions of _UNARY, and everything else NumPy's (or CuPy's), for
        arguments that carry no gradient."""
        if name in _UNARY:
            op = _UNARY[name]
            return lambda x: self._unary(op, name, x)
        target = getattr(self.array_module, name)
        if not callable(target) or isinstance(target, type):
            return target

        def fallback(*args, **kwargs):
            if _carries_gradient(args) or _carries_gradient(tuple(kwargs.values())):
                raise NotImplementedError(
                    f"xp.{name}: not differentiable under create_graph (minifm's array "
                    "namespace for higher-order gradients has no differentiable form of it)")
            return target(*_raw(args), **{k: _raw(v) for k, v in kwargs.items()})
        return fallback


_UNARY = {"exp": ew.exp, "log": ew.log, "log1p": ew.log1p, "sqrt": ew.sqrt, "abs": ew.abs,
          "sign": ew.sign, "sin": ew.sin, "cos": ew.cos, "tanh": act.tanh,
          "reciprocal": ew.reciprocal, "square": ew.square, "sinh": ew.sinh, "cosh": ew.cosh,
          "floor": ew.floor, "trunc": ew.trunc}
"""NumPy's unary functions with a differentiable minifm op of the same meaning."""


class _AddUfunc:
    """`xp.add(a, b)` and `xp.add.at(target, key, values)`: a scatter-add, recorded, written
    into `target` in place as NumPy's is."""

    def __init__(self, namespace):
        self.namespace = namespace

    def __call__(self, a, b):
        return a + b

    def at(self, target, key, values):
        if not isinstance(target, ArrayBox):
            if isinstance(values, ArrayBox):
                raise TypeError("xp.add.at under create_graph: the target must be made with "
                                "xp.zeros")
            return self.namespace.array_module.add.at(target, key, values)
        key = _unbox_key(key)
        result = ix.add_at(target.tensor, key, _tensor(values, target.tensor))
        ip.commit(target.tensor, result, "add.at")


class _StrideTricks:
    """`xp.lib.stride_tricks`: sliding_window_view of a box is one slice per window offset,
    stacked (of a raw array, NumPy's strided view). as_strided has no differentiable form:
    its strides may alias elements arbitrarily."""

    def __init__(self, namespace):
        self.namespace = namespace

    def sliding_window_view(self, x, window_shape, axis=None):
        if not isinstance(x, ArrayBox):
            return self.namespace.array_module.lib.stride_tricks.sliding_window_view(
                x, window_shape, axis=axis)
        window_shape = tuple(window_shape) if np.iterable(window_shape) else (window_shape,)
        axes = tuple(range(x.ndim)) if axis is None else (
            tuple(axis) if np.iterable(axis) else (axis,))
        axes = tuple(a % x.ndim for a in axes)
        pieces = []
        for offset in np.ndindex(*window_shape):
            key = [slice(None)] * x.ndim
            for a, o, w in zip(axes, offset, window_shape):
                key[a] = slice(o, o + x.shape[a] - w + 1)
            pieces.append(x.tensor[tuple(key)])
        stacked = sh.stack(pieces, -1)
        return box(sh.reshape(stacked, *stacked.shape[:-1], *window_shape))


_namespaces = {}


def namespace_for(device) -> ArrayNamespace:
    """The create_graph array namespace of a device (one per device, made on first use)."""
    if device not in _namespaces:
        _namespaces[device] = ArrayNamespace(device)
    return _namespaces[device]


engine.register_array_api(sys.modules[__name__])
