"""In-place ops (`add_`, `copy_`, `fill_`, `t[key] = v`, ...) and how they reach views.

Every in-place op is written as its out-of-place form followed by one commit:

    result = mul(self, 3)          # out of place, recorded like any op
    commit(self, result, "mul_")   # make `self` hold `result`

`commit` has three cases, and this file is about nothing else:

1. Nothing to record (grad mode off, or no tensor involved requires grad): the result is
   written into `self`'s memory, so the base and every view of it see the change at once.
   This is the path of initializers and optimizer steps.
2. `self` owns its memory (it is not a view): `self` takes the result's array and node,
   copy-on-write. Arrays that earlier ops saved for backward keep their old values, so
   their gradients stay right; PyTorch instead bumps a version counter and refuses the
   later backward ("modified by an inplace operation").
3. `self` is a view of a base: the base is rewritten as CopySlices(base, result), a new
   array equal to the base with the view's region replaced, whose backward routes the
   gradient of that region to `result` and the rest to the old base (PyTorch's
   CopySlices). The base then holds the new array and node, and every live view of it is
   made again from the base by replaying its view ops, so each one sees the new values
   and passes its gradient through the new node.

Where PyTorch refuses an in-place op, minifm refuses with the same reason: a leaf that
requires grad, a view of such a leaf, a tensor whose elements overlap in memory (an
expanded one), an output of split/chunk/unbind, and a view made under no_grad of a base
that requires grad.
"""
from __future__ import annotations

import weakref

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled, live_views, replay_view
from ..tensor import Tensor, ViewOf
from .elementwise import (add, as_tensor_like, clamp, div, masked_fill, mul, sub, to_device,
                          to_dtype)
from .index import SetItem, raw_key


class CopySlices(Function):
    """base with its view `steps` region replaced by `value`, out of place.

    The copy is C-contiguous, so replaying the view ops on it (or on a C-contiguous copy of
    its gradient) always gives a view that can be written through."""

    node_name = "CopySlices"

    @staticmethod
    def forward(ctx, base, value, *, steps):
        ctx.steps = steps
        out = ctx.xp.array(base, order="C")
        replay_view(out, steps, ctx.device)[...] = value
        return out

    @staticmethod
    def backward(ctx, g):
        g = ctx.xp.array(g, order="C")
        region = replay_view(g, ctx.steps, ctx.device)
        g_value = region.copy() if ctx.needs_input_grad[1] else None
        region[...] = 0
        return g, g_value


class Overwrite(Function):
    """out = value broadcast to x's shape and dtype: the out-of-place form of fill_, copy_,
    zero_ and the in-place samplers of ops/random.py (normal_, uniform_...). x is an input only so that the result stays in x's graph;
    its gradient is zero, since its old values are gone."""

    @staticmethod
    def forward(ctx, x, value):
        return ctx.xp.broadcast_to(value, x.shape).astype(x.dtype, copy=True)

    @staticmethod
    def backward(ctx, g):
        return ctx.xp.zeros_like(g), g  # the engine sums g back to value's shape


# ----------------------------------------------------------------------------- the commit
def _check_writable(t: Tensor, op: str, recording: bool):
    strides = t._data.strides
    if t._data.size > 1 and any(s == 0 and n > 1 for s, n in zip(strides, t._data.shape)):
        raise RuntimeError(
            f"{op}: unsupported operation: more than one element of the written-to tensor "
            f"(shape {tuple(t.shape)}, strides {strides}) refers to a single memory location "
            "(an expanded tensor). Please clone() the tensor before performing the operation.")
    if not recording:
        return
    if t.requires_grad and t.grad_fn is None and t._view is None:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                           "in-place operation; wrap it in minifm.no_grad() to change it")
    view = t._view
    if view is None or not view.base.requires_grad:
        return
    if view.base.grad_fn is None:
        raise RuntimeError(f"{op}: a view of a leaf Variable that requires grad is being used "
                           "in an in-place operation; wrap it in minifm.no_grad() to change it")
    if view.multi_output:
        raise RuntimeError(
            f"{op}: this view is an output of a function that returns multiple views "
            "(split, chunk, unbind); such views may not be modified in-place. Use clone() "
            "on the output, or index the tensor instead.")
    if view.in_no_grad:
        raise RuntimeError(f"{op}: a view was created in no_grad mode and is being modified "
                           "in-place with grad mode enabled; make the view with grad enabled")


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
"""bool < integer < floating < complex: an in-place result may be cast down this order only
(x.eq_(y) on floats is fine; exp_ or div_ on an integer tensor is refused, as in PyTorch)."""


def commit(self: Tensor, result: Tensor, op: str) -> Tensor:
    """Make `self` hold `result`, the out-of-place result of an in-place op on it."""
    if tuple(result.shape) != tuple(self.shape):
        raise RuntimeError(f"{op}: output with shape {tuple(self.shape)} doesn't match the "
                           f"broadcast shape {tuple(result.shape)}")
    if result.dtype != self.dtype:
        if _KIND_RANK[result.dtype.kind] > _KIND_RANK[self.dtype.kind]:
            raise RuntimeError(f"{op}: result type {backend.dtype_name(result.dtype)} can't be "
                               f"cast to the desired output type {backend.dtype_name(self.dtype)}")
        result = to_dtype(result, self.dtype)
    base = self if self._view is None else self._view.base
    recording = is_grad_enabled() and (result.requires_grad or base.requires_grad)
    _check_writable(self, op, recording)
    if not recording:
        self._data[...] = result._data
        return self
    if base is self:
        views = live_views(self)
        xp = backend.array_module(self.device)
        self._data = xp.ascontiguousarray(result._data) if views else result._data
        self.grad_fn, self.requires_grad = result.grad_fn, True
    else:
        new = CopySlices.apply(base, result, steps=self._view.steps)
        base._data, base.grad_fn, base.requires_grad = new._data, new.grad_fn, True
        views = live_views(base)
    for view in views:
        _remake_view(view, base)
    return self


def _remake_view(view: Tensor, base: Tensor):
    """Point `view` at the base's new array and node by replaying its view ops."""
    remade = base
    for fn, attrs in view._view.steps:
        remade = fn.apply(remade, **attrs)
    view._data, view.grad_fn, view.requires_grad = remade._data, remade.grad_fn, remade.requires_grad


# ----------------------------------------------------------------------------- the ops
def _inplace(op_name, out_of_place):
    def method(self, *args, **kwargs):
        return commit(self, out_of_place(self, *args, **kwargs), op_name)

    method.__name__ = op_name
    method.__doc__ = f"In-place {op_name[:-1]}: self = {op_name[:-1]}(self, ...)."
    return method


add_ = _inplace("add_", add)
sub_ = _inplace("sub_", sub)
mul_ = _inplace("mul_", mul)
div_ = _inplace("div_", div)
clamp_ = _inplace("clamp_", clamp)
masked_fill_ = _inplace("masked_fill_", masked_fill)


def _records(self: Tensor, value: Tensor) -> bool:
    """Whether writing `value` into `self` must be recorded in the graph."""
    base = self if self._view is None else self._view.base
    return is_grad_enabled() and (value.requires_grad or base.requires_grad)


def _overwrite(self, value, op):
    """self[...] = value (a Tensor, or an array on self's device), through `commit`."""
    if not isinstance(value, Tensor):
        value = Tensor._make(value, self.device)
    if _records(self, value):
        return commit(self, Overwrite.apply(self, value), op)
    _check_writable(self, op, False)
    self._data[...] = value._data  # untracked (initializers, optimizers): no graph, no copy
    return self


def copy_(self, src):
    """Copy src (broadcast to self's shape, cast to self's dtype and device) into self."""
    if not isinstance(src, Tensor):
        src = Tensor(np.asarray(src))
    try:
        np.broadcast_shapes(tuple(src.shape), tuple(self.shape))
    except ValueError:
        raise RuntimeError(f"copy_: the source of shape {tuple(src.shape)} must be "
                           f"broadcastable to the destination's shape {tuple(self.shape)}") from None
    return _overwrite(self, to_dtype(to_device(src, self.device), self.dtype), "copy_")


def fill_(self, value):
    value = value.item() if isinstance(value, Tensor) else value
    return _overwrite(self, as_tensor_like(value, self), "fill_")


def zero_(self):
    return fill_(self, 0)


def setitem(self, key, value):
    """t[key] = value: SetItem out of place (a copy of t with the region replaced), then the
    commit; with nothing to record, a plain write into t's memory (views see it)."""
    key = raw_key(key)
    value = to_dtype(as_tensor_like(value, self), self.dtype)
    if _records(self, value):
        try:
            out = SetItem.apply(self, value, key=key)
        except ValueError as err:  # the value does not broadcast to the region
            raise RuntimeError(f"setitem: cannot assign a value of shape {tuple(value.shape)} "
                               f"to index {key!r} of a tensor of shape {tuple(self.shape)}: "
                               f"{err}") from None
        return commit(self, out, "setitem")
    _check_writable(self, "setitem", False)
    try:
        self._data[key] = value._data
    except (IndexError, ValueError) as err:
        raise IndexError(f"setitem: cannot assign a value of shape {tuple(value.shape)} to "
                         f"index {key!r} of a tensor of shape {tuple(self.shape)}: {err}") from None


# ----------------------------------------------------------------------------- the `_` forms
INPLACE_FORMS = """
    abs neg sign reciprocal square sqrt rsqrt exp exp2 expm1 log log1p log2 log10 sin cos tan
    asin acos atan arcsin arccos arctan sinh cosh tanh asinh acosh atanh arcsinh arccosh
    arctanh sigmoid relu erf erfc erfinv frac floor ceil round trunc fix nan_to_num
    pow atan2 arctan2 fmod remainder copysign lerp hypot xlogy floor_divide clip clamp_min
    clamp_max cumsum cumprod tril triu
    eq ne lt le gt ge logical_and logical_or logical_xor logical_not
    bitwise_and bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift
""".split()
"""Tensor methods whose in-place form `name_` is the method followed by `commit`: every
out-of-place op of Tensor's API for which PyTorch has a `name_` (tests/test_inplace_forms.py
checks the list against torch.Tensor)."""

VIEW_FORMS = "t transpose swapaxes swapdims unsqueeze squeeze".split()
"""Tensor methods whose in-place form changes the tensor's shape and strides, not its
values (see `view_inplace`)."""


def view_inplace(op_name, view_op):
    """x.t_(), x.unsqueeze_(0)...: `self` becomes view_op(self), keeping its identity.

    The new array is a view of the old memory, so writes through `self` still reach its base
    and the other views. When `self` is a view, it stays one, one view step further. When
    `self` is a base with live views, those views keep their steps from the old layout: the
    old layout moves to a hidden base tensor that they and `self` are views of."""
    def method(self, *args, **kwargs):
        recording = is_grad_enabled() and self.requires_grad
        if recording and self.grad_fn is None and self._view is None:
            raise RuntimeError(f"{op_name}: a leaf Variable that requires grad is being used "
                               "in an in-place operation; wrap it in minifm.no_grad() to change it")
        new = view_op(self, *args, **kwargs)
        if new is self:
            return self
        info = self._view
        if info is not None:  # a view stays a view of the same base, one step further
            base, steps = info.base, new._view.steps
            _register_view(base, self)
        else:
            views = live_views(self)
            base, steps = None, None
            if views:  # the old layout becomes a hidden base of self and of the old views
                base = Tensor._make(self._data, self.device, self.requires_grad, self.grad_fn)
                base._views = [weakref.ref(v) for v in views]
                for view in views:
                    view._view.base = base
                self._views = None
                steps = new._view.steps
                _register_view(base, self)
        self._view = None if base is None else ViewOf(base, steps, new._view.in_no_grad)
        self._data = new._data
        if recording:
            self.grad_fn, self.requires_grad = new.grad_fn, new.requires_grad
        return self

    method.__name__ = op_name
    method.__doc__ = f"In-place {op_name[:-1]}: self becomes self.{op_name[:-1]}(...) (a view)."
    return method


def _register_view(base, view):
    base._views = (base._views or []) + [weakref.ref(view)]


def inplace_forms(methods):
    """The `name_` methods of INPLACE_FORMS and VIEW_FORMS, built from Tensor's `methods`."""
    forms = {name + "_": _inplace(name + "_", methods[name]) for name in INPLACE_FORMS}
    forms.update({name + "_": view_inplace(name + "_", methods[name]) for name in VIEW_FORMS})
    return forms
