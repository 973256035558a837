"""torch.autograd.functional for minifm: vjp, jvp, vhp, hvp, jacobian and hessian of a
function, with PyTorch's signatures and results, built on `grad(create_graph=True)`.

- vjp: one backward pass, v^T J.
- jvp: the double-backward trick. g(u) = J^T u is linear in a dummy cotangent u, so the
  gradient of <g(u), v> with respect to u is J v: two backward passes, no forward mode.
- vhp / hvp: the gradient of <grad f(x), v>, that is v^T H = (H v)^T for a scalar f.
- jacobian: one backward pass per output element (reverse mode); hessian: the jacobian of
  the gradient. Both are for small functions, as PyTorch's are without `vectorize`.

A function of one Tensor gives results for one Tensor; a function of a tuple gives tuples.
With create_graph=False the results are detached; with True they can be differentiated.
This module imports the ops (for zeros and stack), so the package `minifm.autograd` does
not import it: `minifm` does, once the ops exist.
"""
from __future__ import annotations

from ..backend import array_module
from ..creation import ones_like, zeros_like
from ..ops.shape import stack
from ..tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J)."""
    is_tuple, inputs = _prepare(inputs, create_graph)
    with enable_grad():
        outputs = func(*inputs)
        _, outs = _as_tuple(outputs)
        grads = _grads(outs, inputs, _cotangents(outs, v, "vjp"), create_graph, strict)
    return _finish(outputs, create_graph), _result(is_tuple, grads, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v), by the double-backward trick."""
    is_tuple, inputs = _prepare(inputs, create_graph)
    _, vs = _as_tuple(v) if v is not None else (False, None)
    if vs is None:
        if any(t.numel() != 1 for t in inputs):
            raise RuntimeError("jvp: v can be omitted only when every input has one element")
        vs = tuple(ones_like(t) for t in inputs)
    with enable_grad():
        outputs = func(*inputs)
        out_tuple, outs = _as_tuple(outputs)
        dummies = tuple(zeros_like(o).requires_grad_() for o in outs)
        transposed = grad(outs, inputs, dummies, create_graph=True, allow_unused=True)
        pairs = [(g, w) for g, w in zip(transposed, vs) if g is not None]
        jv = grad([g for g, _ in pairs], dummies, [w for _, w in pairs],
                  create_graph=create_graph, allow_unused=True)
        jv = tuple(zeros_like(o) if g is None else g for g, o in zip(jv, outs))
    return _finish(outputs, create_graph), _result(out_tuple, jv, create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a function with a one-element output."""
    is_tuple, inputs = _prepare(inputs, create_graph)
    with enable_grad():
        output = func(*inputs)
        if not isinstance(output, Tensor) or output.numel() != 1:
            raise RuntimeError("vhp/hvp: the function must return a Tensor with one element")
        firsts = grad(output, inputs, create_graph=True, allow_unused=True)
        _, vs = _as_tuple(v)
        pairs = [(g, w, x) for g, w, x in zip(firsts, vs, inputs) if g is not None]
        seconds = grad([g for g, _, _ in pairs], inputs, [w for _, w, _ in pairs],
                       create_graph=create_graph, allow_unused=True) if pairs else [None] * len(inputs)
        seconds = tuple(zeros_like(x) if s is None else s for s, x in zip(seconds, inputs))
    return _finish(output, create_graph), _result(is_tuple, seconds, create_graph)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v): equal to v^T H, the Hessian of a twice differentiable function
    being symmetric."""
    return vhp(func, inputs, v, create_graph, strict)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """J[i][j] of shape outputs[i].shape + inputs[j].shape, one backward per output element
    (torch.autograd.functional.jacobian without vectorize)."""
    if strategy != "reverse-mode" or vectorize:
        raise NotImplementedError("jacobian: only strategy='reverse-mode' without vectorize")
    is_tuple, inputs = _prepare(inputs, create_graph)
    with enable_grad():
        outputs = func(*inputs)
        out_tuple, outs = _as_tuple(outputs)
        blocks = []
        for out in outs:
            rows = [[] for _ in inputs]
            for k in range(out.numel()):
                grads = grad(out, inputs, _one_hot(out, k), retain_graph=True,
                             create_graph=create_graph, allow_unused=True)
                for row, g, x in zip(rows, grads, inputs):
                    row.append(zeros_like(x) if g is None else g)
            blocks.append(tuple(_stack_rows(row, out, x) for row, x in zip(rows, inputs)))
    blocks = [tuple(_finish(b, create_graph) for b in block) for block in blocks]
    if out_tuple:
        return tuple(block if is_tuple else block[0] for block in blocks)
    return blocks[0] if is_tuple else blocks[0][0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a function with a one-element output: the jacobian of its gradient,
    H[i][j] of shape inputs[i].shape + inputs[j].shape."""
    is_tuple, _ = _as_tuple(inputs)

    def gradient(*xs):
        output = func(*xs)
        if not isinstance(output, Tensor) or output.numel() != 1:
            raise RuntimeError("hessian: the function must return a Tensor with one element")
        grads = grad(output, xs, create_graph=True, allow_unused=True)
        return tuple(zeros_like(x) if g is None else g for g, x in zip(grads, xs))

    result = jacobian(gradient, inputs, create_graph=create_graph,
                      strategy=outer_jacobian_strategy)
    return result if is_tuple else result[0]


# ----------------------------------------------------------------------------- helpers
def _as_tuple(value):
    if isinstance(value, Tensor):
        return False, (value,)
    return True, tuple(value)


def _prepare(inputs, create_graph):
    """Inputs that require grad: detached copies, or (create_graph) views that stay in the
    caller's graph, as torch.autograd.functional does."""
    is_tuple, inputs = _as_tuple(inputs)
    prepared = []
    for x in inputs:
        if create_graph and x.requires_grad:
            prepared.append(x.view_as(x))
        else:
            prepared.append(x.detach().requires_grad_())
    return is_tuple, tuple(prepared)


def _cotangents(outs, v, op):
    if v is None:
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError(f"{op}: v can be omitted only for a function with a "
                               "one-element output")
        return None
    return _as_tuple(v)[1]


def _grads(outs, inputs, cotangents, create_graph, strict):
    grads = grad(outs, inputs, cotangents, create_graph=create_graph, allow_unused=True)
    if strict and any(g is None for g in grads):
        raise RuntimeError("the output is independent of one of the inputs (strict=True)")
    return tuple(zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


def _one_hot(out, k):
    """A seed of out's shape with a one at flat position k."""
    seed = array_module(out.device).zeros(out.numel(), dtype=out.dtype)
    seed[k] = 1
    return Tensor._make(seed.reshape(out.shape), out.device)


def _stack_rows(rows, out, x):
    return stack(rows).reshape(tuple(out.shape) + tuple(x.shape))


def _finish(value, create_graph):
    if isinstance(value, Tensor):
        return value if create_graph else value.detach()
    return tuple(_finish(v, create_graph) for v in value)


def _result(is_tuple, values, create_graph):
    values = _finish(tuple(values), create_graph)
    return values if is_tuple else values[0]
