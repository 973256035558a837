"""Function and Node: what an op is, and what it leaves in the graph.

An op is a `Function` subclass with a `forward` and a `backward` on raw xp arrays. Calling
`MyOp.apply(*tensors, **attrs)` runs forward and, when grad mode is on and some input
requires grad, records a `Node` (the op's context: what it saved, and which nodes made its
inputs). The Tensor it returns keeps that node as `grad_fn`; together the nodes form the
graph that the engine walks in reverse.

A Function whose output can share its input's memory (`view = True`) also links the output
to the input's base, so that in-place ops through views reach the base (ops/inplace.py).
"""
from __future__ import annotations

import weakref

import numpy as np

from ..backend import CPU, array_module
from ..tensor import Tensor, ViewOf
from . import function_hooks, grad_mode

_grad_mode = grad_mode.current  # this thread's grad mode (a threading.local), read per op


class Node:
    """The context of one recorded op, and its place in the graph.

    Ops store what their backward needs with `save_for_backward` (read back as `ctx.saved`)
    or as plain attributes. `parents[i]` is where the gradient of input i goes: the Node that
    produced it, the leaf Tensor itself (its gradient is accumulated into `.grad`), or None
    when input i needs no gradient.
    """

    # Only what every node sets is a slot; the fields most ops never set keep their
    # defaults on the class and land in the instance __dict__ when set (4 stores per op
    # instead of 12: the no-grad path of a small op is mostly this constructor).
    __slots__ = ("fn", "device", "xp", "needs_input_grad", "hooks", "retained",
                 "__dict__", "__weakref__")
    saved = ()
    array_ids = ()      # id() of each input array, then of the output (saved_sources)
    call_attrs = None   # the op's keyword attributes, to re-run it (composite)
    parents = ()
    input_meta = ()     # (shape, dtype) of each input, to shape its gradient
    freed = False

    def __init__(self, fn, device, xp, needs_input_grad):
        self.fn = fn
        self.device = device
        self.xp = xp            # numpy or cupy: the array module of the inputs
        self.needs_input_grad = needs_input_grad
        self.hooks = None       # hooks registered on the (non-leaf) output tensor
        self.retained = None    # weakref to the output tensor when it called retain_grad()

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def name(self) -> str:
        """PyTorch's name for the node: MulBackward0, or the op's own `node_name`. A Function
        called <Op>Function (so as not to share its nn Module's name) is <Op>Backward0."""
        return self.fn.node_name or f"{self.fn.__name__.removesuffix('Function')}Backward0"

    def __repr__(self):
        return f"<{self.name()}>"

    def release(self):
        """Drop what backward needed (saved arrays, attributes, the edges to the inputs), so
        the arrays and the rest of the graph can be freed while the output tensor lives on."""
        self.__dict__.clear()  # saved, call_attrs, parents... fall back to the class's empties
        self.freed = True


class Function:
    """Base class of every differentiable op. Subclasses define two static methods:

    forward(ctx, *arrays, **attrs) -> array     (raw xp arrays in, one array out)
    backward(ctx, grad) -> grad or tuple of grads, one per positional input (None allowed)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run forward on the inputs' arrays; record a Node when a gradient is needed.
        This is the hot path of every op, so it does one pass over the inputs and no more."""
        arrays = []
        device = None
        any_grad = False
        for t in inputs:
            if t is None:
                arrays.append(None)
                continue
            if t.__class__ is not Tensor and not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__}: expected Tensor inputs, got {type(t).__name__}")
            if device is None:
                device = t.device
            elif t.device is not device and t.device != device:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got "
                    + ", ".join(str(x.device) for x in inputs if x is not None))
            arrays.append(t._data)
            if t.requires_grad:
                any_grad = True

        record = any_grad and _grad_mode.enabled
        if record:  # which inputs need a gradient, where it goes, and their shapes: one pass
            needs, parents, meta = [], [], []
            for t, a in zip(inputs, arrays):
                if t is not None and t.requires_grad:
                    needs.append(True)
                    parents.append(t.grad_fn or t)
                    meta.append((a.shape, a.dtype))
                else:
                    needs.append(False)
                    parents.append(None)
                    meta.append(None)
            needs = tuple(needs)
        else:
            needs = (False,) * len(inputs)
        ctx = Node(cls, device, np if device is CPU else array_module(device), needs)
        hooks = function_hooks.active
        if hooks:
            for hook in hooks:
                hook.forward_preprocess(cls, inputs)
        raw = out = cls.forward(ctx, *arrays, **attrs)
        if out.__class__ is not np.ndarray and isinstance(out, np.generic):
            out = np.asarray(out)  # NumPy gives scalars for 0-d results; a Tensor holds arrays
        if not record:
            result = Tensor._make(out, device)
        else:
            ctx.parents, ctx.input_meta = tuple(parents), tuple(meta)
            ctx.call_attrs = attrs
            if ctx.saved:
                ctx.array_ids = (*map(id, arrays), id(raw))
            result = Tensor._make(out, device, True, ctx)
        if cls.view and _shares_memory(out, arrays[0], ctx.xp):
            _link_view(result, inputs[0], (cls, attrs))
        if hooks:
            for hook in hooks:
                hook.forward_postprocess(cls, inputs, result, result.grad_fn)
        return result

    node_name = None  # what grad_fn.name() says when PyTorch does not append "Backward0"

    saved_constants = False
    """True when the arrays the op saves, besides its inputs and its output, do not depend on
    them (masks, indices, random draws): under create_graph they are then constants. When
    False, such a floating-point array makes create_graph refuse the op (its backward could
    not be differentiated again), unless the op has a `composite`."""

    reference = None
    """For a fused op whose backward is a kernel: the reference Function computing the same
    derivative from the same saved arrays and attributes. Under create_graph the engine runs
    the reference's backward (on the differentiable array namespace) instead."""

    composite = None
    """For ops whose backward can run neither on the differentiable array namespace nor
    through a `reference`: a function (*input_tensors, **attrs) -> Tensor computing the same
    output with differentiable ops. Under create_graph the engine differentiates that."""

    view = False
    """True for ops whose output may share the first input's memory (reshape, permute,
    basic indexing...). When it does, the output is recorded as a view of that input's
    base, so that in-place ops through it reach the base (see ops/inplace.py)."""


def saved_sources(node):
    """Where each array the node saved came from: the index of the input it is, -1 for the
    output, None for an array the op computed. Under create_graph this maps a saved array
    back to a Tensor in the graph. Forward records only the ids of its arrays (cheap, and
    exact: the inputs, the output and the saved arrays were all alive together then). An
    input passed twice (x * x) or an optional input left None is matched to the next input
    it is, so each saved entry keeps its own position."""
    if not node.saved:
        return ()
    *input_ids, output_id = node.array_ids
    sources, taken = [], set()
    for s in node.saved:
        if s is not None and id(s) == output_id:
            sources.append(-1)
            continue
        same = [i for i, a in enumerate(input_ids) if a == id(s)]
        free = [i for i in same if i not in taken]
        index = free[0] if free else (same[0] if same else None)
        if index is not None:
            taken.add(index)
        sources.append(index)
    return tuple(sources)


def _shares_memory(out, source, xp):
    """Whether a view op's output is a view of its input (NumPy's own base link first: the
    common case costs no memory-bounds check)."""
    base = out.base
    if base is None:
        return False
    return base is source or base is source.base or xp.may_share_memory(out, source)


def _link_view(view, source, step):
    """Record that `view` shares the memory of `source`'s base, reached through `step`."""
    info = source._view
    base, steps = (source, (step,)) if info is None else (info.base, info.steps + (step,))
    view._view = ViewOf(base, steps, not grad_mode.current.enabled)
    refs = base._views
    if refs is None:
        base._views = [weakref.ref(view)]
        return
    if len(refs) >= 32 and not len(refs) & (len(refs) - 1):  # prune dead ones, amortized
        refs[:] = [r for r in refs if r() is not None]
    refs.append(weakref.ref(view))


def live_views(base):
    """The views of `base` that are still alive."""
    refs = base._views or ()
    return [v for v in (r() for r in refs) if v is not None]


def replay_view(array, steps, device=None):
    """Apply the view ops `steps` to a raw array (the base's, or its gradient)."""
    xp = np if device is None or device is CPU else array_module(device)
    for fn, attrs in steps:
        array = fn.forward(Node(fn, device, xp, ()), array, **attrs)
    return array
