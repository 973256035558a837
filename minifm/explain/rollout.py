"""Attention rollout (Abnar & Zuidema, 2020, "Quantifying Attention Flow in Transformers").

One layer's attention map says which positions of the layer below a token read from;
after a few layers the positions have mixed, so a single map says little about the
input tokens. Rollout follows the mixing through the stack:

1. average the heads of each layer: A_l, (B, T, T), rows summing to 1;
2. account for the residual connection, through which half of a token's next
   representation is, roughly, itself: add the identity and renormalize the rows,
   A_l <- (A_l + I) / 2;
3. multiply through the layers, the first layer rightmost:
   rollout = A_L @ ... @ A_2 @ A_1.

Row i of the result is how much position i at the top draws on each input token; the
rows still sum to 1. The attentions are the tuple a model returns with
`output_attentions=True` (GPT, BERT), each (B, num_heads, T, T).
"""
from __future__ import annotations

from ..creation import eye


def attention_rollout(attentions):
    """The rollout (B, T, T) of a tuple of per-layer attentions (B, H, T, T)."""
    if not attentions:
        raise ValueError("attention_rollout needs the attentions of at least one layer")
    T = attentions[0].shape[-1]
    identity = eye(T, dtype=attentions[0].dtype, device=attentions[0].device)
    rollout = None
    for att in attentions:
        if att.dim() != 4 or att.shape[-2:] != (T, T):
            raise ValueError(f"attention_rollout: expected (B, H, {T}, {T}) attentions, got "
                             f"{tuple(att.shape)}")
        layer = att.detach().mean(dim=1) + identity
        layer = layer / layer.sum(dim=-1, keepdim=True)
        rollout = layer if rollout is None else layer @ rollout
    return rollout
