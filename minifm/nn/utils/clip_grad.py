"""Gradient clipping (torch.nn.utils.clip_grad).

clip_grad_norm_ = get_total_norm (the norm of all gradients taken as one vector) followed by
clip_grads_with_norm_ (scale them all by max_norm / (norm + 1e-6) when that is below 1), as
PyTorch splits it. Gradients are scaled in place, and the scale stays an array on the
gradients' device, so clipping on a GPU does not wait for the norm to reach the host.
"""
from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...creation import tensor
from ...tensor import Tensor


def _as_list(tensors):
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters):
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _vector_norm(xp, x, norm_type):
    """The norm_type-norm of array x seen as one vector, as a 0-d array of x's dtype."""
    if norm_type == 2:
        flat = x.reshape(-1)
        return xp.sqrt(xp.asarray(xp.vdot(flat, flat), dtype=x.dtype))
    if norm_type == math.inf:
        return xp.abs(x).max()
    if norm_type == -math.inf:
        return xp.abs(x).min()
    if norm_type == 0:
        return xp.asarray(xp.count_nonzero(x), dtype=x.dtype)
    return xp.asarray((xp.abs(x) ** norm_type).sum() ** (1.0 / norm_type), dtype=x.dtype)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of `tensors` (a Tensor or an iterable of them) as if concatenated into one
    vector: the norm of their norms. A 0-d Tensor; 0.0 for no tensors."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    device = tensors[0].device
    xp = backend.array_module(device)
    norms = xp.stack([backend.move_array(_vector_norm(xp, t._data, norm_type), device)
                      for t in tensors])
    total = _vector_norm(xp, norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return Tensor._make(xp.asarray(total), device)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the parameters' gradients in place by min(1, max_norm / (total_norm + 1e-6))."""
    grads = _grads(parameters)
    if not grads:
        return
    xp = backend.array_module(total_norm.device)
    coef = xp.minimum(max_norm / (total_norm._data + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # a non-finite norm makes NaN gradients, as in PyTorch
        for g in grads:
            g._data *= backend.move_array(coef, g.device).astype(g.dtype, copy=False)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Rescale the gradients so that their total norm is at most max_norm; returns the total
    norm before clipping (a 0-d Tensor), which training loops log."""
    parameters = _as_list(parameters)
    total_norm = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        backend.array_module(g.device).clip(g._data, -clip_value, clip_value, out=g._data)
