"""Random ops: every draw goes through a minifm Generator (the device's default one unless
given), never NumPy's global state, so `minifm.manual_seed` makes runs reproducible."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


def _rng(device, generator):
    gen = generator if generator is not None else backend.default_generator(device)
    if gen.device != device:
        raise RuntimeError(f"expected a generator on {device}, got one on {gen.device}")
    return gen.rng


def _float_dtype(dtype):
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"expected a floating dtype, got {backend.dtype_name(dtype)}")
    return dtype


def randn_array(shape, dtype, device, generator=None):
    """Standard normal samples as a raw array (float16 is drawn in float32, then cast)."""
    draw = np.float64 if dtype == backend.float64 else np.float32
    return _rng(device, generator).standard_normal(shape, dtype=draw).astype(dtype, copy=False)


def rand_array(shape, dtype, device, generator=None):
    draw = np.float64 if dtype == backend.float64 else np.float32
    return _rng(device, generator).random(shape, dtype=draw).astype(dtype, copy=False)


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    device = backend.as_device(device)
    data = randn_array(_shape(size), _float_dtype(dtype), device, generator)
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    device = backend.as_device(device)
    data = rand_array(_shape(size), _float_dtype(dtype), device, generator)
    return Tensor(data, requires_grad=requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None):
    """randint(high, size) or randint(low, high, size): integers in [low, high)."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: missing the 'size' argument")
    device = backend.as_device(device)
    data = _rng(device, generator).integers(low, high, size=tuple(size), dtype=np.int64)
    return Tensor(data if dtype is None else data.astype(dtype))


def randperm(n, generator=None, dtype=None, device=None):
    device = backend.as_device(device)
    data = _rng(device, generator).permutation(n).astype(dtype or np.int64, copy=False)
    return Tensor(data)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from each row of (non-negative, unnormalized) weights."""
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: expected a 1-D or 2-D input, got shape {tuple(input.shape)}")
    probs = np.asarray(input, dtype=np.float64)
    rows = probs.reshape(-1, probs.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(-1) <= 0).any():
        raise ValueError("multinomial: probabilities must be finite, non-negative, with a positive sum")
    rng = _rng(backend.CPU, generator)  # drawn on the host: sampling is tiny next to a model
    out = np.stack([rng.choice(rows.shape[-1], size=num_samples, replace=replacement,
                               p=row / row.sum()) for row in rows]).astype(np.int64)
    out = out.reshape(probs.shape[:-1] + (num_samples,))
    return Tensor(out).to(input.device)


class Dropout(Function):
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
    return Dropout.apply(input, p=p, generator=generator)
