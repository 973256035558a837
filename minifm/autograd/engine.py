"""The backward engine: a short pure core (the chain rule over the graph) and the two ways
into it, `run_backward` (Tensor.backward: gradients accumulate into leaves' `.grad`) and
`grad` (torch.autograd.grad: gradients are returned).

The core, `backprop`, is iterative, so a 10,000-op chain does not hit Python's recursion
limit. It counts each node's consumers first, then hands a node to its backward only when
every consumer has delivered its gradient (HIPS autograd's child counting), so a node
reused many times runs once with the sum of its gradients. Broadcasting is undone in one
place, `unbroadcast`, for every op. Tensor hooks and retain_grad are not in the core: each
caller passes a `visit` function that sees every node's gradient before its backward runs.

Gradients of gradients (`create_graph=True`): the same core runs every op's one backward,
but hands it ArrayBoxes (Tensors seen through NumPy's array API) for the gradient and for
the arrays it saved, and a differentiable array namespace as `ctx.xp` (ops/array_box.py).
The backward's arithmetic is then recorded like any forward computation, and the
gradients it returns are Tensors in a graph that can be differentiated again.
"""
from __future__ import annotations

import sys

import numpy as np

from ..backend import array_module
from ..tensor import Tensor
from . import function_hooks
from .function import Node, saved_sources
from .grad_mode import enable_grad

# The differentiable array API that create_graph needs (ArrayBox, box, unbox, namespace_for).
# It is built from the ops, a layer above this one, which register it when minifm is
# imported (ops/array_box.py).
_array_api = None


def register_array_api(module):
    global _array_api
    _array_api = module


# ----------------------------------------------------------------------------- the core
def backprop(seeds, visit, retain_graph, create_graph=False):
    """Propagate gradients from `seeds` ({node: gradient of its output}) to the leaves.

    `visit(node, grad) -> grad` sees each node's summed gradient before the node's backward
    runs. Returns {id(leaf): [leaf, summed gradient]} for every leaf reached.
    """
    node_grads = dict(seeds)  # node -> gradient of its output, summed over consumers so far
    leaf_grads = {}
    consumers = _count_consumers(node_grads)
    ready = [n for n in node_grads if n not in consumers]
    while ready:
        node = ready.pop()
        if node.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({node.name()} has "
                "already freed its saved arrays). Specify retain_graph=True on the first "
                "backward() if you need to backward through the graph again.")
        grad = visit(node, node_grads.pop(node))
        for parent, g in _input_grads(node, grad, create_graph):
            if parent.__class__ is Node:
                node_grads[parent] = node_grads[parent] + g if parent in node_grads else g
                consumers[parent] -= 1
                if consumers[parent] == 0:
                    ready.append(parent)
            else:
                accumulate(leaf_grads, parent, g)
        if not retain_graph:
            node.release()
    return leaf_grads


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


def _input_grads(node, grad, create_graph):
    """The chain rule at one node: (parent, gradient) for each input that needs one, summed
    back to the input's shape and cast to its dtype."""
    hooks = function_hooks.active
    for hook in hooks:
        hook.backward_preprocess(node, grad)
    if create_graph:
        input_grads = _differentiable_backward(node, grad)
    else:
        input_grads = node.fn.backward(node, grad)
    if input_grads.__class__ is not tuple:
        input_grads = (input_grads,)
    for hook in hooks:
        hook.backward_postprocess(node, grad, input_grads)
    if len(input_grads) != len(node.parents):
        raise RuntimeError(f"{node.name()} returned {len(input_grads)} gradients for "
                           f"{len(node.parents)} inputs")
    for parent, g, meta in zip(node.parents, input_grads, node.input_meta):
        if parent is None:
            continue
        shape, dtype = meta
        if g is None:  # no gradient flows here, but a parent node still waits for one
            if parent.__class__ is not Node:
                continue
            g = node.xp.zeros(shape, dtype)
        if g.shape != shape:
            g = unbroadcast(g, shape)
        if g.dtype != dtype:
            g = g.astype(dtype)
        yield parent, g


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


def accumulate(leaf_grads, leaf, g):
    entry = leaf_grads.get(id(leaf))
    if entry is None:
        leaf_grads[id(leaf)] = [leaf, g]
    else:
        entry[1] = entry[1] + g


# ----------------------------------------------------------------------------- create_graph
class _DifferentiableContext:
    """What an op's backward sees under create_graph: its saved arrays as ArrayBoxes of
    Tensors in the graph, and the differentiable array namespace as `xp`; every other
    attribute (shapes, keys, needs_input_grad...) is the node's own."""

    def __init__(self, node, xp, box):
        self.node, self.xp = node, xp
        self.saved = tuple(box(_saved_tensor(node, source, array))
                           for source, array in zip(saved_sources(node), node.saved))

    def __getattr__(self, name):
        return getattr(self.node, name)


def _saved_tensor(node, source, array):
    """A saved array as the Tensor it was in the forward graph (see saved_sources)."""
    if array is None:  # an optional input (a weight, a mask) that was not given
        return None
    if source is None:  # an array the op computed: it must be a constant of the inputs
        if array.dtype.kind == "f" and not (node.fn.reference or node.fn).saved_constants:
            raise RuntimeError(
                f"{node.name()} cannot be differentiated twice (create_graph=True): its "
                "backward uses a floating-point array it computed in forward, and the op has "
                "no composite form")
        return array
    if source == -1:
        return Tensor._make(_as_array(array), node.device, True, node)
    parent = node.parents[source]
    if parent is None:
        return Tensor._make(array, node.device)
    if parent.__class__ is Node:
        return Tensor._make(array, node.device, True, parent)
    return parent  # a leaf: its second-order gradient accumulates into it


def _differentiable_backward(node, grad):
    if node.fn.composite is not None:
        return _composite_backward(node, grad)
    fn = node.fn.reference or node.fn
    ctx = _DifferentiableContext(node, _array_api.namespace_for(node.device), _array_api.box)
    with enable_grad():
        return fn.backward(ctx, grad)


def _composite_backward(node, grad):
    """Differentiate the op's composite form (made of differentiable ops) instead of its own
    backward: re-run it on the saved inputs, then backpropagate `grad` through it."""
    inputs, sources = [], saved_sources(node)
    for i, parent in enumerate(node.parents):
        k = next((k for k, s in enumerate(sources) if s == i), None)
        if k is None:
            raise RuntimeError(f"{node.name()} cannot be differentiated twice "
                               f"(create_graph=True): input {i} was not saved in forward")
        inputs.append(_saved_tensor(node, i, node.saved[k]))
    with enable_grad():
        out = node.fn.composite(*inputs, **node.call_attrs)
    wanted = [t for t, need in zip(inputs, node.needs_input_grad) if need]
    grads = iter(gradients_of([out], [grad], wanted, retain_graph=True, create_graph=True))
    return tuple(_array_api.box(next(grads)) if need else None for need in node.needs_input_grad)


# ----------------------------------------------------------------------------- hooks
def _apply_hooks(hooks, grad, device):
    """Tensor hooks: each may return a tensor that replaces the gradient."""
    boxed = _array_api is not None and isinstance(grad, _array_api.ArrayBox)
    for hook in hooks:
        result = hook(grad.tensor if boxed else Tensor._make(grad, device))
        if result is not None:
            grad = _array_api.box(result) if boxed else result._data
    return grad


def _run_node_hooks(node, grad):
    return _apply_hooks(node.hooks, grad, node.device) if node.hooks else grad


def _as_array(g):
    """NumPy turns 0-d results into scalars; gradients stay arrays."""
    return np.asarray(g) if isinstance(g, np.generic) else g


def _to_tensor(g, device, create_graph):
    """A gradient as the Tensor handed to the user."""
    if create_graph:
        return _array_api.unbox(g, device)
    return Tensor._make(_as_array(g), device)


def _split_seeds(tensors, grads):
    """Seeds on nodes for the core, and seeds on leaves (backward() called on a leaf)."""
    seeds, leaf_seeds = {}, {}
    for t, g in zip(tensors, grads):
        if t.grad_fn is None:
            accumulate(leaf_seeds, t, g)
        else:
            node = t.grad_fn
            seeds[node] = seeds[node] + g if node in seeds else g
    return seeds, leaf_seeds


def _merge(leaf_grads, more):
    for leaf, g in more.values():
        accumulate(leaf_grads, leaf, g)
    return leaf_grads


# ----------------------------------------------------------------------------- Tensor.backward
def _sole_owner(g):
    """True when nothing but g reaches g's memory: g owns it, or g is a contiguous view of
    the whole of an owning array that only g refers to (its reference count: g's and this
    call's). A kernel's result reshaped to the input's shape is such a view; copying it
    into .grad cost GELU's forward + backward at (8, 256, 384) a 3 MB copy, a fifth of
    its time. PyTorch's AccumulateGrad likewise takes a gradient whose use count is 1
    instead of copying it. Broadcasts (zero strides) and slices fail the test."""
    return g.flags.owndata or (
        isinstance(g.base, np.ndarray) and g.base.flags.owndata and g.flags.c_contiguous
        and g.nbytes == g.base.nbytes and sys.getrefcount(g.base) == 2)


def run_backward(tensors, grads, retain_graph=False, create_graph=False):
    """Backpropagate `grads` (seeds from `seed_for`) from `tensors`; accumulate into leaves'
    `.grad`, and into `.grad` of non-leaves that called retain_grad()."""

    def visit(node, grad):
        grad = _run_node_hooks(node, grad)
        owner = node.retained() if node.retained is not None else None
        if owner is not None:
            g = _to_tensor(grad, node.device, create_graph)
            owner.grad = g if owner.grad is None else owner.grad + g
        return grad

    seeds, leaf_seeds = _split_seeds(tensors, grads)
    leaf_grads = _merge(backprop(seeds, visit, retain_graph, create_graph), leaf_seeds)

    # A .grad owns its memory: arrays handed to several leaves (Add gives its gradient to
    # both inputs) or passed in as seeds, and views of memory that others hold, are copied.
    handed_out = {id(s) for s in grads}
    for leaf, g in leaf_grads.values():
        if leaf._hooks:
            g = _apply_hooks(leaf._hooks, g, leaf.device)
        if create_graph:  # .grad is a Tensor in the graph; accumulation is recorded too
            g = _to_tensor(g, leaf.device, True)
            leaf.grad = g if leaf.grad is None else leaf.grad + g
            continue
        g = _as_array(g)
        if leaf.grad is None:
            if id(g) in handed_out or not _sole_owner(g):
                g = g.copy()
            handed_out.add(id(g))
            leaf.grad = Tensor._make(g, leaf.device)
        else:
            leaf.grad._data = leaf.grad._data + g


# ----------------------------------------------------------------------------- autograd.grad
def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of outputs with respect to inputs, returned rather than stored in .grad
    (torch.autograd.grad). With create_graph=True they are Tensors in a graph of their own,
    so they can be differentiated again; retain_graph defaults to create_graph."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("autograd.grad: one of the inputs does not require grad")
    seeds = [seed_for(o, g, "autograd.grad", create_graph) for o, g in zip(outputs, grad_outputs)]
    retain_graph = create_graph if retain_graph is None else bool(retain_graph)
    result = gradients_of(outputs, seeds, inputs, retain_graph, create_graph)
    if not allow_unused and any(r is None for r in result):
        raise RuntimeError("autograd.grad: one of the inputs was not used to compute the "
                           "outputs; pass allow_unused=True if this is intended")
    return tuple(result)


def gradients_of(tensors, grads, inputs, retain_graph, create_graph=False):
    """The gradients of `inputs` (Tensors, or None where none reached them) when `grads` are
    backpropagated from `tensors`; no `.grad` changes."""
    wanted = {t.grad_fn: None for t in inputs if t.grad_fn is not None}

    def visit(node, grad):
        grad = _run_node_hooks(node, grad)
        if node in wanted:
            wanted[node] = grad
        return grad

    seeds, leaf_seeds = _split_seeds(tensors, grads)
    leaf_grads = _merge(backprop(seeds, visit, retain_graph, create_graph), leaf_seeds)
    result = []
    for t in inputs:
        if t.grad_fn is not None:
            g = wanted.get(t.grad_fn)
        else:
            g = leaf_grads[id(t)][1] if id(t) in leaf_grads else None
            if g is not None and t._hooks:
                g = _apply_hooks(t._hooks, g, t.device)
        result.append(None if g is None else _to_tensor(g, t.device, create_graph))
    return result


def seed_for(output, gradient, op, create_graph=False):
    """The gradient that starts backward at `output`: ones for a scalar, else as given.
    Under create_graph it stays a Tensor (boxed), so that gradients can flow into it too
    (the double-backward trick behind jvp)."""
    if not output.requires_grad:
        raise RuntimeError(f"{op}: element 0 of tensors does not require grad and does not "
                           "have a grad_fn")
    if gradient is None:
        if output._data.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs, "
                               f"got shape {tuple(output.shape)}")
        seed = array_module(output.device).ones(output._data.shape, dtype=output._data.dtype)
        return _array_api.box(Tensor._make(seed, output.device)) if create_graph else seed
    if tuple(gradient.shape) != tuple(output.shape):
        raise RuntimeError(f"{op}: gradient has shape {tuple(gradient.shape)} but the output "
                           f"has shape {tuple(output.shape)}")
    if create_graph:
        return _array_api.box(gradient if gradient.dtype == output.dtype
                              else gradient.to(output.dtype))
    return gradient._data.astype(output._data.dtype, copy=False)
