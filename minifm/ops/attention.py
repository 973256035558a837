"""Scaled dot-product attention, PyTorch's F.scaled_dot_product_attention:

    out = softmax(scale * query @ key^T + mask) @ value,   scale = 1 / sqrt(E) by default

for query (..., L, E), key (..., S, E), value (..., S, Ev) and an output (..., L, Ev). Two
implementations of the same semantics:

- `ScaledDotProductAttentionReference`: it materializes the (L, S) scores and
  probabilities P and backpropagates by the chain rule (dP = dO V^T, then the softmax
  backward dS = P * (dP - rowsum(dP * P))). It is the oracle the kernels are tested
  against, the fallback where no kernel applies, and the only path for dropout and for a
  float mask that requires grad.
- `ScaledDotProductAttentionFused`: a fused kernel from minifm.kernels (FlashAttention-2:
  the scores are never stored whole) that saves only q, k, v, the output and one
  log-sum-exp per query row for its backward.

`scaled_dot_product_attention` validates the inputs and picks one with one
`kernels.select` call (see minifm.kernels for the backend switch). Semantics, checked
against PyTorch 2.13 on the CPU:

- a bool attn_mask is True where a query may attend a key; a float mask is added to the
  scores; either broadcasts to (..., L, S). Batch dimensions of query, key and value
  broadcast too.
- is_causal lets query i attend keys j <= i: the mask is aligned at the top-left corner
  when L != S (query rows past S see every key).
- a query whose keys are all masked gets a zero output and zero gradients (PyTorch's safe
  softmax), not NaN.
- NaN propagates: a NaN among the scores a query sees makes its output row and gradients
  NaN (PyTorch's CPU flash kernel instead returns zeros for a query that is itself NaN).
  Keys hidden by is_causal are not seen at all, as in PyTorch's CPU kernel; masks are
  added to the scores, so a NaN score under a mask still counts, as in PyTorch.
- attn_mask together with is_causal=True is an error (PyTorch's math backend says so; its
  CPU flash kernel silently drops the mask).
- dropout_p > 0 drops attention probabilities whenever it is given: the functional form
  has no training flag, so pass 0.0 in eval as nn.MultiheadAttention does. The dropout
  mask comes from the device's default minifm generator (so `minifm.manual_seed` makes it
  reproducible, but the draws differ from PyTorch's); dropout runs on the reference path.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend, kernels
from ..autograd import Function
from ..tensor import Tensor
from ._checks import check_tensor
from ._dtypes import compute_dtype
from .array_box import box, namespace_for, unbox
from .shape import contiguous, expand, reshape
from ..creation import rand_array

_OP = "scaled_dot_product_attention"


# ----------------------------------------------------------------------------- reference
def _additive(xp, mask, dtype):
    """A mask as numbers added to the scores: bool True -> 0, False -> -inf."""
    if mask.dtype == np.bool_:
        return xp.where(mask, 0.0, -np.inf).astype(dtype)
    return mask.astype(dtype, copy=False)


def _causal(xp, L, S):
    """True where key j <= query i: the causal mask, aligned at the top-left corner."""
    return xp.arange(S)[None, :] <= xp.arange(L)[:, None]


def _safe_softmax(xp, s):
    """Softmax over the last axis where a row of only -inf gives zeros rather than NaN."""
    if s.shape[-1] == 0:
        return s
    m = s.max(axis=-1, keepdims=True)
    e = xp.exp(s - xp.where(m == -np.inf, 0, m))
    total = e.sum(axis=-1, keepdims=True)
    return e / xp.where(total == 0, 1, total)


def _probabilities(xp, q, k, mask, is_causal, scale):
    """P = softmax(scale * q @ k^T + mask) over the keys, the causal mask applied."""
    s = (q @ xp.swapaxes(k, -1, -2)) * scale
    if is_causal:  # replaced, not added: a NaN score under the mask stays unseen
        s = xp.where(_causal(xp, q.shape[-2], k.shape[-2]), s, -np.inf)
    if mask is not None:
        s = s + _additive(xp, mask, s.dtype)
    return _safe_softmax(xp, s)


def _attention_composite(q, k, v, mask, is_causal, scale):
    """Attention from differentiable ops, _probabilities on the array namespace: what the
    engine differentiates under create_graph, as both Functions' backwards use P or the
    log-sum-exp computed in forward. `mask` is a Tensor, a constant array or None."""
    xp = namespace_for(q.device)
    p = _probabilities(xp, box(q), box(k), box(mask), is_causal, scale)
    return unbox(p @ box(v))


class ScaledDotProductAttentionReference(Function):
    """The materialized reference. `mask` is a positional input so that a float mask can
    receive a gradient (which is dS, the gradient of the scores). float16 is computed in
    float32."""

    @staticmethod
    def forward(ctx, q, k, v, mask, *, is_causal, scale, dropout_p):
        xp = ctx.xp
        dtype = q.dtype
        work = compute_dtype(dtype)
        q, k, v = (a.astype(work, copy=False) for a in (q, k, v))
        p = _probabilities(xp, q, k, mask, is_causal, scale)
        drop = None
        if dropout_p > 0:
            keep = rand_array(p.shape, work, backend.device_of_array(p)) >= dropout_p
            drop = keep * (1 / (1 - dropout_p)) if dropout_p < 1 else xp.zeros_like(p)
            drop = drop.astype(work, copy=False)
        ctx.scale = scale
        ctx.save_for_backward(q, k, v, mask, p, drop)
        return ((p if drop is None else p * drop) @ v).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        q, k, v, _, p, drop = ctx.saved
        g = g.astype(q.dtype, copy=False)
        p_used = p if drop is None else p * drop
        dv = xp.swapaxes(p_used, -1, -2) @ g
        dp = g @ xp.swapaxes(v, -1, -2)
        if drop is not None:
            dp *= drop
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        dq = (ds @ k) * ctx.scale
        dk = (xp.swapaxes(ds, -1, -2) @ q) * ctx.scale
        dmask = ds if ctx.needs_input_grad[3] else None
        return dq, dk, dv, dmask

    @staticmethod
    def composite(q, k, v, mask, *, is_causal, scale, dropout_p):
        if dropout_p > 0:
            raise NotImplementedError(
                f"{_OP} with dropout cannot be differentiated twice (create_graph=True): its "
                "dropout mask is a random draw that its differentiable form cannot repeat")
        return _attention_composite(q, k, v, mask, is_causal, scale)


# ----------------------------------------------------------------------------- fused kernel
def _as_heads(t, batch):
    """A Tensor (*batch', T, D) broadcast to (*batch, T, D) and C-contiguous, by
    differentiable ops (a copy only when broadcasting or strides require one): the layout
    the kernels read as (N, T, D), N = prod(batch). Done before the fused op, so that the
    op's inputs are its kernel's arrays and saving them for the composite costs nothing."""
    if tuple(t.shape[:-2]) != batch:
        t = expand(t, *batch, *t.shape[-2:])
    return contiguous(t)


def _flat_heads(a):
    """A contiguous (*batch, T, D) array as (N, T, D), a view."""
    return a.reshape((math.prod(a.shape[:-2]),) + a.shape[-2:])


class ScaledDotProductAttentionFused(Function):
    """Attention by a fused kernel module (minifm.kernels.flash_attention_cpu or _cuda).

    The kernels work on (N, T, D) arrays, N being the flattened batch dimensions; a mask
    arrives as `bias` slabs (M, L or 1, S or 1) with `bias_index[n]` naming head n's slab,
    so a mask that broadcasts over batch or heads is never expanded. q, k and v arrive
    broadcast to the batch shape and C-contiguous (_as_heads). Backward needs only q, k,
    v, the output and the per-row log-sum-exp `lse`.
    """

    @staticmethod
    def forward(ctx, q, k, v, *, batch, bias, bias_index, is_causal, scale, kernel):
        q3, k3, v3 = (_flat_heads(a) for a in (q, k, v))
        out, lse = kernel.attention_forward(q3, k3, v3, bias, bias_index, is_causal, scale)
        ctx.kernel, ctx.batch, ctx.is_causal, ctx.scale = kernel, batch, is_causal, scale
        ctx.bias, ctx.bias_index = bias, bias_index
        ctx.save_for_backward(q, k, v, out, lse)
        return out.reshape(batch + out.shape[1:])

    @staticmethod
    def backward(ctx, g):
        q, k, v, out, lse = ctx.saved
        q3, k3, v3 = (_flat_heads(a) for a in (q, k, v))
        g3 = ctx.xp.ascontiguousarray(g.reshape(out.shape), dtype=out.dtype)
        dq, dk, dv = ctx.kernel.attention_backward(q3, k3, v3, out, lse, g3, ctx.bias,
                                                   ctx.bias_index, ctx.is_causal, ctx.scale)
        return tuple(d.reshape(ctx.batch + d.shape[1:]) for d in (dq, dk, dv))

    @staticmethod
    def composite(q, k, v, *, batch, bias, bias_index, is_causal, scale, kernel):
        """The reference's attention, head n's mask being the slab bias[bias_index[n]]."""
        mask = None if bias is None else bias[bias_index].reshape(batch + bias.shape[1:])
        return _attention_composite(q, k, v, mask, is_causal, scale)


def _mask_slabs(xp, mask, batch, dtype):
    """An attn_mask as the kernels take it: additive slabs (M, L or 1, S or 1) and, for
    each of the N = prod(batch) heads, the index of its slab (a host int64 array)."""
    bias = _additive(xp, mask, dtype)
    bias = bias.reshape((1,) * (len(batch) + 2 - bias.ndim) + bias.shape)
    lead = bias.shape[:len(batch)]
    slabs = bias.reshape((math.prod(lead),) + bias.shape[len(batch):])
    index = np.broadcast_to(np.arange(slabs.shape[0]).reshape(lead), batch).reshape(-1)
    return slabs, np.ascontiguousarray(index, dtype=np.int64)


# ----------------------------------------------------------------------------- public API
def _shapes(*tensors):
    return ", ".join(str(tuple(t.shape)) for t in tensors)


def _broadcast(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _validate(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """The batch shape of the output; raises on inputs PyTorch would reject."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(_OP, t, name)
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise RuntimeError(f"{_OP}: expected query, key and value to be at least 2-D, got "
                           f"shapes {_shapes(query, key, value)}")
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError(
            f"{_OP}: expected query, key and value to have the same dtype, got "
            + ", ".join(backend.dtype_name(t.dtype) for t in (query, key, value)))
    if not backend.is_floating(query.dtype):
        raise RuntimeError(f"{_OP}: expected floating-point inputs, got "
                           f"{backend.dtype_name(query.dtype)}")
    tensors = (query, key, value) + (() if not isinstance(attn_mask, Tensor) else (attn_mask,))
    if any(t.device != query.device for t in tensors):
        raise RuntimeError(f"{_OP}: expected query, key, value and attn_mask on one device, "
                           f"got " + ", ".join(str(t.device) for t in tensors))
    if query.shape[-1] != key.shape[-1]:
        raise RuntimeError(f"{_OP}: query and key must have the same embedding size E, got "
                           f"query {tuple(query.shape)} and key {tuple(key.shape)}")
    if key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{_OP}: key and value must have the same sequence length S, got "
                           f"key {tuple(key.shape)} and value {tuple(value.shape)}")
    batch = _broadcast(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if batch is None:
        raise RuntimeError(f"{_OP}: the batch dimensions of query, key and value do not "
                           f"broadcast: shapes {_shapes(query, key, value)}")
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{_OP}: expected attn_mask to be a Tensor or None, got "
                            f"{type(attn_mask).__name__}")
        if is_causal:
            raise RuntimeError(f"{_OP}: attn_mask and is_causal=True cannot both be set; put "
                               "the causal mask into attn_mask instead")
        if attn_mask.dtype not in (backend.bool_, backend.float32, query.dtype):
            raise RuntimeError(f"{_OP}: expected attn_mask of dtype bool or "
                               f"{backend.dtype_name(query.dtype)}, got "
                               f"{backend.dtype_name(attn_mask.dtype)}")
        target = batch + (query.shape[-2], key.shape[-2])
        if _broadcast(attn_mask.shape, target) != target:
            raise RuntimeError(f"{_OP}: attn_mask of shape {tuple(attn_mask.shape)} does not "
                               f"broadcast to the scores' shape {target}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{_OP}: dropout probability has to be between 0 and 1, but got "
                         f"{dropout_p}")
    if scale is not None and not isinstance(scale, numbers.Real):
        raise TypeError(f"{_OP}: expected scale to be a number or None, got "
                        f"{type(scale).__name__}")
    return batch


def _repeat_heads(query, key, value):
    """enable_gqa (grouped-query attention): each key/value head serves a group of query
    heads (dim -3), so it is repeated in place, head h becoming heads h*r .. h*r + r - 1
    (PyTorch's repeat_interleave), an expand and a reshape that backward sums over."""
    if min(query.ndim, key.ndim, value.ndim) < 3:
        raise IndexError(f"{_OP}: enable_gqa=True needs a heads dim (-3): Dimension out of "
                         f"range for shapes {_shapes(query, key, value)}")
    heads = query.shape[-3]
    if not all(heads % n == 0 if n else heads == 0 for n in (key.shape[-3], value.shape[-3])):
        raise RuntimeError(f"{_OP}: Number of heads in key and value must divide the number "
                           f"of heads in query, got shapes {_shapes(query, key, value)}")
    out = []
    for t in (key, value):
        r = heads // t.shape[-3] if t.shape[-3] else 1  # no heads at all: nothing to repeat
        if r > 1:
            lead, h, rest = t.shape[:-3], t.shape[-3], t.shape[-2:]
            t = reshape(expand(reshape(t, *lead, h, 1, *rest), *lead, h, r, *rest),
                        *lead, h * r, *rest)
        out.append(t)
    return out


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(scale * query @ key^T + attn_mask) @ value, as torch's function of that name
    (see the module docstring for the mask, causal and dropout semantics). enable_gqa=True
    lets key and value have fewer heads than query, a divisor of its count."""
    if enable_gqa:
        key, value = _repeat_heads(query, key, value)
    batch = _validate(query, key, value, attn_mask, dropout_p, is_causal, scale)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    mask_grad = attn_mask is not None and attn_mask.requires_grad
    kernel = None
    if dropout_p == 0 and not mask_grad:
        kernel = kernels.select("attention", query.device.type, dtype=query.dtype,
                                head_dim=query.shape[-1], value_dim=value.shape[-1])
    if kernel is None:
        return ScaledDotProductAttentionReference.apply(
            query, key, value, attn_mask, is_causal=bool(is_causal), scale=scale,
            dropout_p=float(dropout_p))
    bias = bias_index = None
    if attn_mask is not None:
        xp = backend.array_module(query.device)
        bias, bias_index = _mask_slabs(xp, attn_mask._data, batch, query.dtype)
    return ScaledDotProductAttentionFused.apply(
        *(_as_heads(t, batch) for t in (query, key, value)), batch=batch, bias=bias,
        bias_index=bias_index, is_causal=bool(is_causal), scale=scale, kernel=kernel)


__all__ = ["scaled_dot_product_attention", "ScaledDotProductAttentionReference",
           "ScaledDotProductAttentionFused"]
