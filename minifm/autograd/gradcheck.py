"""gradcheck and gradgradcheck: analytic gradients (first and second order) against central
finite differences.

As torch.autograd.gradcheck: `func(*inputs)` returns a Tensor or a tuple of them; inputs
that require grad should be float64. The check draws a random cotangent v for the outputs
and compares, for each such input x, the engine's gradient of <v, func(x)> with
(<v, func(x + eps e)> - <v, func(x - eps e)>) / (2 eps):
- along every element e of x by default (a row of the Jacobian-vector product per input:
  the failing element is named), or
- with `fast_mode=True`, along a few random directions only (Chainer's check_backward):
  one number per direction, so large inputs stay cheap.
Outputs that are +-inf or NaN cannot move under a perturbation; they get no cotangent.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """The analytic and numerical gradients disagree (torch.autograd.GradcheckError)."""


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              fast_mode=False, n_directions=3, seed=0):
    """True when func's gradients match finite differences; otherwise raise GradcheckError
    (or return False with raise_exception=False)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    leaves = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not leaves:
        raise ValueError("gradcheck: expected at least one input tensor that requires grad")
    for i, t in enumerate(leaves):
        if t.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} requires grad and is {t.dtype}, not float64; "
                             "finite differences need double precision")
    rng = np.random.default_rng(seed)
    first = func(*inputs)
    positions = _differentiable_positions(first)
    outputs = _at(first, positions)
    cotangents = [_cotangent(rng, o) for o in outputs]
    analytic = grad(outputs, leaves, [Tensor(backend.move_array(c, o.device))
                                      for c, o in zip(cotangents, outputs)], allow_unused=True)

    def objective():
        with no_grad():
            outs = _at(func(*inputs), positions)
        return sum(float((np.nan_to_num(_host(o), posinf=0, neginf=0) * c).sum())
                   for o, c in zip(outs, cotangents))

    for i, (leaf, g) in enumerate(zip(leaves, analytic)):
        g = np.zeros(leaf.shape) if g is None else _host(g).astype(np.float64)
        directions = (_random_directions(rng, leaf.shape, n_directions) if fast_mode
                      else _unit_directions(leaf.shape))
        for where, direction in directions:
            numeric = _central_difference(objective, leaf, direction, eps)
            expected = float((g * direction).sum())
            if not abs(expected - numeric) <= atol + rtol * abs(numeric):
                message = (f"gradcheck: the gradient of input {i} (shape {tuple(leaf.shape)}) "
                           f"disagrees with finite differences {where}: analytic {expected!r}, "
                           f"numerical {numeric!r}")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, fast_mode=False, seed=0):
    """Second derivatives of func against finite differences of its first derivatives
    (torch.autograd.gradgradcheck): gradcheck of the function (inputs, v) -> the gradients
    of <v, func(inputs)>, built with create_graph=True. `grad_outputs` (v) are random
    float64 tensors unless given."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    first = func(*inputs)
    positions = _differentiable_positions(first)
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [Tensor(backend.move_array(rng.standard_normal(o.shape), o.device),
                               requires_grad=True) for o in _at(first, positions)]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args):
        with enable_grad():  # gradcheck evaluates under no_grad; this needs a graph
            outs = _at(func(*args[:n]), positions)
            wanted = [t for t in args[:n] if isinstance(t, Tensor) and t.requires_grad]
            grads = grad(outs, wanted, list(args[n:]), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception, fast_mode=fast_mode, seed=seed)


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _differentiable_positions(out):
    """Which of func's outputs carry a gradient (floating tensors that require grad)."""
    return [k for k, o in enumerate(_as_tuple(out))
            if isinstance(o, Tensor) and o.is_floating_point() and o.requires_grad]


def _at(out, positions):
    out = _as_tuple(out)
    return [out[k] for k in positions]


def _host(t):
    """A tensor's values as a host NumPy array (a copy from a GPU)."""
    return backend.move_array(t._data, backend.CPU)


def _cotangent(rng, output):
    c = rng.standard_normal(output.shape).astype(output.dtype)
    return np.where(np.isfinite(_host(output)), c, 0).astype(output.dtype)


def _unit_directions(shape):
    for j in range(int(np.prod(shape))):
        direction = np.zeros(shape)
        index = np.unravel_index(j, shape)
        direction[index] = 1.0
        yield f"at element {tuple(int(k) for k in index)}", direction


def _random_directions(rng, shape, n):
    for k in range(n):
        yield f"along random direction {k}", rng.standard_normal(shape)


def _central_difference(objective, leaf, direction, eps):
    """(objective(x + eps d) - objective(x - eps d)) / (2 eps), moving x's array in place."""
    data = leaf._data
    original = data.copy()
    direction = backend.move_array(direction, leaf.device)
    try:
        data[...] = original + eps * direction
        plus = objective()
        data[...] = original - eps * direction
        minus = objective()
    finally:
        data[...] = original
    return (plus - minus) / (2 * eps)
