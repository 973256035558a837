"""Activations and softmax, each one fused op with an analytic backward (no chain of small
ops, no temporaries kept beyond what backward needs)."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from .elementwise import floating
from .reduce import normalize_dims
from .special import erf


def _sigmoid(xp, x):
    """1 / (1 + e^-x) without overflow: uses e^-|x| on both sides of 0."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = _sigmoid(ctx.xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * y * (1 - y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * (1 - y * y)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * (y > 0)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, *, negative_slope):
        ctx.save_for_backward(x)
        ctx.slope = negative_slope
        return ctx.xp.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return ctx.xp.where(x > 0, g, g * ctx.slope)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    """x * Phi(x), exactly (erf) or with the tanh approximation (GPT-2's 'gelu_new').

    Two paths. With the kernel (minifm.kernels.gelu_cpu, picked by the kernel dispatch for
    exact GELU on float32 NumPy arrays when Numba is installed), each direction is one
    fused pass and backward recomputes Phi(x) from x. Otherwise whole-array NumPy/CuPy
    code, whose forward saves Phi(x) (or the tanh) next to x, so that backward does not
    evaluate erf again: one more array kept, for the most expensive part computed once."""

    @staticmethod
    def forward(ctx, x, *, approximate):
        xp = ctx.xp
        ctx.approximate = approximate
        from .. import kernels  # the kernel is chosen here, where the array is known
        ctx.kernel = kernels.select("gelu", "cpu" if xp is np else "cuda", dtype=x.dtype,
                                    approximate=approximate)
        if ctx.kernel is not None:
            ctx.save_for_backward(x)
            return ctx.kernel.gelu_forward(x)
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = erf(xp, x * _INV_SQRT_2)
        cdf += 1
        cdf *= 0.5
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        if ctx.kernel is not None:
            (x,) = ctx.saved
            return ctx.kernel.gelu_backward(g, x)
        x, saved = ctx.saved
        if ctx.approximate == "tanh":
            t = saved
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        pdf = xp.exp(-0.5 * x * x)
        pdf *= _INV_SQRT_2PI
        pdf *= x
        pdf += saved  # d/dx x Phi(x) = Phi(x) + x phi(x)
        return g * pdf


class SiLU(Function):
    @staticmethod
    def forward(ctx, x):
        s = _sigmoid(ctx.xp, x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved
        return g * s * (1 + x * (1 - s))


class Softplus(Function):
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
        return ctx.xp.where(bx > ctx.threshold, g, g * _sigmoid(ctx.xp, bx))


class Softmax(Function):
    """exp(x - max) / sum(exp(x - max)), computed in one buffer. A row of -inf gives nan,
    as in PyTorch. With `kernel` (minifm.kernels.softmax_cpu, chosen by softmax; last
    axis, contiguous input) its fused loops do the work, else the NumPy code, the
    reference."""

    @staticmethod
    def forward(ctx, x, *, axis, kernel=None):
        ctx.kernel = kernel
        if kernel is not None:
            y = kernel.softmax_forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)
            ctx.save_for_backward(y)
            return y
        xp = ctx.xp
        y = x - x.max(axis=axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        if ctx.kernel is not None:
            y2 = y.reshape(-1, y.shape[-1])
            return ctx.kernel.softmax_backward(g.reshape(y2.shape), y2).reshape(y.shape)
        gx = g * y
        gx -= y * gx.sum(axis=ctx.axis, keepdims=True)
        return gx


class LogSoftmax(Function):
    """(x - max) - log(sum(exp(x - max))); `kernel` as in Softmax."""

    @staticmethod
    def forward(ctx, x, *, axis, kernel=None):
        ctx.kernel = kernel
        if kernel is not None:
            y = kernel.softmax_forward(x.reshape(-1, x.shape[-1]), log=True).reshape(x.shape)
            ctx.save_for_backward(y)
            return y
        xp = ctx.xp
        y = x - x.max(axis=axis, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        if ctx.kernel is not None:
            y2 = y.reshape(-1, y.shape[-1])
            return ctx.kernel.softmax_backward(g.reshape(y2.shape), y2, log=True).reshape(y.shape)
        return g - ctx.xp.exp(y) * g.sum(axis=ctx.axis, keepdims=True)


# ----------------------------------------------------------------------------- public API
def sigmoid(input):
    return Sigmoid.apply(floating(input))


def tanh(input):
    return Tanh.apply(floating(input))


def relu(input, inplace=False):
    return ReLU.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return LeakyReLU.apply(input, negative_slope=negative_slope)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate=approximate)


def silu(input, inplace=False):
    return SiLU.apply(input)


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta=beta, threshold=threshold)


def _softmax_axis(op, input, dim):
    if dim is None:
        raise TypeError(f"{op}: the 'dim' argument is required")
    return normalize_dims(op, dim, input.ndim)[0] if input.ndim else 0


def _softmax_kernel(input, axis):
    """The kernel module for a softmax over `axis` of input, or None for the NumPy code."""
    if input.device.type != "cpu":  # no CUDA softmax kernel yet
        return None
    from .. import kernels
    return kernels.select("softmax", "cpu", dtype=input.dtype, last_axis=axis == input.ndim - 1,
                          contiguous=input._data.flags.c_contiguous,
                          cols=input.shape[-1] if input.ndim else 1)


def softmax(input, dim=None, dtype=None):
    input = floating(input if dtype is None else input.to(dtype))
    axis = _softmax_axis("softmax", input, dim)
    return Softmax.apply(input, axis=axis, kernel=_softmax_kernel(input, axis))


def log_softmax(input, dim=None, dtype=None):
    input = floating(input if dtype is None else input.to(dtype))
    axis = _softmax_axis("log_softmax", input, dim)
    return LogSoftmax.apply(input, axis=axis, kernel=_softmax_kernel(input, axis))


