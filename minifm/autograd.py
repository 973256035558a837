"""Reverse-mode automatic differentiation: Function, grad mode and the backward engine.

An op is a `Function` subclass with a `forward` and a `backward` on raw xp arrays. Calling
`MyOp.apply(*tensors, **attrs)` runs forward and, when grad mode is on and some input
requires grad, records a `Node` (the op's context: what it saved, and which nodes made its
inputs). The Tensor it returns keeps that node as `grad_fn`; together the nodes form the
graph that `backward` walks in reverse.

The engine (`run_backward`) is iterative, so a 10,000-op chain does not hit Python's
recursion limit. It counts each node's consumers first, then hands a node to its backward
only when every consumer has delivered its gradient (HIPS autograd's child counting), so a
node reused many times runs once with the sum of its gradients. Broadcasting is undone in
one place, `unbroadcast`, for every op.
"""
from __future__ import annotations

import functools
import threading
import weakref

import numpy as np

from .backend import CPU, array_module
from .tensor import Tensor, ViewOf


# ----------------------------------------------------------------------------- grad mode
class _GradMode(threading.local):
    enabled = True  # the class attribute is each thread's starting value


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


def _set_grad_enabled(mode: bool):
    _grad_mode.enabled = bool(mode)


class _GradModeContext:
    """Base of no_grad / enable_grad: a context manager that is also a decorator, written
    `@no_grad()` or, as PyTorch allows too, `@no_grad`."""

    mode = True

    def __new__(cls, *args):
        self = super().__new__(cls)
        if len(args) == 1 and callable(args[0]):  # the bare decorator: no_grad(func)
            return self(args[0])
        return self

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev)

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_grad_enabled(mode)
            try:
                return func(*args, **kwargs)
            finally:
                _set_grad_enabled(prev)
        return wrapper


class no_grad(_GradModeContext):
    """Ops run inside record no graph (inference, optimizer updates, init)."""
    mode = False


class enable_grad(_GradModeContext):
    """Re-enable recording inside a no_grad region."""
    mode = True


class set_grad_enabled(_GradModeContext):
    """set_grad_enabled(False) switches recording off now; as a context manager it restores
    the previous mode on exit (torch.set_grad_enabled semantics)."""

    def __init__(self, mode: bool):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_grad_enabled(self.mode)

    def __enter__(self):
        pass


# ----------------------------------------------------------------------------- graph nodes
class Node:
    """The context of one recorded op, and its place in the graph.

    Ops store what their backward needs with `save_for_backward` (read back as `ctx.saved`)
    or as plain attributes. `parents[i]` is where the gradient of input i goes: the Node that
    produced it, the leaf Tensor itself (its gradient is accumulated into `.grad`), or None
    when input i needs no gradient.
    """

    __slots__ = ("fn", "device", "xp", "needs_input_grad", "saved", "parents", "input_meta",
                 "hooks", "retained", "freed", "__dict__", "__weakref__")

    def __init__(self, fn, device, xp, needs_input_grad):
        self.fn = fn
        self.device = device
        self.xp = xp            # numpy or cupy: the array module of the inputs
        self.needs_input_grad = needs_input_grad
        self.saved = ()
        self.parents = ()
        self.input_meta = ()    # (shape, dtype) of each input, to shape its gradient
        self.hooks = None       # hooks registered on the (non-leaf) output tensor
        self.retained = None    # weakref to the output tensor when it called retain_grad()
        self.freed = False

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def name(self) -> str:
        """PyTorch's name for the node: MulBackward0, or the op's own `node_name`."""
        return self.fn.node_name or f"{self.fn.__name__}Backward0"

    def __repr__(self):
        return f"<{self.name()}>"

    def release(self):
        """Drop what backward needed (saved arrays, attributes, the edges to the inputs), so
        the arrays and the rest of the graph can be freed while the output tensor lives on."""
        self.saved = None
        self.__dict__.clear()
        self.parents = self.input_meta = ()
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
            if not isinstance(t, Tensor):
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
        if record:
            needs = tuple([t is not None and t.requires_grad for t in inputs])
        else:
            needs = (False,) * len(inputs)
        xp = np if device is CPU else array_module(device)
        ctx = Node(cls, device, xp, needs)
        out = cls.forward(ctx, *arrays, **attrs)
        if out.__class__ is not np.ndarray and isinstance(out, np.generic):
            out = np.asarray(out)  # NumPy gives scalars for 0-d results; a Tensor holds arrays
        if not record:
            result = Tensor._make(out, device)
        else:
            ctx.parents = tuple([(t.grad_fn or t) if need else None
                                 for t, need in zip(inputs, needs)])
            ctx.input_meta = tuple([(a.shape, a.dtype) if need else None
                                    for a, need in zip(arrays, needs)])
            result = Tensor._make(out, device, True, ctx)
        if cls.view and out.base is not None and xp.may_share_memory(out, arrays[0]):
            _link_view(result, inputs[0], (cls, attrs))
        return result

    node_name = None  # what grad_fn.name() says when PyTorch does not append "Backward0"

    view = False
    """True for ops whose output may share the first input's memory (reshape, permute,
    basic indexing...). When it does, the output is recorded as a view of that input's
    base, so that in-place ops through it reach the base (see ops/inplace.py)."""


def _link_view(view, source, step):
    """Record that `view` shares the memory of `source`'s base, reached through `step`."""
    info = source._view
    base, steps = (source, (step,)) if info is None else (info.base, info.steps + (step,))
    view._view = ViewOf(base, steps, not _grad_mode.enabled)
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


# ----------------------------------------------------------------------------- the engine
def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting (the one place this is done)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _count_consumers(roots):
    """For each node reachable from roots, how many edges point at it (iterative DFS)."""
    consumers = {}
    stack = list(roots)
    seen = set(stack)
    while stack:
        for parent in stack.pop().parents:
            if parent.__class__ is Node:
                consumers[parent] = consumers.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return consumers


def _apply_hooks(hooks, grad, device):
    for hook in hooks:
        result = hook(Tensor._make(grad, device))
        if result is not None:
            grad = result._data
    return grad


def _accumulate(leaf_grads, leaf, g):
    entry = leaf_grads.get(id(leaf))
    if entry is None:
        leaf_grads[id(leaf)] = [leaf, g]
    else:
        entry[1] = entry[1] + g


def run_backward(tensors, grads, retain_graph=False, inputs=None):
    """Backpropagate `grads` (raw arrays) from `tensors`.

    With inputs=None, gradients of leaves are accumulated into their `.grad`. With a list
    of inputs (autograd.grad), their gradients are returned instead and no `.grad` changes.
    """
    node_grads = {}   # node -> gradient of its output, summed over the consumers so far
    leaf_grads = {}   # id(leaf) -> [leaf, summed gradient]
    for t, g in zip(tensors, grads):
        node = t.grad_fn
        if node is None:  # backward() on a leaf: its gradient is the seed itself
            _accumulate(leaf_grads, t, g)
        else:
            node_grads[node] = node_grads[node] + g if node in node_grads else g
    wanted = None if inputs is None else {t.grad_fn: None for t in inputs if t.grad_fn is not None}

    consumers = _count_consumers(node_grads)
    ready = [n for n in node_grads if n not in consumers]
    while ready:
        node = ready.pop()
        grad = node_grads.pop(node)
        if node.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({node.name()} has "
                "already freed its saved arrays). Specify retain_graph=True on the first "
                "backward() if you need to backward through the graph again.")
        if node.hooks:
            grad = _apply_hooks(node.hooks, grad, node.device)
        if wanted is not None:
            if node in wanted:
                wanted[node] = grad
        elif node.retained is not None and node.retained() is not None:
            owner = node.retained()
            owner.grad = Tensor._make(grad if owner.grad is None else owner.grad._data + grad,
                                      node.device)

        input_grads = node.fn.backward(node, grad)
        if input_grads.__class__ is not tuple:
            input_grads = (input_grads,)
        if len(input_grads) != len(node.parents):
            raise RuntimeError(f"{node.name()} returned {len(input_grads)} gradients for "
                               f"{len(node.parents)} inputs")
        for parent, g, meta in zip(node.parents, input_grads, node.input_meta):
            if parent is None:
                continue
            shape, dtype = meta
            if g is None:  # no gradient flows here, but the parent still waits for one
                if parent.__class__ is not Node:
                    continue
                g = node.xp.zeros(shape, dtype)
            if g.shape != shape:
                g = unbroadcast(g, shape)
            if g.dtype != dtype:
                g = g.astype(dtype)
            if parent.__class__ is Node:
                node_grads[parent] = node_grads[parent] + g if parent in node_grads else g
                consumers[parent] -= 1
                if consumers[parent] == 0:
                    ready.append(parent)
            else:
                _accumulate(leaf_grads, parent, g)
        if not retain_graph:
            node.release()

    if inputs is not None:
        result = []
        for t in inputs:
            if t.grad_fn is not None:
                g = wanted.get(t.grad_fn)
            else:
                g = leaf_grads[id(t)][1] if id(t) in leaf_grads else None
            result.append(None if g is None else Tensor._make(_as_array(g), t.device))
        return result

    # A .grad owns its memory: views (broadcasts, reshapes) and arrays handed to several
    # leaves (Add gives its gradient to both inputs) or passed in as seeds are copied.
    handed_out = {id(s) for s in grads}
    for leaf, g in leaf_grads.values():
        if leaf._hooks:
            g = _apply_hooks(leaf._hooks, g, leaf.device)
        g = _as_array(g)
        if leaf.grad is None:
            if id(g) in handed_out or not g.flags.owndata:
                g = g.copy()
            handed_out.add(id(g))
            leaf.grad = Tensor._make(g, leaf.device)
        else:
            leaf.grad._data = leaf.grad._data + g
    return None


def _as_array(g):
    """NumPy turns 0-d results into scalars; gradients stay arrays."""
    return np.asarray(g) if isinstance(g, np.generic) else g


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of outputs with respect to inputs, returned rather than stored in .grad
    (torch.autograd.grad; higher-order gradients via create_graph are not supported)."""
    no_create_graph("autograd.grad", create_graph)
    retain_graph = bool(retain_graph)

    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("autograd.grad: one of the inputs does not require grad")
    seeds = [seed_for(o, g, "autograd.grad") for o, g in zip(outputs, grad_outputs)]
    result = run_backward(outputs, seeds, retain_graph=retain_graph, inputs=inputs)
    if not allow_unused and any(r is None for r in result):
        raise RuntimeError("autograd.grad: one of the inputs was not used to compute the "
                           "outputs; pass allow_unused=True if this is intended")
    return tuple(result)


def no_create_graph(op, create_graph):
    if create_graph:
        raise NotImplementedError(f"{op}: create_graph=True (gradients of gradients) is not "
                                  "supported by minifm: backward runs on raw arrays")


def seed_for(output, gradient, op):
    """The gradient that starts backward at `output`: ones for a scalar, else as given."""
    if not output.requires_grad:
        raise RuntimeError(f"{op}: element 0 of tensors does not require grad and does not "
                           "have a grad_fn")
    if gradient is None:
        if output._data.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs, "
                               f"got shape {tuple(output.shape)}")
        return array_module(output.device).ones(output._data.shape, dtype=output._data.dtype)
    if tuple(gradient.shape) != tuple(output.shape):
        raise RuntimeError(f"{op}: gradient has shape {tuple(gradient.shape)} but the output "
                           f"has shape {tuple(output.shape)}")
    return gradient._data.astype(output._data.dtype, copy=False)


__all__ = ["Function", "Node", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "grad", "run_backward", "unbroadcast"]
