"""Activations and softmax, each one fused op with an analytic backward (no chain of small
ops, no temporaries kept beyond what backward needs). The pointwise ones with a derivative
of x alone (elu, hardswish, ...) are built by elementwise's `_unary` from a forward and a
derivative; a few are composites of other ops (softmin, glu, prelu, tanhshrink, rrelu).
With inplace=True (and in the functional `name_` forms) the result is committed into the
input by ops/inplace.py's `commit`, so views of it see the new values.

GELU, softmax, log_softmax and relu also have a kernel in minifm.kernels: each of them is a
reference Function (NumPy/CuPy code, the oracle and the fallback) and a fused Function
(the kernel's loops), and its public function picks one with one `kernels.select` call
(relu only from RELU_KERNEL_FROM elements: below, the call would cost more than it saves)."""
from __future__ import annotations

import math

import numpy as np

from .. import backend, kernels
from ..creation import rand_array
from ..autograd import Function
from ..tensor import Tensor
from ._checks import check_tensor
from .elementwise import Erf, _unary, floating, mul, where
from .inplace import commit
from ..dims import normalize_dims
from .special import erf as erf_array


def stable_sigmoid(xp, x):
    """1 / (1 + e^-x) without overflow: uses e^-|x| on both sides of 0."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class SigmoidFunction(Function):
    @staticmethod
    def forward(ctx, x):
        y = stable_sigmoid(ctx.xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * y * (1 - y)


class TanhFunction(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * (1 - y * y)


class Relu(Function):
    """max(x, 0); the gradient passes where the output is not <= 0 and is 0 elsewhere, as
    PyTorch's threshold_backward (a NaN input passes its gradient on)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return ctx.xp.where(y <= 0, 0, g)


class ReluFused(Function):
    """relu by a kernel module (minifm.kernels.relu_cpu): one vectorized pass each way,
    the same results as Relu to the bit. Its node keeps PyTorch's name, ReluBackward0;
    under create_graph its backward is Relu's, on the same saved output."""

    reference = Relu
    node_name = "ReluBackward0"

    @staticmethod
    def forward(ctx, x, *, kernel):
        ctx.kernel = kernel
        y = kernel.relu_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return ctx.kernel.relu_backward(g, y)


class LeakyRelu(Function):
    """x where x > 0, else negative_slope * x. For 0 < slope <= 1 (every use of it as an
    activation) that is max(x, slope * x), with the derivative max(x > 0, slope): whole-array
    arithmetic. `where` takes a branch per element, mispredicted half the time on inputs of
    random sign: measured on NumPy arrays of (64, 64, 8, 8) float32, forward 3.0 -> 0.2 ms,
    backward 3.5 -> 0.5 ms. Other slopes, and backward under create_graph, use `where`."""

    @staticmethod
    def forward(ctx, x, *, negative_slope):
        ctx.save_for_backward(x)
        ctx.slope = negative_slope
        if 0 < negative_slope <= 1:
            return ctx.xp.maximum(x, x * negative_slope)
        return ctx.xp.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        if 0 < ctx.slope <= 1 and isinstance(g, np.ndarray):
            return g * np.maximum((x > 0).astype(g.dtype), ctx.slope)
        return ctx.xp.where(x > 0, g, g * ctx.slope)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_composite(x, approximate="none", kernel=None):
    """GELU from differentiable ops, which both GELU Functions are differentiated through
    under create_graph (their backward uses Phi(x) saved in forward, or a kernel)."""
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
    return x * (0.5 * (1 + Erf.apply(x * _INV_SQRT_2)))


class GeluReference(Function):
    """x * Phi(x), exactly (erf) or with the tanh approximation (GPT-2's 'gelu_new'), by
    whole-array NumPy/CuPy code. Forward saves Phi(x) (or the tanh) next to x, so that
    backward does not evaluate erf again: one more array kept, for the most expensive part
    computed once."""

    composite = staticmethod(_gelu_composite)

    @staticmethod
    def forward(ctx, x, *, approximate):
        xp = ctx.xp
        ctx.approximate = approximate
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = erf_array(xp, x * _INV_SQRT_2)
        cdf += 1
        cdf *= 0.5
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        x, saved = ctx.saved
        if ctx.approximate == "tanh":
            t = saved
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        pdf = ctx.xp.exp(-0.5 * x * x)
        pdf *= _INV_SQRT_2PI
        pdf *= x
        pdf += saved  # d/dx x Phi(x) = Phi(x) + x phi(x)
        return g * pdf


class GeluFused(Function):
    """Exact GELU by a kernel module (minifm.kernels.gelu_cpu): each direction is one fused
    pass, and backward recomputes Phi(x) from x, as PyTorch does (one activation less)."""

    composite = staticmethod(_gelu_composite)

    @staticmethod
    def forward(ctx, x, *, kernel):
        ctx.kernel = kernel
        ctx.save_for_backward(x)
        return kernel.gelu_forward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return ctx.kernel.gelu_backward(g, x)


class Silu(Function):
    """x * sigmoid(x); backward recomputes the sigmoid from x, as PyTorch does."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * stable_sigmoid(ctx.xp, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        s = stable_sigmoid(ctx.xp, x)
        return g * s * (1 + x * (1 - s))


class SoftplusFunction(Function):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, x, *, beta, threshold):
        xp = ctx.xp
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x * beta
        return xp.where(bx > threshold, x, xp.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        bx = x * ctx.beta
        return ctx.xp.where(bx > ctx.threshold, g, g * stable_sigmoid(ctx.xp, bx))


class SoftmaxReference(Function):
    """exp(x - max) / sum(exp(x - max)) over `axis`, computed in one buffer. A row of -inf
    gives NaN, as in PyTorch.

    backward: dx = y * (g - sum(g * y)), the Jacobian-vector product of softmax."""

    @staticmethod
    def forward(ctx, x, *, axis):
        y = x - x.max(axis=axis, keepdims=True)
        ctx.xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        gx = g * y
        gx -= y * gx.sum(axis=ctx.axis, keepdims=True)
        return gx


class LogSoftmaxReference(Function):
    """(x - max) - log(sum(exp(x - max))) over `axis`.

    backward: dx = g - exp(y) * sum(g), exp(y) being the softmax."""

    @staticmethod
    def forward(ctx, x, *, axis):
        xp = ctx.xp
        y = x - x.max(axis=axis, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g - ctx.xp.exp(y) * g.sum(axis=ctx.axis, keepdims=True)


class SoftmaxFused(Function):
    """Softmax over the last axis of a C-contiguous array by a kernel module
    (minifm.kernels.softmax_cpu): one pass per row each way. Under create_graph its backward is
    SoftmaxReference's: the same derivative, on the same saved output."""

    reference = SoftmaxReference

    @staticmethod
    def forward(ctx, x, *, kernel):
        ctx.kernel, ctx.axis = kernel, x.ndim - 1
        y = kernel.softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return ctx.kernel.softmax_backward(g, y)


class LogSoftmaxFused(Function):
    """Log-softmax over the last axis by a kernel module, as SoftmaxFused."""

    reference = LogSoftmaxReference

    @staticmethod
    def forward(ctx, x, *, kernel):
        ctx.kernel, ctx.axis = kernel, x.ndim - 1
        y = kernel.softmax_forward(x, log=True)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return ctx.kernel.softmax_backward(g, y, log=True)


# ----------------------------------------------------------------------------- public API
def _result(input, result, inplace, op):
    """result, or with inplace=True `input` made to hold it (ops/inplace.py's commit: views
    of input see the new values, and a leaf that requires grad is refused as in PyTorch)."""
    return commit(input, result, op) if inplace else result


def sigmoid(input):
    return SigmoidFunction.apply(floating(input))


def tanh(input):
    return TanhFunction.apply(floating(input))


# Below this many elements relu runs Relu without asking kernels.select: NumPy's maximum
# is then within the ~3 us that select's call costs of the kernel (float32, one thread:
# (64, 64) NumPy 6.7 us, kernel 4.6 us; (128, 128) 11.6 us against 3.7 us).
RELU_KERNEL_FROM = 8192


def relu(input, inplace=False):
    kernel = None
    if isinstance(input, Tensor) and input._data.size >= RELU_KERNEL_FROM:
        data = input._data
        kernel = kernels.select("relu", input.device.type, dtype=data.dtype,
                                contiguous=data.flags.c_contiguous)
    result = Relu.apply(input) if kernel is None else ReluFused.apply(input, kernel=kernel)
    return _result(input, result, inplace, "relu_")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _result(input, LeakyRelu.apply(input, negative_slope=negative_slope), inplace,
                   "leaky_relu_")


def gelu(input, approximate="none"):
    check_tensor("gelu", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    kernel = kernels.select("gelu", input.device.type, dtype=input.dtype,
                            approximate=approximate)
    if kernel is None:
        return GeluReference.apply(input, approximate=approximate)
    return GeluFused.apply(input, kernel=kernel)


def silu(input, inplace=False):
    return _result(input, Silu.apply(input), inplace, "silu_")


def softplus(input, beta=1.0, threshold=20.0):
    return SoftplusFunction.apply(input, beta=beta, threshold=threshold)


def _softmax_args(op, input, dim, dtype):
    """The floating input (cast to dtype if given), the softmax axis and the kernel module
    to run it with (None: the reference)."""
    check_tensor(op, input)
    if dim is None:
        raise TypeError(f"{op}: the 'dim' argument is required")
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        input = floating(input)
    ndim = input._data.ndim
    axis = (normalize_dims(op, dim, ndim) or (0,))[0]
    kernel = kernels.select("softmax", input.device.type, dtype=input.dtype,
                            last_axis=axis == ndim - 1,
                            contiguous=input._data.flags.c_contiguous,
                            cols=input.shape[-1] if ndim else 1)
    return input, axis, kernel


def softmax(input, dim=None, dtype=None):
    input, axis, kernel = _softmax_args("softmax", input, dim, dtype)
    if input._data.ndim == 0:  # a row of one element, as in PyTorch
        return softmax(input.reshape(1), 0).reshape(())
    if input._data.size == 0:  # nothing to normalize (NumPy's max refuses an empty axis)
        return input.clone()
    if kernel is None:
        return SoftmaxReference.apply(input, axis=axis)
    return SoftmaxFused.apply(input, kernel=kernel)


def log_softmax(input, dim=None, dtype=None):
    input, axis, kernel = _softmax_args("log_softmax", input, dim, dtype)
    if input._data.ndim == 0:  # a row of one element, as in PyTorch
        return log_softmax(input.reshape(1), 0).reshape(())
    if input._data.size == 0:  # nothing to normalize (NumPy's max refuses an empty axis)
        return input.clone()
    if kernel is None:
        return LogSoftmaxReference.apply(input, axis=axis)
    return LogSoftmaxFused.apply(input, kernel=kernel)


# ----------------------------------------------------------------------------- more activations
# Each is y = f(x) with a derivative of the saved x (PyTorch's formulas, its choice at kinks).
def _elu_derivative(xp, x, alpha, scale, input_scale):
    return xp.where(x > 0, scale, (alpha * scale * input_scale) * xp.exp(x * input_scale))


Elu = _unary("Elu", lambda xp, x, alpha, scale, input_scale: xp.where(
    x > 0, scale * x, (alpha * scale) * xp.expm1(x * input_scale)).astype(x.dtype, copy=False),
    _elu_derivative)
Elu.__doc__ = ("scale * (x if x > 0 else alpha (e^(x input_scale) - 1)): elu, celu "
               "(input_scale 1/alpha) and selu (fixed alpha and scale) in one op.")


def _hardtanh_derivative(xp, x, min_val, max_val):
    return (x > min_val) & (x < max_val)


Hardtanh = _unary("Hardtanh", lambda xp, x, min_val, max_val: xp.clip(x, min_val, max_val)
                  .astype(x.dtype, copy=False), _hardtanh_derivative)
Hardsigmoid = _unary("Hardsigmoid", lambda xp, x: (xp.clip(x, -3, 3) / 6 + 0.5)
                     .astype(x.dtype, copy=False),
                     lambda xp, x: xp.where((x > -3) & (x < 3), 1 / 6, 0).astype(x.dtype))
Hardswish = _unary("Hardswish", lambda xp, x: x * (xp.clip(x, -3, 3) / 6 + 0.5)
                   .astype(x.dtype, copy=False),
                   lambda xp, x: xp.where(x < -3, 0, xp.where(x <= 3, x / 3 + 0.5, 1)))
Softsign = _unary("Softsign", lambda xp, x: x / (1 + xp.abs(x)),
                  lambda xp, x: 1 / ((1 + xp.abs(x)) * (1 + xp.abs(x))))


def _softplus_stable(xp, x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every x."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


LogSigmoid = _unary("LogSigmoid", lambda xp, x: -_softplus_stable(xp, -x),
                    lambda xp, x: stable_sigmoid(xp, -x))


def _mish_derivative(xp, x):
    t = xp.tanh(_softplus_stable(xp, x))
    return t + x * stable_sigmoid(xp, x) * (1 - t * t)


Mish = _unary("Mish", lambda xp, x: x * xp.tanh(_softplus_stable(xp, x)), _mish_derivative)
Threshold = _unary("Threshold", lambda xp, x, threshold, value: xp.where(
    x > threshold, x, xp.asarray(value, dtype=x.dtype)), lambda xp, x, threshold, value: x > threshold)

Hardshrink = _unary("Hardshrink", lambda xp, x, lambd: xp.where(
    (x >= -lambd) & (x <= lambd), xp.zeros_like(x), x),
    lambda xp, x, lambd: (x < -lambd) | (x > lambd))
Softshrink = _unary("Softshrink", lambda xp, x, lambd: xp.where(
    x > lambd, x - lambd, xp.where(x < -lambd, x + lambd, xp.zeros_like(x))).astype(x.dtype, copy=False),
    lambda xp, x, lambd: (x < -lambd) | (x > lambd))

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def elu(input, alpha=1.0, inplace=False):
    return _result(input, Elu.apply(input, alpha=alpha, scale=1.0, input_scale=1.0), inplace,
                   "elu_")


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    return _result(input, Elu.apply(input, alpha=alpha, scale=1.0, input_scale=1.0 / alpha),
                   inplace, "celu_")


def selu(input, inplace=False):
    return _result(input, Elu.apply(input, alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0),
                   inplace, "selu_")


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _result(input, Hardtanh.apply(input, min_val=min_val, max_val=max_val), inplace,
                   "hardtanh_")


def relu6(input, inplace=False):
    return _result(input, Hardtanh.apply(input, min_val=0.0, max_val=6.0), inplace, "relu6_")


def hardsigmoid(input, inplace=False):
    return _result(input, Hardsigmoid.apply(input), inplace, "hardsigmoid_")


def hardswish(input, inplace=False):
    return _result(input, Hardswish.apply(input), inplace, "hardswish_")


def softsign(input):
    return Softsign.apply(input)


def logsigmoid(input):
    return LogSigmoid.apply(input)


def mish(input, inplace=False):
    return _result(input, Mish.apply(input), inplace, "mish_")


def threshold(input, threshold, value, inplace=False):
    """value where input <= threshold, else input."""
    return _result(input, Threshold.apply(input, threshold=threshold, value=value), inplace,
                   "threshold_")


def hardshrink(input, lambd=0.5):
    """0 where |input| <= lambd, else input."""
    check_tensor("hardshrink", input)
    return Hardshrink.apply(input, lambd=lambd)


def softshrink(input, lambd=0.5):
    """input shrunk towards 0 by lambd, and 0 where |input| <= lambd."""
    check_tensor("softshrink", input)
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found to be "
                           f"{lambd}.")
    return Softshrink.apply(input, lambd=lambd)


def tanhshrink(input):
    """input - tanh(input)."""
    check_tensor("tanhshrink", input)
    return input - tanh(input)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, generator=None):
    """Randomized leaky ReLU: in training, each negative element is scaled by its own slope
    drawn uniformly from [lower, upper) (from the device's minifm generator); in eval, by the
    fixed slope (lower + upper) / 2. The slopes are constants of the graph, as in PyTorch."""
    check_tensor("rrelu", input)
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    x = floating(input)
    slope = rand_array(tuple(x.shape), x.dtype, x.device, generator) * (upper - lower) + lower
    xp = backend.array_module(x.device)
    noise = xp.where(x._data > 0, xp.ones_like(slope), slope).astype(x.dtype, copy=False)
    return _result(input, mul(x, Tensor._make(noise, x.device)), inplace, "rrelu_")


def softmin(input, dim=None, dtype=None):
    """softmax(-input): weights that favour the smallest entries."""
    input, _, _ = _softmax_args("softmin", input, dim, dtype)
    return softmax(-input, dim)


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of input along dim (the gated linear unit)."""
    check_tensor("glu", input)
    if input.ndim == 0:
        raise ValueError("glu: does not support scalars because halving size must be even")
    axis = normalize_dims("glu", dim, input.ndim)[0]
    if input.shape[axis] % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {axis} is size "
                         f"{input.shape[axis]}")
    a, b = input.chunk(2, axis)
    return a * sigmoid(b)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight one slope per channel (dim 1) or one for all."""
    check_tensor("prelu", input)
    check_tensor("prelu", weight, "weight")
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if weight.ndim != 1 or weight.shape[0] != channels:
            raise ValueError(f"prelu: weight of shape {tuple(weight.shape)} does not match the "
                             f"{channels} channels of input of shape {tuple(input.shape)}")
        if input.ndim >= 2:
            weight = weight.reshape(channels, *([1] * (input.ndim - 2)))
    elif weight.ndim:
        weight = weight.reshape(())
    return where(input > 0, input, mul(weight, input))


# ----------------------------------------------------------------------------- in place
# PyTorch's functional `name_` forms: the activation with inplace=True.
def relu_(input):
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def selu_(input):
    return selu(input, inplace=True)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def threshold_(input, threshold, value):
    """In place: value where input <= threshold, else input."""
    return _result(input, Threshold.apply(input, threshold=threshold, value=value), True,
                   "threshold_")


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return rrelu(input, lower, upper, training, inplace=True, generator=generator)
