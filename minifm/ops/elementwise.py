"""Elementwise ops: arithmetic, unary math (trigonometric, hyperbolic, exponential and
logarithmic, erf and kin), clamping, selection, casts, comparisons, bitwise and logical
ops.

Binary ops broadcast like NumPy; the engine's `unbroadcast` sums each gradient back to its
input's shape, so no op here deals with broadcasting in backward. Python scalars never
promote a tensor: float32 * 2.0 stays float32, and int64 * 0.5 becomes the default float
dtype, as in PyTorch.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from . import special
from ._checks import check_tensor


# ----------------------------------------------------------------------------- operands
def as_tensor_like(value, like: Tensor) -> Tensor:
    """A constant Tensor on like's device for a Python scalar, array or list operand."""
    if isinstance(value, Tensor):
        return value
    xp = backend.array_module(like.device)
    if isinstance(value, (bool, np.bool_)):
        dtype = like.dtype
    elif isinstance(value, numbers.Integral):
        dtype = like.dtype if like.dtype != backend.bool_ else backend.int64
    elif isinstance(value, numbers.Real):
        dtype = like.dtype if like.dtype.kind == "f" else backend.get_default_dtype()
    else:
        array = xp.asarray(value)
        dtype = backend.promote_types(array.dtype, like.dtype)
    return Tensor._make(xp.asarray(value, dtype=dtype), like.device)


def binary_operands(a, b):
    """Two Tensors of one dtype (PyTorch's promotion) from tensors and/or scalars."""
    if a.__class__ is Tensor and b.__class__ is Tensor and a._data.dtype == b._data.dtype:
        return a, b
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} "
                            f"and {type(b).__name__}")
        a = as_tensor_like(a, b)
    elif not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    if a.dtype != b.dtype:
        dtype = result_dtype(a, b)
        a, b = to_dtype(a, dtype), to_dtype(b, dtype)
    return a, b


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def result_dtype(a: Tensor, b: Tensor):
    """PyTorch's promotion of two tensors: a 0-d tensor acts like a Python scalar, so it sets
    the dtype only when its category (bool < integer < float) is higher than the other's
    (float32 vector + float64 0-d -> float32; int64 vector + float64 0-d -> float64)."""
    if (a.ndim == 0) != (b.ndim == 0):
        dims, zero = (b, a) if a.ndim == 0 else (a, b)
        if _CATEGORY[zero.dtype.kind] <= _CATEGORY[dims.dtype.kind]:
            return dims.dtype
    return backend.promote_types(a.dtype, b.dtype)


def floating(x: Tensor) -> Tensor:
    """Integer inputs of float-valued ops (exp, log, ...) become the default float dtype.
    Anything else passes through, for Function.apply to reject with the op's name."""
    if isinstance(x, Tensor) and x.dtype.kind != "f":
        return to_dtype(x, backend.get_default_dtype())
    return x


def check_broadcast(op, a: Tensor, b: Tensor):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not "
                         "broadcastable") from None


# ----------------------------------------------------------------------------- arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return (g * y if ctx.needs_input_grad[0] else None,
                g * x if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        gx = g / y
        return gx, (-gx * x / y if ctx.needs_input_grad[1] else None)


class Pow(Function):
    @staticmethod
    def forward(ctx, x, y):
        if y.dtype.kind == "i" and (y < 0).any():
            out = _integer_negative_power(ctx.xp, x, y)
        else:
            out = x ** y
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved
        xp = ctx.xp
        gx = gy = None
        if ctx.needs_input_grad[0]:
            # d(x^y)/dx = y x^(y-1), taken as 0 where y == 0 (PyTorch's rule: x ** 0 is the
            # constant 1, also at x == 0 where 0 * 0^-1 would be NaN)
            # (the inner where keeps 0^-1 out of the masked branch, whose own derivative
            # would otherwise turn the second derivative into 0 * inf = NaN)
            gx = g * xp.where(y == 0, 0, y * x ** xp.where(y == 0, 1, y - 1))
        if ctx.needs_input_grad[1]:
            # d(x^y)/dy = x^y log x; PyTorch takes it as 0 where x == 0 and y >= 0, and keeps
            # inf * log 0 = -inf where x == 0 and y < 0
            log_x = xp.log(xp.where(x == 0, xp.where(y >= 0, 1, x), x))
            gy = g * out * log_x
        return gx, gy


def _integer_negative_power(xp, x, y):
    """x ** y of integers where some y < 0, as PyTorch: 1 ** y = 1, (-1) ** y = +-1 by the
    parity of y, any other x ** y = 0 (NumPy refuses negative integer powers)."""
    out = x ** xp.abs(y)
    odd = (y % 2).astype(bool)
    inverse = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0)).astype(out.dtype)
    return xp.where(y < 0, inverse, out)


def _binary(fn, name, a, b):
    a, b = binary_operands(a, b)
    if a._data.shape != b._data.shape:
        check_broadcast(name, a, b)
    return fn.apply(a, b)


def add(input, other, alpha=1):
    return _binary(Add, "add", input, other if alpha == 1 else mul(other, alpha))


def sub(input, other, alpha=1):
    return _binary(Sub, "sub", input, other if alpha == 1 else mul(other, alpha))


def mul(input, other):
    return _binary(Mul, "mul", input, other)


def check_integer_divisor(op, a, b):
    """The operands (as binary_operands makes them); PyTorch refuses an integer division by
    zero (div with a rounding mode, floor_divide, remainder, fmod) with a RuntimeError,
    where NumPy gives 0 and a warning."""
    a, b = binary_operands(a, b)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and not b._data.all():
        raise RuntimeError(f"{op}: ZeroDivisionError (an integer division by zero)")
    return a, b


def div(input, other, rounding_mode=None):
    a, b = binary_operands(input, other)
    if rounding_mode is not None:
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        check_integer_divisor("div", a, b)
        xp = backend.array_module(a.device)
        rounded = (xp.floor if rounding_mode == "floor" else xp.trunc)(a._data / b._data)
        return Tensor._make(rounded.astype(a.dtype, copy=False), a.device)
    if a.dtype.kind != "f":  # true division of integers gives floats
        a, b = floating(a), floating(b)
    return _binary(Div, "div", a, b)


def pow(input, exponent):
    if isinstance(input, Tensor) and input.dtype.kind != "f":
        if isinstance(exponent, float):
            input = floating(input)
        elif isinstance(exponent, int) and exponent < 0:
            raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
    return _binary(Pow, "pow", input, exponent)


# ----------------------------------------------------------------------------- unary math
def _unary(name, forward, derivative, saves="x"):
    """Build a Function for y = f(x) with dy/dx computed from the saved x or y.

    forward(xp, x, **attrs) and derivative(xp, saved, **attrs) take the op's keyword
    attributes (an activation's alpha, say). The derivative runs on ctx.xp, so it is written
    once for raw arrays and for the differentiable namespace of create_graph."""

    def fwd(ctx, x, **attrs):
        ctx.attrs = attrs
        y = forward(ctx.xp, x, **attrs)
        ctx.save_for_backward(x if saves == "x" else y)
        return y

    def bwd(ctx, g):
        (saved,) = ctx.saved
        return g * derivative(ctx.xp, saved, **ctx.attrs)

    fn = type(name, (Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd),
                                  "__doc__": f"Elementwise {name.lower()}."})
    return fn


Neg = type("Neg", (Function,), {"forward": staticmethod(lambda ctx, x: -x),
                                 "backward": staticmethod(lambda ctx, g: -g)})
Abs = _unary("Abs", lambda xp, x: xp.abs(x), lambda xp, x: xp.sign(x))
Exp = _unary("Exp", lambda xp, x: xp.exp(x), lambda xp, y: y, saves="y")
Log = _unary("Log", lambda xp, x: xp.log(x), lambda xp, x: 1 / x)
Log1p = _unary("Log1p", lambda xp, x: xp.log1p(x), lambda xp, x: 1 / (1 + x))
Sqrt = _unary("Sqrt", lambda xp, x: xp.sqrt(x), lambda xp, y: 0.5 / y, saves="y")
Rsqrt = _unary("Rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, y: -0.5 * y ** 3, saves="y")
Sin = _unary("Sin", lambda xp, x: xp.sin(x), lambda xp, x: xp.cos(x))
Cos = _unary("Cos", lambda xp, x: xp.cos(x), lambda xp, x: -xp.sin(x))
Square = _unary("Square", lambda xp, x: x * x, lambda xp, x: 2 * x)
Reciprocal = _unary("Reciprocal", lambda xp, x: 1 / x, lambda xp, y: -y * y, saves="y")
Tan = _unary("Tan", lambda xp, x: xp.tan(x), lambda xp, y: 1 + y * y, saves="y")
Asin = _unary("Asin", lambda xp, x: xp.arcsin(x), lambda xp, x: 1 / xp.sqrt(1 - x * x))
Acos = _unary("Acos", lambda xp, x: xp.arccos(x), lambda xp, x: -1 / xp.sqrt(1 - x * x))
Atan = _unary("Atan", lambda xp, x: xp.arctan(x), lambda xp, x: 1 / (1 + x * x))
Sinh = _unary("Sinh", lambda xp, x: xp.sinh(x), lambda xp, x: xp.cosh(x))
Cosh = _unary("Cosh", lambda xp, x: xp.cosh(x), lambda xp, x: xp.sinh(x))
Asinh = _unary("Asinh", lambda xp, x: xp.arcsinh(x), lambda xp, x: 1 / xp.sqrt(x * x + 1))
Acosh = _unary("Acosh", lambda xp, x: xp.arccosh(x), lambda xp, x: 1 / xp.sqrt(x * x - 1))
Atanh = _unary("Atanh", lambda xp, x: xp.arctanh(x), lambda xp, x: 1 / (1 - x * x))
Exp2 = _unary("Exp2", lambda xp, x: xp.exp2(x), lambda xp, y: y * math.log(2), saves="y")
Expm1 = _unary("Expm1", lambda xp, x: xp.expm1(x), lambda xp, y: y + 1, saves="y")
Log2 = _unary("Log2", lambda xp, x: xp.log2(x), lambda xp, x: 1 / (x * math.log(2)))
Log10 = _unary("Log10", lambda xp, x: xp.log10(x), lambda xp, x: 1 / (x * math.log(10)))
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
Erf = _unary("Erf", special.erf, lambda xp, x: _TWO_OVER_SQRT_PI * xp.exp(-(x * x)))
Erfc = _unary("Erfc", special.erfc, lambda xp, x: -_TWO_OVER_SQRT_PI * xp.exp(-(x * x)))
Erfinv = _unary("Erfinv", special.erfinv,
                lambda xp, y: (math.sqrt(math.pi) / 2) * xp.exp(y * y), saves="y")


def neg(input):
    return Neg.apply(input)


def abs(input):
    return Abs.apply(input)


def exp(input):
    return Exp.apply(floating(input))


def log(input):
    return Log.apply(floating(input))


def log1p(input):
    return Log1p.apply(floating(input))


def sqrt(input):
    return Sqrt.apply(floating(input))


def rsqrt(input):
    return Rsqrt.apply(floating(input))


def sin(input):
    return Sin.apply(floating(input))


def cos(input):
    return Cos.apply(floating(input))


def square(input):
    return Square.apply(input)


def reciprocal(input):
    return Reciprocal.apply(floating(input))


def _float_unary(fn, name):
    """The public function of a float-valued unary op: integer inputs become floats."""
    def op(input):
        return fn.apply(floating(input))
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (integer inputs give the default float dtype)."
    return op


tan, asin, acos, atan = (_float_unary(fn, n) for fn, n in
                         [(Tan, "tan"), (Asin, "asin"), (Acos, "acos"), (Atan, "atan")])
sinh, cosh, asinh, acosh, atanh = (_float_unary(fn, n) for fn, n in
                                   [(Sinh, "sinh"), (Cosh, "cosh"), (Asinh, "asinh"),
                                    (Acosh, "acosh"), (Atanh, "atanh")])
exp2, expm1, log2, log10 = (_float_unary(fn, n) for fn, n in
                            [(Exp2, "exp2"), (Expm1, "expm1"), (Log2, "log2"),
                             (Log10, "log10")])
erf, erfc, erfinv = (_float_unary(fn, n) for fn, n in
                     [(Erf, "erf"), (Erfc, "erfc"), (Erfinv, "erfinv")])


def frac(input):
    """input - trunc(input): the fractional part, keeping input's sign; its gradient is 1."""
    check_tensor("frac", input)
    return sub(input, trunc(input))


# ----------------------------------------------------------------------------- binary math
class Atan2(Function):
    """atan2(y, x), the angle of the point (x, y): d/dy = x / r^2, d/dx = -y / r^2."""

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return ctx.xp.arctan2(y, x)

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved
        g = g / (x * x + y * y)
        return g * x, -g * y


class Hypot(Function):
    """sqrt(x^2 + y^2) without overflow: d/dx = x / out, d/dy = y / out."""

    @staticmethod
    def forward(ctx, x, y):
        out = ctx.xp.hypot(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved
        g = g / out
        return g * x, g * y


class LogAddExp(Function):
    """log(e^x + e^y) without overflow; the gradients are softmax weights e^(x - out)."""

    @staticmethod
    def forward(ctx, x, y):
        out = ctx.xp.logaddexp(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved
        return g * ctx.xp.exp(x - out), g * ctx.xp.exp(y - out)


class LogAddExp2(Function):
    """log2(2^x + 2^y); the gradients are 2^(x - out) and 2^(y - out)."""

    @staticmethod
    def forward(ctx, x, y):
        out = ctx.xp.logaddexp2(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved
        ln2 = math.log(2)
        return g * ctx.xp.exp((x - out) * ln2), g * ctx.xp.exp((y - out) * ln2)


class Xlogy(Function):
    """x * log(y), and 0 where x == 0 (unless y is NaN): the entropy term that stays finite
    at x = 0. d/dx = log(y), taken as 0 where x == 0 and y <= 0 (PyTorch's rule), d/dy = x / y."""

    @staticmethod
    def forward(ctx, x, y):
        xp = ctx.xp
        ctx.save_for_backward(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xp.where((x == 0) & ~xp.isnan(y), 0, x * xp.log(y))
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        xp = ctx.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * xp.where((x == 0) & (y <= 0), 0, xp.log(y)), g * x / y


class Copysign(Function):
    """|x| with the sign of y. d/dx = sign(x) sign(out) (0 at x == 0, as in PyTorch); y only
    contributes its sign, so its gradient is 0."""

    @staticmethod
    def forward(ctx, x, y):
        out = ctx.xp.copysign(x, y)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved
        xp = ctx.xp
        return g * xp.sign(x) * xp.sign(out), g * 0


class Fmod(Function):
    """x - trunc(x / y) * y, the C remainder (the sign of x). d/dx = 1, d/dy = -trunc(x / y)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.fmod(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return g, (-g * ctx.xp.trunc(x / y) if ctx.needs_input_grad[1] else None)


class Remainder(Function):
    """x - floor(x / y) * y, Python's modulo (the sign of y). d/dx = 1, d/dy = -floor(x / y)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.remainder(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return g, (-g * ctx.xp.floor(x / y) if ctx.needs_input_grad[1] else None)


def atan2(input, other):
    return _binary(Atan2, "atan2", floating(input), floating(other))


def hypot(input, other):
    return _binary(Hypot, "hypot", input, other)


def logaddexp(input, other):
    return _binary(LogAddExp, "logaddexp", input, other)


def logaddexp2(input, other):
    return _binary(LogAddExp2, "logaddexp2", input, other)


def xlogy(input, other):
    return _binary(Xlogy, "xlogy", floating(input), floating(other))


def copysign(input, other):
    return _binary(Copysign, "copysign", floating(input), floating(other))


def fmod(input, other):
    return _binary(Fmod, "fmod", *check_integer_divisor("fmod", input, other))


def remainder(input, other):
    return _binary(Remainder, "remainder", *check_integer_divisor("remainder", input, other))


def lerp(input, end, weight):
    """input + weight * (end - input), from differentiable ops (so differentiable twice)."""
    operands = [t for t in (input, end, weight) if isinstance(t, Tensor)]
    try:
        np.broadcast_shapes(*(t.shape for t in operands))
    except ValueError:
        raise ValueError("lerp: shapes " + ", ".join(str(tuple(t.shape)) for t in operands)
                         + " are not broadcastable") from None
    return add(input, mul(weight, sub(end, input)))


class NanToNum(Function):
    """NaN, +inf and -inf replaced by finite numbers; the gradient flows only where x was
    finite (a mask saved in forward, a constant)."""

    @staticmethod
    def forward(ctx, x, *, nan, posinf, neginf):
        ctx.save_for_backward(ctx.xp.isfinite(x))
        return ctx.xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        (finite,) = ctx.saved
        return g * finite


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """posinf/neginf default to the dtype's largest/lowest finite value, as in PyTorch."""
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


# ----------------------------------------------------------------------------- clamp, select
class Clamp(Function):
    @staticmethod
    def forward(ctx, x, *, min, max):
        ctx.save_for_backward(x)
        ctx.min, ctx.max = min, max
        return ctx.xp.clip(x, min, max).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        if ctx.min is not None:
            g = g * (x >= ctx.min)
        if ctx.max is not None:
            g = g * (x <= ctx.max)
        return g


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input if min is None else maximum(input, min)
        return out if max is None else minimum(out, max)
    return Clamp.apply(input, min=min, max=max)


class Maximum(Function):
    """max(x, y); at ties the gradient is split evenly, as PyTorch does."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.maximum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        share = (x > y) + 0.5 * (x == y)
        return g * share, g * (1 - share)


class Minimum(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.minimum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        share = (x < y) + 0.5 * (x == y)
        return g * share, g * (1 - share)


def maximum(input, other):
    return _binary(Maximum, "maximum", input, other)


def minimum(input, other):
    return _binary(Minimum, "minimum", input, other)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, x, y)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        zero = ctx.xp.zeros((), dtype=g.dtype)
        return (None,
                ctx.xp.where(cond, g, zero) if ctx.needs_input_grad[1] else None,
                ctx.xp.where(cond, zero, g) if ctx.needs_input_grad[2] else None)


def where(condition, input, other):
    if not isinstance(condition, Tensor) or condition.dtype != backend.bool_:
        raise TypeError(f"where: condition must be a bool Tensor, got "
                        f"{getattr(condition, 'dtype', type(condition).__name__)}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two Python scalars: a 0-d tensor of PyTorch's dtype for the pair, on cond's device
        like = Tensor._make(backend.array_module(condition.device).zeros(
            (), backend.get_default_dtype() if isinstance(input, float) or isinstance(other, float)
            else backend.int64), condition.device)
    else:
        like = input if isinstance(input, Tensor) else other
    input, other = binary_operands(as_tensor_like(input, like), as_tensor_like(other, like))
    try:
        np.broadcast_shapes(condition.shape, input.shape, other.shape)
    except ValueError:
        raise ValueError(f"where: shapes {tuple(condition.shape)}, {tuple(input.shape)} and "
                         f"{tuple(other.shape)} are not broadcastable") from None
    return Where.apply(condition, input, other)


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, x, mask, *, value):
        ctx.save_for_backward(mask)
        return ctx.xp.where(mask, ctx.xp.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        return ctx.xp.where(mask, ctx.xp.zeros((), dtype=g.dtype), g), None


def masked_fill(input, mask, value):
    if not isinstance(mask, Tensor) or mask.dtype != backend.bool_:
        raise TypeError(f"masked_fill: mask must be a bool Tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    try:  # out of place, the input broadcasts against the mask too (as in PyTorch)
        shape = np.broadcast_shapes(input.shape, mask.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast "
                         f"with the input's shape {tuple(input.shape)}") from None
    if shape != tuple(input.shape):
        input = input.expand(shape)
    if isinstance(value, Tensor):
        value = value.item()
    return MaskedFill.apply(input, mask, value=value)


class Sign(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.xp.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g * 0


def sign(input):
    return Sign.apply(input)


# ----------------------------------------------------------------------------- casts, moves
class ToDtype(Function):
    @staticmethod
    def forward(ctx, x, *, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine casts it back to the input's dtype


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, *, device):
        ctx.source = backend.device_of_array(x)
        return backend.move_array(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.move_array(g, ctx.source)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def to_dtype(input, dtype):
    if input.dtype == dtype:
        return input
    if input.requires_grad and np.dtype(dtype).kind != "f":
        return Tensor._make(input._data.astype(dtype), input.device)
    return ToDtype.apply(input, dtype=dtype)


def to_device(input, device):
    if input.device == device:
        return input
    # Function.apply labels an output with its inputs' device; a move is the one op whose
    # output (and whose gradient, the one its node receives) lives elsewhere.
    out = ToDevice.apply(input, device=device)
    out.device = device
    if out.grad_fn is not None:
        out.grad_fn.device = device
    return out


def clone(input):
    return Clone.apply(input)


# ----------------------------------------------------------------------------- no-grad ops
def _no_grad_op(ufunc_name, integral=False):
    """A comparison / logical / rounding / bitwise op: computed on raw arrays, never
    recorded. An `integral` op (bitwise) refuses floating-point tensors, as PyTorch does."""

    def op(input, other=None):
        if other is None:
            operands = (input,)
        else:
            operands = binary_operands(input, other)
            if operands[0].shape != operands[1].shape:
                check_broadcast(ufunc_name, *operands)
        for t in operands:
            if not isinstance(t, Tensor):
                raise TypeError(f"{ufunc_name}: expected Tensor input, got {type(t).__name__}")
            if integral and t.dtype.kind == "f":
                raise TypeError(f"{ufunc_name}: expected integer or bool tensors, got {t.dtype}")
        xp = backend.array_module(operands[0].device)
        fn = getattr(xp, ufunc_name)
        return Tensor._make(xp.asarray(fn(*(t._data for t in operands))), operands[0].device)

    op.__name__ = ufunc_name
    op.__doc__ = f"Elementwise {ufunc_name} (no gradient)."
    return op


eq = _no_grad_op("equal")
ne = _no_grad_op("not_equal")
lt = _no_grad_op("less")
le = _no_grad_op("less_equal")
gt = _no_grad_op("greater")
ge = _no_grad_op("greater_equal")
logical_and = _no_grad_op("logical_and")
logical_or = _no_grad_op("logical_or")
logical_xor = _no_grad_op("logical_xor")
logical_not = _no_grad_op("logical_not")
isnan = _no_grad_op("isnan")
isinf = _no_grad_op("isinf")
isfinite = _no_grad_op("isfinite")
isposinf = _no_grad_op("isposinf")
isneginf = _no_grad_op("isneginf")
floor = _no_grad_op("floor")
ceil = _no_grad_op("ceil")
round = _no_grad_op("round")
trunc = _no_grad_op("trunc")
_floor_divide = _no_grad_op("floor_divide")


def floor_divide(input, other):
    return _floor_divide(*check_integer_divisor("floor_divide", input, other))


bitwise_and = _no_grad_op("bitwise_and", integral=True)
bitwise_or = _no_grad_op("bitwise_or", integral=True)
bitwise_xor = _no_grad_op("bitwise_xor", integral=True)
bitwise_not = _no_grad_op("bitwise_not", integral=True)
bitwise_left_shift = _no_grad_op("left_shift", integral=True)
bitwise_right_shift = _no_grad_op("right_shift", integral=True)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol |other|, elementwise (no gradient)."""
    a, b = binary_operands(input, other)
    check_broadcast("isclose", a, b)
    xp = backend.array_module(a.device)
    return Tensor._make(xp.asarray(xp.isclose(a._data, b._data, rtol=rtol, atol=atol,
                                              equal_nan=equal_nan)), a.device)


def equal(input, other) -> bool:
    return input.shape == other.shape and bool((input._data == other._data).all())


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    xp = backend.array_module(input.device)
    return bool(xp.allclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))
