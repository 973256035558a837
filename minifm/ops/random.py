"""Random ops on tensors: sampling from tensors of parameters (normal, bernoulli, poisson,
multinomial), dropout, and the in-place samplers (uniform_, normal_, random_, bernoulli_,
exponential_, geometric_, log_normal_, cauchy_). Their draws, like the random factories'
(rand, randn, randint, randperm in creation.py), go through a minifm Generator, never
NumPy's global state, so `minifm.manual_seed` makes runs reproducible.

A sample is not differentiated through its parameters: as in PyTorch, normal(mean, std),
bernoulli(p) and poisson(rate) record a node whose gradient is zero for every parameter
(no reparameterization), and an in-place sampler overwrites its tensor, whose old values
then get no gradient (ops/inplace.py's Overwrite)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..autograd import Function
from ..creation import (_float_dtype, check_integer_range, generator_rng, rand_array,
                        randn_array)
from ..dims import size_args
from ..tensor import Tensor
from .elementwise import as_tensor_like, to_dtype
from .inplace import _overwrite, commit


# ----------------------------------------------------------------------------- from parameters
class _Draw(Function):
    """A sample whose derivative with respect to each parameter is zero. Subclasses draw in
    `sample(ctx, *params, generator)`; the zeros are shaped like the parameters."""

    @classmethod
    def forward(cls, ctx, *params, generator):
        ctx.metas = [(p.shape, p.dtype) for p in params]
        return cls.sample(ctx, *params, generator=generator)

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.xp.zeros(shape, dtype=dtype) for shape, dtype in ctx.metas)


class Normal(_Draw):
    """mean + std * N(0, 1), broadcast over mean's and std's shapes, in mean's dtype."""

    @staticmethod
    def sample(ctx, mean, std, *, generator):
        shape = np.broadcast_shapes(mean.shape, std.shape)
        z = randn_array(shape, mean.dtype, backend.device_of_array(mean), generator)
        return (z * std + mean).astype(mean.dtype, copy=False)


class Bernoulli(_Draw):
    """1 with probability p, else 0, in p's dtype."""

    @staticmethod
    def sample(ctx, p, *, generator):
        u = rand_array(p.shape, np.dtype(np.float64), backend.device_of_array(p), generator)
        return (u < p).astype(p.dtype)


class Poisson(_Draw):
    """Poisson counts of the given rates, in the rates' dtype."""

    @staticmethod
    def sample(ctx, rate, *, generator):
        rng = generator_rng(backend.device_of_array(rate), generator)
        return rng.poisson(rate.astype(np.float64)).astype(rate.dtype)


def _check_floating(op, t: Tensor):
    if t.dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for {backend.dtype_name(t.dtype)} "
                                  "(a floating-point tensor is needed)")


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False):
    """PyTorch's four forms: normal(Tensor mean, Tensor std), normal(Tensor mean, float std),
    normal(float mean, Tensor std), each broadcast over the tensors and in the (first)
    tensor's dtype; and normal(float mean, float std, size, dtype=, device=)."""
    like = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    if like is None:
        if size is None:
            raise TypeError("normal: with a float mean and std, the 'size' argument is needed")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        data = randn_array(size_args((size,)), _float_dtype(dtype), backend.as_device(device),
                           generator) * std + mean
        return Tensor(data, requires_grad=requires_grad)
    if size is not None:
        raise TypeError("normal: 'size' is only for a float mean and a float std")
    _check_floating("normal", like)
    if isinstance(std, Tensor):
        if bool((std._data < 0).any()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    mean, std = (to_dtype(as_tensor_like(v, like), like.dtype) for v in (mean, std))
    try:
        np.broadcast_shapes(tuple(mean.shape), tuple(std.shape))
    except ValueError:
        raise RuntimeError(f"normal: mean of shape {tuple(mean.shape)} and std of shape "
                           f"{tuple(std.shape)} are not broadcastable") from None
    return Normal.apply(mean, std, generator=generator)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples in input's dtype: with probabilities `input`, or with the float `p` for
    every element of input's shape."""
    _check_floating("bernoulli", input)
    if p is not None:
        _check_probability("bernoulli_", p)
        return bernoulli_(input.detach().clone(), p, generator=generator)
    if bool(((input._data < 0) | (input._data > 1)).any()):
        raise RuntimeError("bernoulli: expected all probabilities in [0, 1] "
                           "(Expected p_in >= 0 && p_in <= 1)")
    return Bernoulli.apply(input, generator=generator)


def poisson(input, generator=None):
    """Poisson samples with the rates in `input` (non-negative), in input's dtype."""
    _check_floating("poisson", input)
    if bool((input._data < 0).any()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    return Poisson.apply(input, generator=generator)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from each row of (non-negative, unnormalized) weights. Without
    replacement, once the categories of positive weight are drawn, the rest follow in random
    order (as in PyTorch); more samples than categories is refused."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{tuple(input.shape)}")
    categories = input.shape[-1]
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples ({num_samples})")
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement ({num_samples} > {categories})")
    probs = np.asarray(backend.move_array(input._data, backend.CPU), dtype=np.float64)
    rows = probs.reshape(-1, categories)
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    if (rows.sum(-1) <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    rng = generator_rng(backend.CPU, generator)  # drawn on the host: sampling is tiny next to a model
    out = np.stack([_draw_row(rng, row, num_samples, replacement) for row in rows])
    out = out.reshape(probs.shape[:-1] + (num_samples,))
    return Tensor(out).to(input.device)


def _draw_row(rng, row, n, replacement):
    positive = np.count_nonzero(row)
    if replacement or n <= positive:
        return rng.choice(len(row), size=n, replace=replacement,
                          p=row / row.sum()).astype(np.int64)
    first = rng.choice(len(row), size=positive, replace=False, p=row / row.sum())
    rest = rng.permutation(np.flatnonzero(row == 0))[:n - positive]
    return np.concatenate([first, rest]).astype(np.int64)


# ----------------------------------------------------------------------------- dropout
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


def _check_p(op, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _dropped(input, result, inplace, op):
    """result, or with inplace=True `input` made to hold it (ops/inplace.py's commit)."""
    return commit(input, result, op) if inplace else result


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    _check_p("dropout", p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _dropped(input, input * 0.0, inplace, "dropout_")
    return _dropped(input, NativeDropout.apply(input, p=p, generator=generator), inplace,
                    "dropout_")


_SELU_ALPHA_SCALE = 1.7580993408473766
"""-alpha * scale of selu: the value alpha dropout sets a dropped element to (before its affine
correction), selu's limit at -infinity."""


def _feature_noise(input, p, alpha, feature, generator):
    """input * a + b for PyTorch's _dropout_impl: keep = bernoulli(1 - p) per element (or per
    channel, the first two dims, when feature), then a = keep / (1 - p), b = 0 for dropout;
    for alpha dropout a and b keep mean 0 and variance 1 of selu's outputs."""
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    dtype = input.dtype
    keep = (rand_array(shape, dtype, input.device, generator) >= p).astype(dtype)
    if not alpha:
        return input * Tensor._make(keep / dtype.type(1 - p), input.device)
    a = 1.0 / math.sqrt((_SELU_ALPHA_SCALE ** 2 * p + 1) * (1 - p))
    b = ((keep - 1) * (_SELU_ALPHA_SCALE * a) + _SELU_ALPHA_SCALE * a * p).astype(dtype)
    return input * Tensor._make((keep * a).astype(dtype), input.device) + Tensor._make(b, input.device)


def _dropout_impl(op, input, p, training, inplace, alpha, feature, generator):
    """PyTorch's _dropout_impl: the identity out of training, for p = 0 or an empty input;
    zeros for p = 1; else input times the noise (plus alpha dropout's shift)."""
    _check_p(op, p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return _dropped(input, input * 0.0, inplace, op + "_")
    return _dropped(input, _feature_noise(input, p, alpha, feature, generator), inplace, op + "_")


def _channel_dropout(op, input, p, training, inplace, batched, generator):
    """Feature dropout of input, given a batch dim first if it has none (batched False)."""
    _check_p(op, p)
    if batched:
        return _dropout_impl(op, input, p, training, inplace, False, True, generator)
    out = _dropout_impl(op, input.unsqueeze(0), p, training, False, False, True, generator)
    out = out.squeeze(0)
    return _dropped(input, out, inplace, op + "_") if inplace and out is not input else out


_CHANNEL_NOTE = ("Note that {op} exists to provide channel-wise dropout on inputs with {n} "
                 "spatial dimension{s}, a channel dimension, and an optional batch dimension "
                 "(i.e. {a}D or {b}D inputs).")


def _warn_unusual_rank(op, n, input):
    """PyTorch's warning for a channel dropout of n spatial dims given another rank (not yet
    an error there); stacklevel points at the caller of op."""
    warnings.warn(f"{op}: Received a {input.ndim}-D input to {op}, which is deprecated and "
                  "will result in an error in a future release. To retain the behavior and "
                  "silence this warning, please use dropout instead. "
                  + _CHANNEL_NOTE.format(op=op, n=n, s="s", a=n + 1, b=n + 2), stacklevel=3)


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels (dim 1 of an (N, C, L) input, dim 0 of (C, L)) with probability p,
    scaling the rest by 1/(1-p)."""
    _check_p("dropout1d", p)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                           "input. " + _CHANNEL_NOTE.format(op="dropout1d", n=1, s="", a=2, b=3))
    return _channel_dropout("dropout1d", input, p, training, inplace, input.ndim == 3, generator)


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels (dim 1) of an (N, C, H, W) input with probability p, scaling the
    rest by 1/(1-p). As in PyTorch, a 3-D input is taken as (N, C, L), with a warning."""
    _check_p("dropout2d", p)
    if input.ndim not in (3, 4):
        _warn_unusual_rank("dropout2d", 2, input)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape "
                      "(C, H, W). To maintain the 1D channel-wise dropout behavior, please "
                      "switch to using dropout1d instead.", stacklevel=2)
    return _dropout_impl("dropout2d", input, p, training, inplace, False, True, generator)


def dropout3d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels (dim 1 of an (N, C, D, H, W) input, dim 0 of (C, D, H, W)) with
    probability p, scaling the rest by 1/(1-p)."""
    _check_p("dropout3d", p)
    if input.ndim not in (4, 5):
        _warn_unusual_rank("dropout3d", 3, input)
    return _channel_dropout("dropout3d", input, p, training, inplace, input.ndim == 5, generator)


def alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """Dropout for selu networks: dropped elements are set to selu's negative saturation and
    an affine correction keeps the mean and variance of the input (training only)."""
    return _dropout_impl("alpha_dropout", input, p, training, inplace, True, False, generator)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """Alpha dropout of whole channels (dim 1)."""
    return _dropout_impl("feature_alpha_dropout", input, p, training, inplace, True, True,
                         generator)


# ----------------------------------------------------------------------------- in place
# Each sampler draws an array of self's shape and hands it to inplace._overwrite, which writes
# it through views into the base, and refuses (as PyTorch does) a leaf that requires grad.
def _draw_dtype(t: Tensor):
    """The dtype to draw floats in for t: float64 for float64, else float32."""
    return np.dtype(np.float64 if t.dtype == np.float64 else np.float32)


def uniform_(self, a=0.0, b=1.0, generator=None):
    """Fill with samples from U[a, b) (PyTorch's `from`, `to`)."""
    _check_floating("uniform_", self)
    if a > b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={a} > to={b}")
    sample = rand_array(self.shape, self.dtype, self.device, generator) * (b - a) + a
    return _overwrite(self, sample, "uniform_")


def normal_(self, mean=0.0, std=1.0, generator=None):
    _check_floating("normal_", self)
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    sample = randn_array(self.shape, self.dtype, self.device, generator) * std + mean
    return _overwrite(self, sample, "normal_")


def _random_bounds(dtype, args):
    """[low, high) of random_(), random_(to), random_(from, to), random_(from, None):
    PyTorch's default upper end is the dtype's largest value (inclusive), and for floats
    2**digits (the largest run of integers the significand holds exactly)."""
    if dtype.kind == "b":
        top = 1
    elif dtype.kind == "f":
        top = 2 ** np.finfo(dtype).nmant * 2
    else:
        top = int(np.iinfo(dtype).max)
    if not args:
        return 0, top + 1
    if len(args) == 1:
        return 0, int(args[0])
    low, high = args
    return int(low), top + 1 if high is None else int(high)


def random_(self, *args, generator=None):
    """Fill with integers drawn uniformly: random_() over [0, dtype's top], random_(to) over
    [0, to), random_(from, to) over [from, to), random_(from, None) over [from, top]."""
    if len(args) > 2:
        raise TypeError(f"random_: expected at most (from, to), got {args}")
    low, high = _random_bounds(self.dtype, args)
    check_integer_range("random_", low, high, self.dtype)
    rng = generator_rng(self.device, generator)
    sample = rng.integers(low, high, size=tuple(self.shape), dtype=np.int64)
    return _overwrite(self, sample.astype(self.dtype), "random_")


def _check_probability(op, p):
    if not 0 <= p <= 1:
        raise RuntimeError(f"{op} expects p to be in [0, 1], but got p={p}")


def bernoulli_(self, p=0.5, generator=None):
    """Fill with 1 with probability p (a float, or a tensor broadcast to self's shape)."""
    if isinstance(p, Tensor):
        probs = p._data
        try:
            np.broadcast_to(np.empty(probs.shape, np.bool_), tuple(self.shape))
        except ValueError:
            raise RuntimeError(f"bernoulli_: p of shape {tuple(p.shape)} cannot be expanded "
                               f"to the tensor's shape {tuple(self.shape)}") from None
        if bool(((probs < 0) | (probs > 1)).any()):
            raise RuntimeError("bernoulli_: expected all probabilities in [0, 1] "
                               "(Expected p_in >= 0 && p_in <= 1)")
    else:
        _check_probability("bernoulli_", p)
        probs = p
    u = rand_array(self.shape, np.dtype(np.float64), self.device, generator)
    return _overwrite(self, (u < probs).astype(self.dtype), "bernoulli_")


def exponential_(self, lambd=1.0, generator=None):
    """Fill with samples of density lambd * exp(-lambd * x)."""
    if self.dtype.kind != "f":
        raise RuntimeError("Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified "
                           f"{backend.dtype_name(self.dtype)}")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    u = rand_array(self.shape, _draw_dtype(self), self.device, generator)
    sample = -backend.array_module(self.device).log1p(-u) / lambd   # inverse CDF; u < 1
    return _overwrite(self, sample, "exponential_")


def geometric_(self, p, generator=None):
    """Fill with the number of Bernoulli(p) trials up to the first success (1, 2, ...)."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    u = rand_array(self.shape, np.dtype(np.float64), self.device, generator)
    xp = backend.array_module(self.device)
    sample = xp.floor(xp.log1p(-u) / math.log1p(-p)) + 1    # inverse CDF: P(k > n) = (1-p)^n
    return _overwrite(self, sample.astype(self.dtype), "geometric_")


def log_normal_(self, mean=1.0, std=2.0, generator=None):
    """Fill with exp(N(mean, std**2)) samples."""
    _check_floating("log_normal_", self)
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    z = randn_array(self.shape, _draw_dtype(self), self.device, generator)
    return _overwrite(self, backend.array_module(self.device).exp(z * std + mean), "log_normal_")


def cauchy_(self, median=0.0, sigma=1.0, generator=None):
    """Fill with Cauchy samples: median + sigma * tan(pi * (U - 1/2))."""
    _check_floating("cauchy_", self)
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    u = rand_array(self.shape, _draw_dtype(self), self.device, generator)
    xp = backend.array_module(self.device)
    return _overwrite(self, median + sigma * xp.tan(math.pi * (u - 0.5)), "cauchy_")
