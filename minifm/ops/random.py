"""Random ops on tensors: multinomial sampling and dropout. Their draws, like the random
factories' (rand, randn, randint, randperm in creation.py), go through a minifm Generator,
never NumPy's global state, so `minifm.manual_seed` makes runs reproducible."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..creation import generator_rng, rand_array
from ..tensor import Tensor


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from each row of (non-negative, unnormalized) weights."""
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: expected a 1-D or 2-D input, got shape {tuple(input.shape)}")
    probs = np.asarray(input, dtype=np.float64)
    rows = probs.reshape(-1, probs.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(-1) <= 0).any():
        raise ValueError("multinomial: probabilities must be finite, non-negative, with a positive sum")
    rng = generator_rng(backend.CPU, generator)  # drawn on the host: sampling is tiny next to a model
    out = np.stack([rng.choice(rows.shape[-1], size=num_samples, replace=replacement,
                               p=row / row.sum()) for row in rows]).astype(np.int64)
    out = out.reshape(probs.shape[:-1] + (num_samples,))
    return Tensor(out).to(input.device)


class NativeDropout(Function):
    """x times a random mask scaled by 1/(1-p): PyTorch's native_dropout (its node on a GPU;
    on the CPU PyTorch records a plain Mul). The mask is a constant of x."""

    saved_constants = True

    @staticmethod
    def forward(ctx, x, *, p, generator):
        keep = rand_array(x.shape, x.dtype if x.dtype == np.float64 else np.float32,
                          backend.device_of_array(x), generator) >= p
        ctx.scale = (keep / (1 - p)).astype(x.dtype)
        return x * ctx.scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.scale


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return NativeDropout.apply(input, p=p, generator=generator)
