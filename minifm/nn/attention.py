"""MultiheadAttention: PyTorch's nn.MultiheadAttention, parameters and semantics included.

Each of num_heads heads attends with its own slice of the projected queries, keys and
values: softmax(q k^T / sqrt(head_dim) + mask) v; the heads' outputs are concatenated and
projected by out_proj. The projections are one packed (3E, E) `in_proj_weight` (or three
separate weights when kdim/vdim differ from embed_dim), so state_dict keys equal PyTorch's.

Masks follow PyTorch: a bool mask is True where attention is NOT allowed, a float mask is
added to the scores. attn_mask is (L, S) or (N * num_heads, L, S); key_padding_mask is
(N, S). Both are merged into one additive mask. With need_weights=False the fused
F.scaled_dot_product_attention does the work; with need_weights=True the probabilities are
computed explicitly by `attention_weights` (which the models' output_attentions use too),
since they are returned.
"""
from __future__ import annotations

import math

from .. import creation
from ..backend import bool_
from ..ops.attention import scaled_dot_product_attention
from ..ops.shape import cat
from ..tensor import Tensor
from . import functional as F, init
from .linear import Linear
from .module import Module
from .parameter import Parameter


def _additive_mask(mask, name, dtype):
    """A float mask to add to the scores: bool True -> -inf, float kept as is."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype.kind == "b":
        return creation.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: only bool and floating types of {name} are "
                        f"supported, got {mask.dtype}")
    return mask.to(dtype)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    """softmax(scale * query @ key^T + mask) over the keys: the attention probabilities
    (..., L, S) that F.scaled_dot_product_attention multiplies the values by.

    The fused kernel never stores them whole; this composite of differentiable ops does,
    for the callers that return them (need_weights here, the models' output_attentions).
    The masks mean what they mean to scaled_dot_product_attention: a bool attn_mask is
    True where a query may attend a key, a float one is added to the scores, is_causal
    lets query i see keys j <= i. A query that may see no key at all gets NaN
    probabilities (F.softmax of a row of -inf), where the fused kernel gives zeros.
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query * scale) @ key.transpose(-2, -1)
    if is_causal:
        attn_mask = creation.ones(query.shape[-2], key.shape[-2], dtype=bool_,
                                  device=query.device).tril()
    if attn_mask is not None and attn_mask.dtype.kind == "b":
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    elif attn_mask is not None:
        scores = scores + attn_mask
    return F.softmax(scores, dim=-1)


def _map_once(fn, *tensors):
    """fn applied to each distinct tensor once: inputs that were one object stay one object
    (so self-attention, query is key is value, is still recognized)."""
    done = {}
    for t in tensors:
        if id(t) not in done:
            done[id(t)] = fn(t)
    return tuple(done[id(t)] for t in tensors)


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, "
                             f"got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.add_zero_attn = batch_first, add_zero_attn
        self.head_dim = embed_dim // num_heads
        factory = {"device": device, "dtype": dtype}

        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **factory))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    # ------------------------------------------------------------------ forward
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """Inputs are (L, N, E) (or (N, L, E) with batch_first, or unbatched (L, E)).
        Returns (output shaped like query, weights (N, L, S) averaged over heads, or
        (N, num_heads, L, S), or None when need_weights=False)."""
        batched = query.ndim == 3
        self._check_inputs(query, key, value, batched)
        if not batched:
            query, key, value = _map_once(lambda t: t.unsqueeze(0), query, key, value)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # compute in (N, L, E); transposed back at the end
            query, key, value = _map_once(lambda t: t.transpose(0, 1), query, key, value)
        batch, tgt_len, src_len = query.shape[0], query.shape[1], key.shape[1]

        key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", query.dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: need attn_mask if specifying the is_causal "
                               "hint (e.g. a causal mask from minifm.triu)")
        use_causal_kernel = is_causal and key_padding_mask is None and not need_weights
        if use_causal_kernel:  # the kernel builds the causal mask itself
            attn_mask = None
        attn_mask = _additive_mask(attn_mask, "attn_mask", query.dtype)
        attn_mask = self._shape_attn_mask(attn_mask, batch, tgt_len, src_len, batched)
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (batch, src_len):
            raise ValueError(f"MultiheadAttention: key_padding_mask of shape "
                             f"{tuple(key_padding_mask.shape)} should be ({batch}, {src_len})")

        q, k, v = self._project(query, key, value)
        if self.bias_k is not None:  # one learned key/value appended to every sequence
            k = cat([k, self.bias_k.expand(batch, 1, self.embed_dim)], dim=1)
            v = cat([v, self.bias_v.expand(batch, 1, self.embed_dim)], dim=1)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        q, k, v = (self._split_heads(t) for t in (q, k, v))
        if self.add_zero_attn:  # one all-zero key/value appended after the projections
            zeros = creation.zeros(batch, self.num_heads, 1, self.head_dim, dtype=k.dtype,
                                   device=k.device)
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))

        mask = attn_mask
        if key_padding_mask is not None:
            padding = key_padding_mask.reshape(batch, 1, 1, key_padding_mask.shape[-1])
            mask = padding if mask is None else mask + padding
        out, weights = self._attend(q, k, v, mask, need_weights, use_causal_kernel)
        out = self.out_proj(out.transpose(1, 2).reshape(batch, tgt_len, self.embed_dim))

        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _attend(self, q, k, v, mask, need_weights, is_causal):
        """Per-head attention on (N, H, L, D) tensors: (output, probabilities or None)."""
        dropout_p = self.dropout if self.training else 0.0
        if not need_weights:
            return scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                is_causal=is_causal), None
        weights = F.dropout(attention_weights(q, k, attn_mask=mask), dropout_p)
        return weights @ v, weights

    def _check_inputs(self, query, key, value, batched):
        expected = 3 if batched else 2
        if query.ndim not in (2, 3) or key.ndim != expected or value.ndim != expected:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 3-D "
                             f"(batched) or 2-D (unbatched), got shapes {tuple(query.shape)}, "
                             f"{tuple(key.shape)} and {tuple(value.shape)}")
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim),
                             ("value", value, self.vdim)):
            if t.shape[-1] != dim:
                raise ValueError(f"MultiheadAttention: {name} of shape {tuple(t.shape)} should "
                                 f"have last dimension {dim}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key of shape {tuple(key.shape)} and value of "
                             f"shape {tuple(value.shape)} disagree in sequence or batch size")

    def _shape_attn_mask(self, mask, batch, tgt_len, src_len, batched):
        """(L, S) -> (1, 1, L, S) and (N * H, L, S) -> (N, H, L, S), checking the sizes."""
        if mask is None:
            return None
        heads = batch * self.num_heads if batched else self.num_heads
        if mask.ndim == 2 and tuple(mask.shape) == (tgt_len, src_len):
            return mask.reshape(1, 1, tgt_len, src_len)
        if mask.ndim == 3 and tuple(mask.shape) == (heads, tgt_len, src_len):
            return mask.reshape(batch, self.num_heads, tgt_len, src_len)
        raise ValueError(f"MultiheadAttention: attn_mask of shape {tuple(mask.shape)} should be "
                         f"({tgt_len}, {src_len}) or ({heads}, {tgt_len}, {src_len})")

    def _project(self, query, key, value):
        """q, k, v = the input projections, each (N, L or S, E)."""
        E = self.embed_dim
        bias = self.in_proj_bias
        b_q, b_k, b_v = (None, None, None) if bias is None else bias.chunk(3)
        if not self._qkv_same_embed_dim:
            return (F.linear(query, self.q_proj_weight, b_q),
                    F.linear(key, self.k_proj_weight, b_k),
                    F.linear(value, self.v_proj_weight, b_v))
        if query is key and key is value:  # self-attention: one (3E, E) matmul
            qkv = F.linear(query, self.in_proj_weight, bias)
            return qkv.split(E, dim=-1)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _split_heads(self, x):
        """(N, S, E) -> (N, num_heads, S, head_dim)."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)
