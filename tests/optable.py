"""The op table: one entry per op, driving the forward, backward, finite-difference and error
tests in test_ops.py.

An entry names the op, a minifm callable and a torch callable with the same signature, a
sample generator, the dtypes to test, whether the op is differentiable, and inputs that must
fail. Samples are written with NumPy arrays; the tests turn every array (also inside lists and
index tuples) into a minifm Tensor or a torch tensor, floating ones requiring grad.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as TF

import minifm
import minifm.nn.functional as F

F32, F64, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
FLOATS = (F32, F64)


class Sample:
    """Positional and keyword arguments of one call. fd=False skips the finite-difference
    check (a kink or a tie sits at the sample)."""

    def __init__(self, *args, fd=True, **kwargs):
        self.args, self.kwargs, self.fd = args, kwargs, fd

    def __repr__(self):
        def short(a):
            return f"array{a.shape}" if isinstance(a, np.ndarray) else repr(a)
        return f"Sample({', '.join(map(short, self.args))}, {self.kwargs})"


@dataclass
class ErrorCase:
    """op(*args, **kwargs) must raise `exc` with a message matching the regex `match`."""
    args: tuple
    kwargs: dict
    exc: type
    match: str


class Make:
    """Random sample arrays of the dtype under test (seeded per test)."""

    def __init__(self, dtype, seed=0):
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape, low=-2.0, high=2.0, away=0.0):
        """Values in [low, high), pushed at least `away` from 0 (to stay off kinks)."""
        if self.dtype.kind in "iu":
            return self.rng.integers(int(low), int(high) + 1, shape).astype(self.dtype)
        x = self.rng.uniform(low, high, shape)
        if away:
            x = np.where(np.abs(x) < away, np.copysign(away, x) + x, x)
        return x.astype(self.dtype)

    def distinct(self, *shape):
        """A permutation of evenly spaced values: no ties anywhere."""
        n = int(np.prod(shape))
        if self.dtype.kind in "iu":
            return (self.rng.permutation(n) - n // 2).reshape(shape).astype(self.dtype)
        return (self.rng.permutation(n) * (4.0 / max(n, 1)) - 2.0).reshape(shape).astype(self.dtype)

    def index(self, *shape, high):
        return self.rng.integers(0, high, shape).astype(np.int64)

    def mask(self, *shape):
        return self.rng.random(shape) < 0.5


@dataclass
class OpInfo:
    name: str
    op: Callable
    ref: Callable
    samples: Callable              # samples(make) -> iterable of Sample
    dtypes: tuple = FLOATS
    differentiable: bool = True
    errors: Callable | None = None  # errors(make) -> iterable of ErrorCase
    second_order: bool = True      # False where PyTorch cannot differentiate its own backward


OPS: list[OpInfo] = []


def add_op(name, op, ref=None, samples=None, **kw):
    OPS.append(OpInfo(name, op, op if ref is None else ref, samples, **kw))


# ----------------------------------------------------------------------------- helpers
def shapes_msg(*shapes):
    """A regex matching the shapes in an error message, in order."""
    return ".*".join(r"\(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + r"\)"
                     for s in shapes)


def binary_samples(low=-2.0, high=2.0, away=0.0, scalar=2.5, right_low=None, reflected=True,
                   scalars=True):
    """Samples of a broadcasting binary op; reflected=False leaves out the scalar-first form
    (torch's functions, unlike its operators, mostly refuse it), scalars=False every Python
    scalar operand (atan2, hypot... take tensors only in torch)."""
    right_low = low if right_low is None else right_low

    def samples(make):
        m = lambda *s, lo=low: make(*s, low=lo, high=high, away=away)  # noqa: E731
        yield Sample(m(3, 4), m(3, 4, lo=right_low))
        yield Sample(m(3, 1, 4), m(5, 4, lo=right_low))                   # broadcast both ways
        yield Sample(m(4, 3).T, m(3, 4, lo=right_low))                    # non-contiguous
        yield Sample(m(2, 3), np.array(m(1, lo=right_low)[0]))            # 0-d tensor operand
        if not scalars:
            return
        if make.dtype.kind == "f":
            yield Sample(m(2, 3), scalar)                                  # Python scalar right
            if reflected:
                yield Sample(scalar, m(2, 3, lo=right_low))                # reflected form
        yield Sample(m(2, 3), 2)                                           # Python int
    return samples


def binary_errors(name):
    def errors(make):
        yield ErrorCase((make(3, 4), make(5,)), {}, ValueError,
                        f"{name}.*{shapes_msg((3, 4), (5,))}.*broadcast")
    return errors


ARITH = [("add", operator.add, {}), ("sub", operator.sub, {}), ("mul", operator.mul, {}),
         ("truediv", operator.truediv, dict(away=0.5)),
         ("pow", operator.pow, dict(low=0.5, right_low=-1.0))]
for _name, _fn, _kw in ARITH:
    _err = {"truediv": "div"}.get(_name, _name)
    add_op(f"__{_name}__", _fn, samples=binary_samples(**_kw),
           dtypes=FLOATS + ((I64,) if _name in ("add", "sub", "mul") else ()),
           errors=binary_errors(_err))

add_op("add_alpha", lambda a, b: minifm.add(a, b, alpha=2), lambda a, b: torch.add(a, b, alpha=2),
       samples=lambda make: [Sample(make(3, 4), make(4))])
add_op("sub_alpha", lambda a, b: minifm.sub(a, b, alpha=0.5),
       lambda a, b: torch.sub(a, b, alpha=0.5), samples=lambda make: [Sample(make(3, 4), make(4))])
add_op("div_int_tensors", operator.truediv, dtypes=(I64,), differentiable=False,
       samples=lambda make: [Sample(make(3, 4, low=-5, high=5), make(3, 4, low=1, high=5))])
add_op("pow_scalar_exponents", operator.pow,
       samples=lambda make: [Sample(make(3, 4, low=0.5), e) for e in (2, 3, 0.5, -1, -1.5)]
       + [Sample(make(3, 4), 2), Sample(2.0, make(3, 4)),
          Sample(np.array([0.0, 1.5, -2.0], make.dtype), 0)])          # x ** 0: gradient 0


def unary(name, fn, ref, low=-2.0, high=2.0, away=0.0, op_name=None, **kw):
    """An elementwise op of one tensor; a list in its place is refused with the op's name."""
    add_op(name, fn, ref, samples=lambda make: [
        Sample(make(3, 4, low=low, high=high, away=away)),
        Sample(make(2, 3, 2, low=low, high=high, away=away).transpose(2, 0, 1)),
        Sample(np.array(make(1, low=low, high=high, away=away)[0]))],
        errors=lambda make: [ErrorCase(([1.0, 2.0],), {}, TypeError,
                                       f"(?i){op_name or name}.*expected Tensor.*list")], **kw)


unary("neg", minifm.neg, torch.neg, dtypes=FLOATS + (I64,))
unary("abs", minifm.abs, torch.abs, away=0.1, dtypes=FLOATS + (I64,))
unary("exp", minifm.exp, torch.exp)
unary("log", minifm.log, torch.log, low=0.1)
unary("log1p", minifm.log1p, torch.log1p, low=-0.5)
unary("sqrt", minifm.sqrt, torch.sqrt, low=0.1)
unary("rsqrt", minifm.rsqrt, torch.rsqrt, low=0.1)
unary("sin", minifm.sin, torch.sin)
unary("cos", minifm.cos, torch.cos)
unary("tanh", minifm.tanh, torch.tanh)
unary("sigmoid", minifm.sigmoid, torch.sigmoid, low=-10, high=10)
unary("relu", F.relu, TF.relu, away=0.1)
unary("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), away=0.1,
      op_name="leakyrelu")
unary("gelu", F.gelu, TF.gelu, low=-5, high=5)
unary("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
      lambda x: TF.gelu(x, approximate="tanh"), low=-5, high=5, op_name="gelu")
unary("silu", F.silu, TF.silu, low=-5, high=5)
unary("softplus", F.softplus, TF.softplus, low=-5, high=5)
unary("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
      lambda x: TF.softplus(x, beta=2.0, threshold=3.0), low=-5, high=5, away=0.1,
      op_name="softplus")
unary("square", minifm.square, torch.square)
unary("reciprocal", minifm.reciprocal, torch.reciprocal, away=0.3)
unary("float_of_int", minifm.exp, torch.exp, low=-3, high=3, dtypes=(I64,), differentiable=False,
      op_name="exp")


def _errors_type(name, fn_args):
    def errors(make):
        yield ErrorCase(fn_args(make), {}, TypeError, name)
    return errors


add_op("clamp", lambda x, lo, hi: minifm.clamp(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi),
       samples=lambda make: [
           Sample((np.linspace(-1.9, 1.9, 12).reshape(3, 4) + 0.07).astype(make.dtype), -1.0, 1.0),
           Sample(np.linspace(-2, 2, 12).reshape(3, 4).astype(make.dtype) + 0.13, -0.5, None),
           Sample(np.linspace(-2, 2, 12).reshape(3, 4).astype(make.dtype) + 0.13, None, 0.5),
           Sample(make(3, 4), make(4, low=-2, high=-0.5), make(3, 1, low=0.5, high=2))],
       errors=lambda make: [ErrorCase((make(3),  None, None), {}, ValueError, "clamp.*min.*max")])
add_op("clamp_int", lambda x: minifm.clamp(x, -1, 2), lambda x: torch.clamp(x, -1, 2),
       samples=lambda make: [Sample(make(3, 4, low=-4, high=4))], dtypes=(I64,),
       differentiable=False)


def _minmax_samples(make):
    yield Sample(make(3, 4), make(3, 4))
    yield Sample(make(3, 1), make(1, 4))
    a = make(2, 3)
    yield Sample(a, a.copy(), fd=False)      # ties: the gradient is split evenly


add_op("maximum", minifm.maximum, torch.maximum, samples=_minmax_samples,
       errors=binary_errors("maximum"))
add_op("minimum", minifm.minimum, torch.minimum, samples=_minmax_samples,
       errors=binary_errors("minimum"))
add_op("where", minifm.where, torch.where,
       samples=lambda make: [Sample(make.mask(3, 4), make(3, 4), make(3, 4)),
                             Sample(make.mask(3, 1), make(1, 4), make(3, 4)),
                             Sample(make.mask(3, 4), make(3, 4), 0.5)],
       errors=lambda make: [
           ErrorCase((make(3, 4), make(3, 4), make(3, 4)), {}, TypeError, "where.*bool"),
           ErrorCase((make.mask(3, 4), make(3, 4), make(5, 4)), {}, ValueError,
                     "where.*" + shapes_msg((3, 4), (3, 4), (5, 4)))])
add_op("masked_fill", lambda x, m, v: x.masked_fill(m, v), lambda x, m, v: x.masked_fill(m, v),
       samples=lambda make: [Sample(make(3, 4), make.mask(3, 4), -1.5),
                             Sample(make(3, 4), make.mask(4), float("-inf")),
                             Sample(make(2, 3, 4), make.mask(3, 1), 0.0)],
       errors=lambda make: [
           ErrorCase((make(3, 4), make.mask(5, 4), 0.0), {}, ValueError,
                     "masked_fill.*" + shapes_msg((5, 4), (3, 4))),
           ErrorCase((make(3, 4), make(3, 4), 0.0), {}, TypeError, "masked_fill.*bool")])


# ----------------------------------------------------------------------------- matmul
def _matmul_samples(make):
    for a, b in [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,)), ((3, 4), (2, 4, 2))]:
        yield Sample(make(*a), make(*b))
    yield Sample(make(4, 3).T, make(5, 4).T)  # non-contiguous


def _matmul_errors(make):
    yield ErrorCase((make(3, 4), make(5, 6)), {}, ValueError, "matmul.*" + shapes_msg((3, 4), (5, 6)))
    yield ErrorCase((make(3, 4), np.array(make(1)[0])), {}, ValueError, "matmul.*at least 1")
    yield ErrorCase((make(2, 3, 4), make(5, 4, 2)), {}, ValueError, "matmul.*" + shapes_msg((2, 3, 4), (5, 4, 2)))


add_op("matmul", minifm.matmul, torch.matmul, samples=_matmul_samples, errors=_matmul_errors)


def _einsum_samples(make):
    yield Sample("ij,jk->ik", make(3, 4), make(4, 5))
    yield Sample("ij,jk", make(4, 3).T, make(4, 5))                       # implicit, non-contiguous
    yield Sample("bij,bjk->bik", make(2, 3, 4), make(2, 4, 2))
    yield Sample("...ij,jk->...ik", make(2, 3, 4), make(4, 5))            # ellipsis
    yield Sample("ii->", make(4, 4))                                      # trace
    yield Sample("ii->i", make(4, 4))                                     # diagonal
    yield Sample("i,j->ij", make(3), make(4))                             # outer
    yield Sample("ij->", make(3, 4))
    yield Sample("ij,ij,ij->j", make(3, 4), make(3, 4), make(3, 4))
    yield Sample("iij,jk->ik", make(3, 3, 2), make(2, 4))
    yield Sample("bhqd,bhkd->bhqk", [make(2, 2, 3, 4), make(2, 2, 5, 4)])  # a list of operands
    yield Sample("i,i->", make(0), make(0))                               # empty
    yield Sample("ij,ij->ij", make(3, 1), make(3, 4))                     # size-1 broadcast
    yield Sample("...ij,...jk->...ik", make(2, 1, 3, 4), make(5, 4, 2))


def _einsum_errors(make):
    yield ErrorCase(("ij,jk->ik", make(3, 4), make(5, 6)), {}, ValueError, "einsum.*'j'.*size 4.*5")
    yield ErrorCase(("ij,jk->ik", make(3, 4)), {}, ValueError, "einsum.*2 operands, got 1")
    yield ErrorCase(("ijk->i", make(3, 4)), {}, ValueError, "einsum.*'ijk'.*" + shapes_msg((3, 4)))
    yield ErrorCase(("ij->ik", make(3, 4)), {}, ValueError, "einsum.*output subscripts")
    yield ErrorCase(("ii->i", make(1, 3)), {}, ValueError, "einsum.*'ii'.*different sizes")


add_op("einsum", minifm.einsum, torch.einsum, samples=_einsum_samples, errors=_einsum_errors)
add_op("__matmul__", operator.matmul, samples=_matmul_samples, errors=_matmul_errors)


# ----------------------------------------------------------------------------- reductions
def _reduce_samples(dims=(None, 0, -1, (0, 2), (2, 0)), keepdim=(False, True)):
    def samples(make):
        x = make.distinct(2, 3, 4)
        yield Sample(x)
        for dim in dims[1:]:
            for kd in keepdim:
                yield Sample(x, dim, keepdim=kd)
        yield Sample(make.distinct(3, 4).T, 1)          # non-contiguous
        yield Sample(np.array(make(1)[0]))               # 0-d
    return samples


def _dim_error(name, fn_kwargs=None):
    def errors(make):
        yield ErrorCase((make(2, 3), 2), dict(fn_kwargs or {}), IndexError,
                        f"{name}.*dimension 2.*out of range.*2 dimensions")
    return errors


add_op("sum", lambda x, *a, **k: x.sum(*a, **k), samples=_reduce_samples(),
       dtypes=FLOATS + (I64,), errors=_dim_error("sum"))
add_op("mean", lambda x, *a, **k: x.mean(*a, **k), samples=_reduce_samples(), errors=_dim_error("mean"))
_VAR_KW = ({}, {"correction": 0}, {"correction": 2}, {"unbiased": False})


def _var_samples(make):
    x = make.distinct(2, 3, 4)
    for dim in (None, 1, (0, 2)):
        for kw in _VAR_KW:
            if dim is None:
                yield Sample(x, **kw)
            else:
                yield Sample(x, dim, keepdim=dim == 1, **kw)
    yield Sample(make.distinct(3, 4).T, 0)


add_op("var", lambda x, *a, **k: x.var(*a, **k), samples=_var_samples, errors=_dim_error("var"))
add_op("std", lambda x, *a, **k: x.std(*a, **k), samples=_var_samples, errors=_dim_error("std"))


def _extreme_samples(make):
    x = make.distinct(2, 3, 4)
    yield Sample(x)
    for dim in (0, 1, -1):
        yield Sample(x, dim)
        yield Sample(x, dim, keepdim=True)
    yield Sample(make.distinct(3, 4).T, 1)


def _extreme_errors(name):
    def errors(make):
        yield ErrorCase((make(2, 3), 3), {}, IndexError, f"{name}.*dimension 3.*out of range")
        yield ErrorCase((make(0, 3),), {}, RuntimeError, f"{name}.*non-empty")
    return errors


add_op("max", minifm.max, torch.max, samples=_extreme_samples, dtypes=FLOATS + (I64,),
       errors=_extreme_errors("max"))
add_op("min", minifm.min, torch.min, samples=_extreme_samples, dtypes=FLOATS + (I64,),
       errors=_extreme_errors("min"))
add_op("max_binary", minifm.max, torch.max, samples=lambda make: [Sample(make(3, 4), make(4))])


def _amax_samples(make):
    x = make.distinct(2, 3, 4)
    yield Sample(x)
    yield Sample(x, 1)
    yield Sample(x, (0, 2), keepdim=True)
    yield Sample(x, -1, keepdim=False)
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=make.dtype)
    yield Sample(ties, 1, fd=False)   # ties share the gradient evenly


add_op("amax", minifm.amax, torch.amax, samples=_amax_samples, errors=_dim_error("amax"))
add_op("amin", minifm.amin, torch.amin, samples=lambda make: [
    Sample(-s.args[0], *s.args[1:], fd=s.fd, **s.kwargs) for s in _amax_samples(make)],
    errors=_dim_error("amin"))
add_op("logsumexp", minifm.logsumexp, torch.logsumexp, samples=lambda make: [
    Sample(make(2, 3, 4), 1), Sample(make(2, 3, 4), (0, 2), keepdim=True),
    Sample(make(2, 3, 4) * 1e4, -1), Sample(make(4, 3).T, 0)],
    errors=_dim_error("logsumexp"))


def _prod_samples(make):
    yield Sample(make(2, 3, low=0.5))
    yield Sample(make(2, 3, 4), 1)
    yield Sample(make(2, 3, 4), -1, keepdim=True)
    with_zero = make(3, 4)
    with_zero[1, 2] = 0.0
    yield Sample(with_zero, 1)
    yield Sample(with_zero)


add_op("prod", minifm.prod, torch.prod, samples=_prod_samples, errors=_dim_error("prod"))


def _softmax_samples(make):
    for dim in (0, 1, -1):
        yield Sample(make(2, 3, 4), dim)
    yield Sample(make(3, 4) * 1e4, -1)
    yield Sample(make(4, 3).T, 1)
    yield Sample(np.array([[0.0, float("-inf"), 1.0]], dtype=make.dtype), 1)
    yield Sample(np.array(make(1)[0]), 0)                  # 0-d: one row of one element


for _name, _ours, _theirs in [("softmax", F.softmax, TF.softmax),
                              ("log_softmax", F.log_softmax, TF.log_softmax)]:
    add_op(_name, _ours, _theirs, samples=_softmax_samples, errors=_dim_error(_name))
add_op("cumsum", minifm.cumsum, torch.cumsum, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), 1), Sample(make(2, 3, 4), 0), Sample(make(4, 3).T, -1)],
       errors=_dim_error("cumsum"))


# ----------------------------------------------------------------------------- shape ops
def method(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def shape_op(name, samples, errors=None, fn=None, **kw):
    add_op(name, fn or method(name), samples=samples, errors=errors,
           dtypes=kw.pop("dtypes", FLOATS + (I64,)), **kw)


shape_op("reshape", lambda make: [Sample(make(2, 3, 4), 6, 4), Sample(make(2, 3, 4), (4, -1)),
                                  Sample(make(4, 3).T, 12), Sample(make(2, 3), 2, 3)],
         lambda make: [ErrorCase((make(2, 3), 4, 2), {}, RuntimeError,
                                 r"reshape.*\[4, 2\].*" + shapes_msg((2, 3)))])
shape_op("view", lambda make: [Sample(make(2, 3, 4), -1), Sample(make(6,), 1, 2, 3)])
shape_op("permute", lambda make: [Sample(make(2, 3, 4), 2, 0, 1), Sample(make(2, 3, 4), (1, 0, 2)),
                                  Sample(make(2, 3, 4), -1, 0, 1)],
         lambda make: [ErrorCase((make(2, 3), 0, 0), {}, RuntimeError, "permute.*" + shapes_msg((2, 3)))])
shape_op("transpose", lambda make: [Sample(make(2, 3, 4), 0, 2), Sample(make(2, 3), -1, -2)],
         lambda make: [ErrorCase((make(2, 3), 0, 2), {}, IndexError, "transpose.*out of range")])
shape_op("T", lambda make: [Sample(make(2, 3)), Sample(make(4, 3).T)], fn=lambda x: x.T)
shape_op("unsqueeze", lambda make: [Sample(make(2, 3), d) for d in (0, 1, 2, -1, -3)],
         lambda make: [ErrorCase((make(2, 3), 3), {}, IndexError, "unsqueeze.*out of range")])
shape_op("squeeze", lambda make: [Sample(make(2, 1, 3, 1)), Sample(make(2, 1, 3, 1), 1),
                                  Sample(make(2, 1, 3, 1), 0), Sample(make(1, 1), -1)])
shape_op("expand", lambda make: [Sample(make(3, 1), 3, 4), Sample(make(3, 1), 2, -1, 5),
                                 Sample(make(1,), (2, 3))],
         lambda make: [ErrorCase((make(3, 2), 3, 4), {}, ValueError, "expand.*" + shapes_msg((3, 2)))])
shape_op("flatten", lambda make: [Sample(make(2, 3, 4)), Sample(make(2, 3, 4), 1),
                                  Sample(make(2, 3, 4, 5), 1, 2), Sample(make(4, 3).T)])
shape_op("contiguous", lambda make: [Sample(make(4, 3).T), Sample(make(3, 4))])


def _getitem_samples(make):
    x = make(4, 5, 3)
    keys = [1, -1, slice(1, 3), (slice(None), 2), (Ellipsis, 1), (None, 1, slice(None, None, 2)),
            (slice(None), None, -2, slice(0, 2)),
            np.array([0, 2, 2, 3]),                               # repeats: gradients add up
            (np.array([1, 0, 1]), slice(None), np.array([2, 0, 1])),
            (slice(1, None), np.array([[0, 1], [4, 4]])),
            make.mask(4, 5), (make.mask(4), 0), (Ellipsis, None)]
    for key in keys:
        yield Sample(x, key)
    yield Sample(make(5, 4).T, (slice(None), np.array([1, 1, 3])))


def _getitem_errors(make):
    yield ErrorCase((make(2, 3), (0, 5)), {}, IndexError, "getitem.*" + shapes_msg((2, 3)))
    yield ErrorCase((make(2, 3), (0, 0, 0)), {}, IndexError, "getitem.*" + shapes_msg((2, 3)))
    yield ErrorCase((make(2, 3), make(2)), {}, IndexError, "indices must be.*int.*bool.*float")


add_op("getitem", operator.getitem, samples=_getitem_samples, errors=_getitem_errors,
       dtypes=FLOATS + (I64,))


def setitem(x, value, key):
    """x with x[key] = value, computed on a clone (PyTorch forbids writing into a leaf)."""
    y = x.clone()
    y[key] = value
    return y


def _setitem_samples(make):
    yield Sample(make(4, 5), make(5), 1)
    yield Sample(make(4, 5), make(2, 1), (slice(1, 3), slice(None, 1)))
    yield Sample(make(4, 5), 0.5, (Ellipsis, 2))
    yield Sample(make(4, 5), make(3, 5), np.array([0, 2, 3]))
    yield Sample(make(4, 5), make(1), make.mask(4, 5))


def _setitem_errors(make):
    yield ErrorCase((make(4, 5), make(3), 1), {}, IndexError, "setitem.*" + shapes_msg((3,), (4, 5)))


add_op("setitem", setitem, samples=_setitem_samples, errors=_setitem_errors)


def _index_errors(name, extra):
    def errors(make):
        yield ErrorCase((make(3, 4), 1, make.index(3, 2, high=9)) + extra(make), {}, IndexError,
                        f"{name}.*out of range.*size 4")
        yield ErrorCase((make(3, 4), 1, make(3, 2)) + extra(make), {}, TypeError,
                        f"{name}.*index.*integer")
    return errors


add_op("gather", minifm.gather, torch.gather, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), 1, make.index(3, 6, high=4)),
                             Sample(make(3, 4), 0, make.index(2, 4, high=3)),
                             Sample(make(2, 3, 4), -1, make.index(2, 3, 2, high=4))],
       errors=_index_errors("gather", lambda make: ()))
add_op("scatter_add", minifm.scatter_add, torch.scatter_add,
       samples=lambda make: [Sample(make(3, 4), 1, make.index(3, 6, high=4), make(3, 6)),
                             Sample(make(3, 4), 0, make.index(2, 4, high=3), make(2, 4))],
       errors=_index_errors("scatter_add", lambda make: (make(3, 2),)))
add_op("index_select", minifm.index_select, torch.index_select, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), 1, np.array([0, 3, 3, 1])),
                             Sample(make(3, 4), 0, np.array([2])),
                             Sample(make(3, 4), -1, np.array(1))],
       errors=lambda make: [
           ErrorCase((make(3, 4), 1, np.array([0, 5])), {}, IndexError, "index_select.*out of range"),
           ErrorCase((make(3, 4), 1, np.array([[0, 1]])), {}, TypeError, "index_select.*1-D")])



def _distinct_index(make, rows, cols, high):
    """An index of shape (rows, cols) whose rows pick distinct positions in [0, high): a
    scatter with no position written twice (where PyTorch leaves the winner unspecified)."""
    return np.stack([make.rng.permutation(high)[:cols] for _ in range(rows)]).astype(np.int64)


def _scatter_samples(make):
    yield Sample(make(3, 4), 1, _distinct_index(make, 3, 2, 4), make(3, 2))
    yield Sample(make(3, 4), 0, _distinct_index(make, 4, 3, 3).T.copy(), make(3, 4))
    yield Sample(make(3, 4), 1, _distinct_index(make, 2, 3, 4), 1.5)          # value form
    yield Sample(make(3, 4), -1, _distinct_index(make, 3, 2, 4), value=-2.0)


add_op("scatter", minifm.scatter, torch.scatter, samples=_scatter_samples,
       dtypes=FLOATS + (I64,), errors=_index_errors("scatter", lambda make: (make(3, 2),)))
add_op("scatter_reduce", minifm.scatter, torch.scatter, differentiable=False,  # nor in torch
       samples=lambda make: [Sample(make(3, 4), 1, make.index(3, 6, high=4), make(3, 6), reduce="add"),
                             Sample(make(3, 4), 0, make.index(4, 4, high=3), 2.0, reduce="add"),
                             Sample(make(3, 4), 1, make.index(3, 6, high=4), make(3, 6),
                                    reduce="multiply"),
                             Sample(make(3, 4), 0, make.index(4, 4, high=3), -1.5,
                                    reduce="multiply")],
       dtypes=FLOATS + (I64,),
       errors=lambda make: [ErrorCase((make(3, 4), 1, make.index(3, 2, high=4), make(3, 2)),
                                      {"reduce": "max"}, ValueError, "scatter.*reduce")])


def scatter_(x, *args, **kwargs):
    """Tensor.scatter_ on a clone (PyTorch forbids writing into a leaf)."""
    return x.clone().scatter_(*args, **kwargs)


add_op("scatter_", scatter_, samples=_scatter_samples)


def _index_dim_errors(name, extra):
    def errors(make):
        yield ErrorCase((make(3, 4), 1, np.array([0, 4])) + extra(make, 2), {}, IndexError,
                        f"{name}.*out of range.*size 4")
        yield ErrorCase((make(3, 4), 1, np.array([[0, 1]])) + extra(make, 2), {}, TypeError,
                        f"{name}.*1-D")
    return errors


def _index_source_samples(make):
    yield Sample(make(3, 4), 1, np.array([0, 3, 1]), make(3, 3))
    yield Sample(make(3, 4), 0, np.array([2, 0]), make(2, 4))
    yield Sample(make(3, 4).T, -1, np.array([1]), make(4, 1))                # non-contiguous
    yield Sample(make(5), 0, np.array(3), make(1))


def _index_add_samples(make):
    yield from _index_source_samples(make)
    yield Sample(make(3, 4), 1, np.array([0, 3, 3, 0]), make(3, 4), alpha=2)  # repeats add up


def _source_errors(name):
    def errors(make):
        yield from _index_dim_errors(name, lambda make, n: (make(3, n),))(make)
        yield ErrorCase((make(3, 4), 1, np.array([0, 1]), make(3, 3)), {}, ValueError,
                        f"{name}.*source of shape " + shapes_msg((3, 3), (3, 2)))
    return errors


def index_add_(x, *args, **kwargs):
    return x.clone().index_add_(*args, **kwargs)


def index_copy_(x, *args, **kwargs):
    return x.clone().index_copy_(*args, **kwargs)


def index_fill_(x, *args, **kwargs):
    return x.clone().index_fill_(*args, **kwargs)


add_op("index_add", minifm.index_add, torch.index_add, samples=_index_add_samples,
       dtypes=FLOATS + (I64,), errors=_source_errors("index_add"))
add_op("index_add_", index_add_, samples=_index_add_samples)
add_op("index_copy", minifm.index_copy, torch.index_copy, samples=_index_source_samples,
       dtypes=FLOATS + (I64,), errors=_source_errors("index_copy"))
add_op("index_copy_", index_copy_, samples=_index_source_samples)


def _index_fill_samples(make):
    yield Sample(make(3, 4), 1, np.array([0, 3, 3]), 1.5)
    yield Sample(make(3, 4).T, 0, np.array([2]), -1)
    yield Sample(make(5), 0, np.array(3), 0.25)


add_op("index_fill", minifm.index_fill, torch.index_fill, samples=_index_fill_samples,
       dtypes=FLOATS + (I64,), errors=_index_dim_errors("index_fill", lambda make, n: (1.0,)))
add_op("index_fill_", index_fill_, samples=_index_fill_samples)
add_op("take", minifm.take, torch.take, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), make.index(2, 5, high=12)),
                             Sample(make(3, 4).T, np.array([-1, 0, 0, 5])),
                             Sample(make(3), np.array(2))],
       errors=lambda make: [ErrorCase((make(3, 4), np.array([12])), {}, IndexError,
                                      "take.*out of range.*12 elements"),
                            ErrorCase((make(3, 4), make(2)), {}, TypeError, "take.*integer")])
add_op("take_along_dim", minifm.take_along_dim, torch.take_along_dim, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), make.index(3, 6, high=4), 1),
                             Sample(make(3, 4), make.index(1, 4, high=3), dim=0),    # broadcast
                             Sample(make(1, 4), make.index(5, 2, high=4), -1),
                             Sample(make(3, 4), make.index(5, high=12))],            # flattened
       errors=lambda make: [ErrorCase((make(3, 4), make.index(4, high=4), 1), {}, ValueError,
                                      "take_along_dim.*dimensions")])
add_op("masked_select", minifm.masked_select, torch.masked_select, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4), make.mask(3, 4)),
                             Sample(make(3, 4).T, make.mask(4, 1)),                  # broadcast
                             Sample(make(4), make.mask(3, 4)),
                             Sample(make(2, 3), np.zeros((2, 3), bool))],           # empty
       errors=lambda make: [ErrorCase((make(3, 4), make.index(3, 4, high=2)), {}, TypeError,
                                      "masked_select.*bool")])


def _nonzero_samples(make):
    x = make(3, 4) * make.mask(3, 4)
    yield Sample(x)
    yield Sample(x.T)
    yield Sample(x, as_tuple=True)
    yield Sample(np.zeros((2, 0), x.dtype), as_tuple=True)
    yield Sample(np.array(x[0, 0] + 1))
    yield Sample(np.array(x[0, 0] + 1), as_tuple=True)


add_op("nonzero", minifm.nonzero, torch.nonzero, samples=_nonzero_samples, differentiable=False,
       dtypes=FLOATS + (I64,))
add_op("where_cond", minifm.where, torch.where, differentiable=False, dtypes=(I64,),
       samples=lambda make: [Sample(make.mask(3, 4)), Sample(make.mask(2, 3, 2))])


def _searchsorted_samples(make):
    seq = np.sort(make(7))
    yield Sample(seq, make(3, 4))
    yield Sample(seq, np.concatenate([seq[:3], make(2)]), right=True)         # ties
    yield Sample(seq, np.concatenate([seq[:3], make(2)]), side="right", out_int32=True)
    yield Sample(np.sort(make(3, 5), axis=-1), make(3, 2))                     # row by row
    yield Sample(seq, 0.5)                                                     # a scalar value
    unsorted = make.distinct(6)
    yield Sample(unsorted, make(4), sorter=np.argsort(unsorted))


add_op("searchsorted", minifm.searchsorted, torch.searchsorted, samples=_searchsorted_samples,
       differentiable=False, dtypes=FLOATS + (I64,),
       errors=lambda make: [ErrorCase((make(2, 5), make(3, 2)), {}, ValueError,
                                      "searchsorted.*leading dimensions"),
                            ErrorCase((make(5), make(2)), {"side": "left", "right": True},
                                      ValueError, "searchsorted.*contradict")])


def _bucketize_samples(make):
    bounds = np.sort(make(5))
    yield Sample(make(3, 4), bounds)
    yield Sample(np.concatenate([bounds, make(3)]), bounds, right=True)
    yield Sample(np.concatenate([bounds, make(3)]), bounds, out_int32=True)


add_op("bucketize", minifm.bucketize, torch.bucketize, samples=_bucketize_samples,
       differentiable=False, dtypes=FLOATS + (I64,),
       errors=lambda make: [ErrorCase((make(3), make(2, 2)), {}, ValueError, "bucketize.*1-D")])


def _unique_samples(make):
    x = make(3, 4, low=-3, high=3).round()
    yield Sample(x)
    yield Sample(x.T, return_inverse=True, return_counts=True)
    yield Sample(x, return_counts=True)
    yield Sample(np.concatenate([x, x[:1]]), return_inverse=True, dim=0)
    yield Sample(np.zeros(0, x.dtype), return_inverse=True)


add_op("unique", minifm.unique, torch.unique, samples=_unique_samples, differentiable=False,
       dtypes=FLOATS + (I64,))

def _cat_errors(name):
    def errors(make):
        yield ErrorCase(([make(2, 3), make(3, 3)], 1), {}, ValueError,
                        f"{name}.*" + shapes_msg((2, 3), (3, 3)))
        yield ErrorCase(([],), {}, ValueError, f"{name}.*non-empty")
    return errors


add_op("cat", minifm.cat, torch.cat, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample([make(2, 3), make(4, 3)]), Sample([make(2, 3), make(2, 1), make(2, 2)], 1),
                             Sample([make(2, 3)], -1), Sample([make(3, 2).T, make(2, 3)], 0)],
       errors=_cat_errors("cat"))
add_op("stack", minifm.stack, torch.stack, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample([make(2, 3), make(2, 3)]), Sample([make(2, 3), make(2, 3), make(2, 3)], -1),
                             Sample([make(2, 3)], 1)],
       errors=lambda make: [ErrorCase(([make(2, 3), make(3, 3)],), {}, ValueError,
                                      "stack.*" + shapes_msg((2, 3), (3, 3)))])
shape_op("split", lambda make: [Sample(make(5, 3), 2), Sample(make(5, 3), [1, 4]),
                                Sample(make(2, 6), 3, dim=1), Sample(make(2, 6), [2, 2, 2], -1)],
         lambda make: [ErrorCase((make(5, 3), [1, 2]), {}, ValueError, "split.*sum.*5")])
shape_op("chunk", lambda make: [Sample(make(5, 3), 2), Sample(make(2, 6), 3, 1), Sample(make(4, 2), 4)])


def _pad_samples(make):
    yield Sample(make(2, 3), (1, 2))
    yield Sample(make(2, 3, 4), (1, 1, 0, 2), value=0.5)
    yield Sample(make(2, 3, 4), (0, 0, 1, 0, 2, 1))
    yield Sample(make(3, 5), (-1, 2, 1, -1))  # negative widths crop


add_op("pad", F.pad, TF.pad, samples=_pad_samples, errors=lambda make: [
    ErrorCase((make(2, 3), (1, 2, 3)), {}, RuntimeError, "pad.*length 3.*2 dimensions")])
shape_op("tril", lambda make: [Sample(make(4, 5)), Sample(make(2, 4, 3), 1), Sample(make(4, 4), -1)],
         lambda make: [ErrorCase((make(3),), {}, ValueError, "tril.*" + shapes_msg((3,)))])
shape_op("triu", lambda make: [Sample(make(4, 5)), Sample(make(2, 4, 3), -1), Sample(make(4, 4), 2)],
         lambda make: [ErrorCase((make(3),), {}, ValueError, "triu.*" + shapes_msg((3,)))])
shape_op("repeat", lambda make: [Sample(make(2, 3), 2, 1), Sample(make(2, 3), (1, 2, 2)),
                                 Sample(make(3,), 2, 2)],
         lambda make: [ErrorCase((make(2, 3), 2), {}, ValueError, "repeat.*repeat dims")])
shape_op("flip", lambda make: [Sample(make(2, 3, 4), 0), Sample(make(2, 3, 4), (0, 2)), Sample(make(3, 4), [-1])])
shape_op("roll", lambda make: [Sample(make(3, 4), 1), Sample(make(3, 4), -2, 1),
                               Sample(make(2, 3, 4), (1, 2), (0, 2))])


# ----------------------------------------------------------------------------- no gradient
def _cmp_samples(make):
    a = make(3, 4)
    b = a.copy()
    b[0] += 1
    yield Sample(a, b)
    yield Sample(make(3, 1), make(4))
    yield Sample(a, 0.5 if make.dtype.kind == "f" else 1)
    yield Sample(make(3, 4), a[0, 0].item())


for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    add_op(_name, getattr(operator, _name), samples=_cmp_samples, differentiable=False,
           dtypes=FLOATS + (I64,), errors=binary_errors({"eq": "equal", "ne": "not_equal",
                                                         "lt": "less", "le": "less_equal",
                                                         "gt": "greater", "ge": "greater_equal"}[_name]))
add_op("eq_method", lambda a, b: a.eq(b), samples=_cmp_samples, differentiable=False)
add_op("ne_method", lambda a, b: a.ne(b), samples=_cmp_samples, differentiable=False)
for _name in ("argmax", "argmin"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False,
           dtypes=FLOATS + (I64,),
           samples=lambda make: [Sample(make.distinct(3, 4)), Sample(make.distinct(3, 4), 1),
                                 Sample(make.distinct(2, 3, 4), 0, keepdim=True)],
           errors=lambda make, n=_name: [ErrorCase((make(2, 3), 2), {}, IndexError, f"{n}.*out of range")])


def _special_values(make):
    x = make(3, 4)
    x[0, 1], x[1, 2], x[2, 0] = np.nan, np.inf, -np.inf
    yield Sample(x)


for _name in ("isnan", "isinf", "isfinite"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), samples=_special_values,
           differentiable=False)
for _name in ("all", "any"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False,
           samples=lambda make: [Sample(make.mask(3, 4)), Sample(make.mask(3, 4), 1),
                                 Sample(make.mask(3, 4), 0, keepdim=True), Sample(make(3, 4) > 0, -1)],
           dtypes=(F32,))


def _sort_samples(make):
    yield Sample(make.distinct(3, 5))
    yield Sample(make.distinct(3, 5), 0)
    yield Sample(make.distinct(3, 5), descending=True)
    yield Sample(make.distinct(2, 3, 4), 1, descending=True)


add_op("sort", minifm.sort, torch.sort, samples=_sort_samples, dtypes=FLOATS + (I64,))
add_op("topk", minifm.topk, torch.topk, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make.distinct(3, 5), 2), Sample(make.distinct(3, 5), 3, 0),
                             Sample(make.distinct(3, 5), 2, largest=False),
                             Sample(make.distinct(2, 3, 4), 4, -1)],
       errors=lambda make: [ErrorCase((make(3, 5), 6), {}, RuntimeError, "topk.*k \\(6\\).*size 5")])
add_op("one_hot", F.one_hot, TF.one_hot, differentiable=False, dtypes=(I64,),
       samples=lambda make: [Sample(make.index(5, high=4)), Sample(make.index(2, 3, high=3), 5),
                             Sample(make.index(0, 2, high=3), 4), Sample(np.array(2), 3)],
       errors=lambda make: [
           ErrorCase((make.index(3, high=4) + 4, 4), {}, RuntimeError,
                     "one_hot.*Class values must be smaller than num_classes"),
           ErrorCase((make.index(3, high=4) - 4,), {}, RuntimeError,
                     "one_hot.*Class values must be non-negative"),
           ErrorCase((make.index(3, high=4) - 4, 5), {}, RuntimeError, "non-negative"),
           ErrorCase((make.index(0, high=4),), {}, RuntimeError, "Can not infer"),
           ErrorCase((make.index(3, high=4), 2.0), {}, TypeError, "num_classes.*must be int"),
           ErrorCase((np.ones(3, np.float32),), {}, RuntimeError, "one_hot.*LongTensor"),
           ErrorCase((np.ones(3, np.int32),), {}, RuntimeError, "one_hot.*LongTensor")])


# ----------------------------------------------------------------------------- more of the API
add_op("norm", minifm.norm, lambda x, p=2, dim=None, keepdim=False: torch.linalg.vector_norm(
           x, p, dim, keepdim), samples=lambda make: [
           Sample(make(3, 4, away=0.1)), Sample(make(3, 4, away=0.1), 1, 1),
           Sample(make(3, 4, away=0.1), float("inf"), 0, keepdim=True, fd=False),
           Sample(make(2, 3, 4, away=0.1), 3.0, (1, 2))])
add_op("sign", minifm.sign, torch.sign, samples=lambda make: [Sample(make(3, 4, away=0.1))])
add_op("narrow", minifm.narrow, torch.narrow,
       samples=lambda make: [Sample(make(4, 5), 1, 1, 3), Sample(make(4, 5), 0, 2, 2)])
add_op("unbind", lambda x, dim=0: minifm.stack(minifm.unbind(x, dim)),
       lambda x, dim=0: torch.stack(torch.unbind(x, dim)),
       samples=lambda make: [Sample(make(3, 4)), Sample(make(3, 4), 1)])
add_op("unflatten", minifm.unflatten, torch.unflatten,
       samples=lambda make: [Sample(make(3, 12), 1, (3, 4)), Sample(make(6, 2), 0, (2, -1))])
for _name in ("floor", "ceil", "round"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False,
           samples=lambda make: [Sample(make(3, 4, low=-5, high=5))])
for _name in ("logical_and", "logical_or"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False,
           samples=lambda make: [Sample(make.mask(3, 4), make.mask(3, 4)), Sample(make.mask(3, 4), make.mask(4))])
add_op("logical_not", minifm.logical_not, torch.logical_not, differentiable=False,
       samples=lambda make: [Sample(make.mask(3, 4))])
add_op("__floordiv__", operator.floordiv, differentiable=False, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4, low=-5, high=5), make(3, 4, low=1, high=3))])
for _name, _fn in [("__rfloordiv__", lambda a: 7 // a), ("__rmod__", lambda a: 7 % a)]:
    add_op(_name, _fn, differentiable=False, dtypes=FLOATS + (I64,),  # torch: no derivative
           samples=lambda make: [Sample(make(3, 4, low=1, high=3))])
for _name, _ours, _theirs in [("__mod__", operator.mod, operator.mod),
                              ("remainder", minifm.remainder, torch.remainder),
                              ("fmod", minifm.fmod, torch.fmod)]:
    add_op(_name, _ours, _theirs,
           samples=binary_samples(low=-5, high=5, away=0.5, reflected=False),
           errors=binary_errors("fmod" if _name == "fmod" else "remainder"))
    add_op(_name + "_int", _ours, _theirs, differentiable=False, dtypes=(I64,),
           samples=lambda make: [Sample(make(3, 4, low=-7, high=7), make(3, 4, low=1, high=3)),
                                 Sample(make(3, 4, low=-7, high=7), -3),
                                 Sample(make(3, 4, low=-7, high=7), make(4, low=-3, high=-1))])


# ----------------------------------------------------------------------------- more math
unary("tan", minifm.tan, torch.tan, low=-1.2, high=1.2)
unary("asin", minifm.asin, torch.asin, low=-0.9, high=0.9)
unary("acos", minifm.acos, torch.acos, low=-0.9, high=0.9)
unary("atan", minifm.atan, torch.atan, low=-3, high=3)
unary("sinh", minifm.sinh, torch.sinh)
unary("cosh", minifm.cosh, torch.cosh)
unary("asinh", minifm.asinh, torch.asinh, low=-3, high=3)
unary("acosh", minifm.acosh, torch.acosh, low=1.2, high=3)
unary("atanh", minifm.atanh, torch.atanh, low=-0.9, high=0.9)
unary("erf", minifm.erf, torch.erf)
unary("erfc", minifm.erfc, torch.erfc, low=-3, high=3)
unary("erfinv", minifm.erfinv, torch.erfinv, low=-0.95, high=0.95)
unary("exp2", minifm.exp2, torch.exp2)
unary("expm1", minifm.expm1, torch.expm1)
unary("log2", minifm.log2, torch.log2, low=0.1)
unary("log10", minifm.log10, torch.log10, low=0.1)
unary("frac", minifm.frac, torch.frac, low=-3, high=3)
add_op("arcsin_method", lambda x: x.arcsin(), samples=lambda make: [Sample(make(3, 4, low=-0.9, high=0.9))])
unary("trig_of_int", minifm.atan, torch.atan, low=-3, high=3, dtypes=(I64,),
      differentiable=False, op_name="atan")
add_op("trunc", minifm.trunc, torch.trunc, differentiable=False, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(make(3, 4, low=-5, high=5))])
add_op("erfinv_edges", minifm.erfinv, torch.erfinv, differentiable=False,
       samples=lambda make: [Sample(np.array([-1.0, 1.0, 0.0, 0.999999, -0.9999], make.dtype))])
add_op("erfc_tail", minifm.erfc, torch.erfc, differentiable=False,
       samples=lambda make: [Sample(np.array([-30.0, -5.0, 5.0, 9.0, 26.0], make.dtype))])
for _name, _kw in [("atan2", dict(scalars=False)), ("hypot", dict(scalars=False)),
                   ("logaddexp", dict(scalars=False)), ("logaddexp2", dict(scalars=False)),
                   ("xlogy", dict(right_low=0.1)), ("copysign", dict(away=0.1))]:
    add_op(_name, getattr(minifm, _name), getattr(torch, _name),
           samples=binary_samples(reflected=False, **_kw),
           errors=binary_errors(_name))
add_op("logaddexp_extreme", minifm.logaddexp, torch.logaddexp, second_order=False,  # torch: NaN
       samples=lambda make: [Sample(make(3, 4) * 1e4, make(3, 4) * 1e4)])
add_op("xlogy_zeros", minifm.xlogy, torch.xlogy, samples=lambda make: [
    Sample(np.array([0.0, 0.0, 1.5, 2.0], make.dtype), np.array([0.5, 2.0, 0.3, 1.0], make.dtype),
           fd=False),
    Sample(np.array([0.0, 1.0], make.dtype), np.array([-1.0, 2.0], make.dtype), fd=False)])
add_op("copysign_zero", minifm.copysign, torch.copysign, samples=lambda make: [
    Sample(np.array([0.5, -0.5, 1.5, -2.0], make.dtype), np.array([-1.0, 1.0, -0.0, 0.0], make.dtype),
           fd=False)])
add_op("lerp", minifm.lerp, torch.lerp, samples=lambda make: [
    Sample(make(3, 4), make(3, 4), 0.3), Sample(make(3, 1), make(4), make(3, 4, low=0, high=1)),
    Sample(make(4, 3).T, make(3, 4), np.array(make(1)[0])), Sample(make(2, 3), make(2, 3), 0.8)],
    errors=lambda make: [ErrorCase((make(3, 4), make(5,), 0.5), {}, ValueError,
                                   "lerp.*" + shapes_msg((3, 4), (5,)))])


def _special_floats(make):
    x = make(3, 4)
    x[0, 1], x[1, 2], x[2, 0] = np.nan, np.inf, -np.inf
    return x


add_op("nan_to_num", minifm.nan_to_num, torch.nan_to_num, samples=lambda make: [
    Sample(_special_floats(make), fd=False), Sample(_special_floats(make), nan=1.0, posinf=5.0, fd=False),
    Sample(_special_floats(make), neginf=-3.0, fd=False), Sample(make(3, 4))])
for _name in ("isposinf", "isneginf"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False,
           samples=lambda make: [Sample(_special_floats(make))])
add_op("isclose", minifm.isclose, torch.isclose, differentiable=False, samples=lambda make: [
    Sample(np.array([1.0, 1.0, np.nan, 2.0], make.dtype), np.array([1.0 + 1e-9, 1.1, np.nan, 2.0], make.dtype)),
    Sample(np.array([1.0, np.nan], make.dtype), np.array([1.05, np.nan], make.dtype), rtol=0.1, equal_nan=True),
    Sample(make(3, 4), make(4), atol=1.0)])
add_op("where_scalars", minifm.where, torch.where, differentiable=False, samples=lambda make: [
    Sample(make.mask(3, 4), 0.0, float("-inf")), Sample(make.mask(3, 4), 1, 2)])


# ----------------------------------------------------------------------------- bitwise
def _bitwise_samples(unary_op=False):
    def samples(make):
        a, b = make(3, 4, low=-9, high=9), make(3, 4, low=-9, high=9)
        m = make.mask(3, 4)
        if unary_op:
            yield Sample(a)
            yield Sample(m)
            return
        yield Sample(a, b)
        yield Sample(a, make(4, low=0, high=9))
        yield Sample(a, 5)
        yield Sample(6, a)                                    # reflected
        yield Sample(m, make.mask(4))
        yield Sample(a.astype(np.int32), 3)
        yield Sample(a.astype(np.uint8) % 16, np.array(2, np.uint8))
    return samples


def _bitwise_errors(name):
    def errors(make):
        yield ErrorCase((np.ones(3, np.float32), np.ones(3, np.int64)), {}, TypeError,
                        f"{name}.*integer or bool.*float32")
    return errors


for _name, _fn, _op in [("bitwise_and", "__and__", operator.and_),
                        ("bitwise_or", "__or__", operator.or_),
                        ("bitwise_xor", "__xor__", operator.xor)]:
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), differentiable=False, dtypes=(I64,),
           samples=lambda make: [s for s in _bitwise_samples()(make)
                                 if isinstance(s.args[0], np.ndarray)],
           errors=_bitwise_errors(_name))
    add_op(_fn, _op, differentiable=False, dtypes=(I64,), samples=_bitwise_samples(),
           errors=_bitwise_errors(_name))
for _name, _op in [("bitwise_left_shift", operator.lshift),
                   ("bitwise_right_shift", operator.rshift)]:
    add_op(_name, _op, differentiable=False, dtypes=(I64,), samples=lambda make: [
        Sample(make(3, 4, low=-9, high=9), make(3, 4, low=0, high=4)),
        Sample(make(3, 4, low=-9, high=9), 2), Sample(3, make(4, low=0, high=4))],
        errors=_bitwise_errors("shift"))
add_op("bitwise_not", minifm.bitwise_not, torch.bitwise_not, differentiable=False, dtypes=(I64,),
       samples=_bitwise_samples(unary_op=True), errors=lambda make: [
           ErrorCase((np.ones(3, np.float32),), {}, TypeError, "bitwise_not.*integer or bool")])
add_op("__invert__", operator.invert, differentiable=False, dtypes=(I64,),
       samples=_bitwise_samples(unary_op=True))


# ----------------------------------------------------------------------------- activations
unary("elu", F.elu, TF.elu, away=0.05)
unary("elu_alpha", lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5), away=0.05, op_name="elu")
unary("celu", lambda x: F.celu(x, 0.7), lambda x: TF.celu(x, 0.7), away=0.05, op_name="elu")
unary("selu", F.selu, TF.selu, away=0.05, op_name="elu")
unary("mish", F.mish, TF.mish, low=-5, high=5)
unary("hardtanh", F.hardtanh, TF.hardtanh)
unary("hardtanh_range", lambda x: F.hardtanh(x, -0.5, 1.5), lambda x: TF.hardtanh(x, -0.5, 1.5),
      op_name="hardtanh")
unary("relu6", F.relu6, TF.relu6, low=-3, high=9, away=0.05, op_name="hardtanh")
unary("hardsigmoid", F.hardsigmoid, TF.hardsigmoid, low=-5, high=5, second_order=False)
unary("hardswish", F.hardswish, TF.hardswish, low=-5, high=5)
unary("softsign", F.softsign, TF.softsign, low=-5, high=5)
unary("logsigmoid", F.logsigmoid, TF.logsigmoid, low=-30, high=30)
unary("threshold", lambda x: F.threshold(x, 0.5, -1.0), lambda x: TF.threshold(x, 0.5, -1.0),
      op_name="threshold")
add_op("softmin", F.softmin, TF.softmin, errors=_dim_error("softmin"),
       samples=lambda make: [s for s in _softmax_samples(make) if np.isfinite(s.args[0]).all()])
add_op("glu", F.glu, TF.glu, samples=lambda make: [
    Sample(make(3, 4)), Sample(make(4, 3), 0), Sample(make(2, 6, 2).transpose(0, 2, 1), -1)],
    errors=lambda make: [ErrorCase((make(3, 5),), {}, ValueError, "glu.*even.*dimension 1.*size 5")])
add_op("prelu", F.prelu, TF.prelu, samples=lambda make: [
    Sample(make(2, 3, 4, away=0.05), make(3, low=0, high=1)),
    Sample(make(2, 3, away=0.05), make(1, low=0, high=1)),
    Sample(make(4, 3, away=0.05).T, make(4, low=0, high=1)),
    Sample(make(5, away=0.05), make(1, low=0, high=1))],
    errors=lambda make: [ErrorCase((make(2, 3, 4), make(4)), {}, ValueError, "prelu.*weight.*3 channels")])


# ----------------------------------------------------------------------------- scans, statistics
def _scan_samples(make):
    yield Sample(make(3, 4), 1)
    yield Sample(make(2, 3, 4), 0)
    yield Sample(make(4, 3).T, -1)                                  # non-contiguous
    yield Sample(np.array(make(1)[0]), 0)                           # 0-d


def _with_zeros(make):
    x = make(3, 4)
    x[0, 1] = x[2, 0] = x[2, 2] = 0.0
    yield Sample(x, 1)


for _name in ("cumprod", "cummax", "cummin", "logcumsumexp"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), errors=_dim_error(_name),
           samples=lambda make, n=_name: list(_scan_samples(make)) + (
               list(_with_zeros(make)) if n == "cumprod" else [])
           + ([Sample(make(3, 4) * 50, 1)] if n == "logcumsumexp" else []))
add_op("cummax_ties", minifm.cummax, torch.cummax, differentiable=False, dtypes=FLOATS + (I64,),
       samples=lambda make: [Sample(np.array([[1, 3, 3, 2, 3], [2, 2, 1, 2, 0]], make.dtype), 1)])
for _name in ("var_mean", "std_mean"):
    add_op(_name, getattr(minifm, _name), getattr(torch, _name), samples=lambda make: [
        Sample(make.distinct(2, 3, 4)), Sample(make.distinct(2, 3, 4), 1, keepdim=True),
        Sample(make.distinct(2, 3, 4), (0, 2), correction=0)], errors=_dim_error(_name))


def _nan_samples(make):
    x = make(3, 4)
    x[0, 1] = x[2, 3] = np.nan
    yield Sample(x)
    yield Sample(x, 1)
    yield Sample(x, 0, keepdim=True)


add_op("nansum", minifm.nansum, torch.nansum, samples=_nan_samples)
add_op("nanmean", minifm.nanmean, torch.nanmean, samples=_nan_samples)
add_op("count_nonzero", minifm.count_nonzero, torch.count_nonzero, differentiable=False,
       dtypes=FLOATS + (I64,), samples=lambda make: [
           Sample(make(3, 4, low=-1, high=1).round()), Sample(make(3, 4, low=-1, high=1).round(), 1),
           Sample(make(2, 3, 4, low=-1, high=1).round(), (0, 2))])
add_op("aminmax", minifm.aminmax, torch.aminmax, samples=lambda make: [
    Sample(make.distinct(3, 4)), Sample(make.distinct(3, 4), dim=1),
    Sample(make.distinct(3, 4), dim=0, keepdim=True)],
    errors=lambda make: [ErrorCase((make(0, 3),), {}, RuntimeError, "aminmax.*non-empty")])
add_op("median", minifm.median, torch.median, dtypes=FLOATS + (I64,), samples=lambda make: [
    Sample(make.distinct(3, 5)), Sample(make.distinct(3, 4)), Sample(make.distinct(3, 5), 1),
    Sample(make.distinct(4, 3), 0, keepdim=True), Sample(make.distinct(4, 3).T, -1)],
    errors=_dim_error("median"))
add_op("quantile", minifm.quantile, torch.quantile, samples=lambda make: [
    Sample(make.distinct(3, 5), 0.3), Sample(make.distinct(3, 5), 0.3, 1),
    Sample(make.distinct(3, 5), np.array([0.1, 0.45, 0.95], make.dtype), 0, keepdim=True),
    Sample(make.distinct(2, 5), np.array([0.05, 0.6], make.dtype), keepdim=True)]
    + [Sample(make.distinct(3, 5), 0.4, 1, interpolation=m)
       for m in ("lower", "higher", "midpoint", "nearest")],
    errors=lambda make: [ErrorCase((make(3, 4), 1.5), {}, ValueError, "quantile.*q.*\\[0, 1\\]")])


# ----------------------------------------------------------------------------- shape family II
# (meshgrid, diag, trace, repeat_interleave, unfold/fold, tile, rot90, pixel_shuffle, ...)
def _factor_errors(name, arg):
    def errors(make):
        yield ErrorCase((make(2, 3), 2), {}, RuntimeError, f"{name}.*at least 3 dimensions.*got.*2")
        yield ErrorCase((make(1, 4, 2, 2), 0), {}, RuntimeError, f"{name}.*positive {arg}.*got 0")
        yield ErrorCase((make(1, 4, 2, 2), 2.0), {}, TypeError, f"{name}.*{arg}.*int.*float")
    return errors


add_op("pixel_shuffle", F.pixel_shuffle, TF.pixel_shuffle, dtypes=FLOATS + (I64,),
       samples=lambda make: [
           Sample(make(2, 8, 3, 2), 2), Sample(make(12, 2, 3), 2),  # 3-d: no batch
           Sample(make(2, 3, 9, 2, 1), 3), Sample(make(1, 4, 2, 2), 1),
           Sample(make(2, 3, 4, 8).transpose(0, 3, 1, 2), 2)],       # non-contiguous
       errors=lambda make: list(_factor_errors("pixel_shuffle", "upscale_factor")(make)) + [
        ErrorCase((make(1, 5, 2, 2), 2), {}, RuntimeError,
                  r"pixel_shuffle.*divisible by the square.*size\(-3\)=5 is not divisible by 4")])
add_op("pixel_unshuffle", F.pixel_unshuffle, TF.pixel_unshuffle, dtypes=FLOATS + (I64,),
       samples=lambda make: [
           Sample(make(2, 2, 6, 4), 2), Sample(make(3, 4, 6), 2), Sample(make(2, 1, 3, 6, 9), 3),
           Sample(make(1, 2, 3, 3), 1), Sample(make(2, 4, 4, 3).transpose(0, 3, 1, 2), 2)],
       errors=lambda make: list(_factor_errors("pixel_unshuffle", "downscale_factor")(make)) + [
           ErrorCase((make(1, 4, 5, 2), 2), {}, RuntimeError,
                     r"pixel_unshuffle.*height.*size\(-2\)=5 is not divisible by 2"),
           ErrorCase((make(1, 4, 4, 5), 2), {}, RuntimeError,
                     r"pixel_unshuffle.*width.*size\(-1\)=5 is not divisible by 2")])
add_op("pixel_shuffle_roundtrip", lambda x: minifm.pixel_unshuffle(minifm.pixel_shuffle(x, 2), 2),
       lambda x: torch.pixel_unshuffle(torch.pixel_shuffle(x, 2), 2),
       samples=lambda make: [Sample(make(2, 8, 3, 2))])
add_op("meshgrid", minifm.meshgrid, torch.meshgrid, dtypes=FLOATS + (I64,), samples=lambda make: [
    Sample(make(3), make(4), indexing="ij"), Sample([make(3), make(4)], indexing="xy"),
    Sample(make(2), np.array(make(1)[0]), make(3), indexing="xy"), Sample(make(5), indexing="ij"),
    Sample(make(0), make(3), indexing="ij")],
    errors=lambda make: [
        ErrorCase((make(2, 2), make(3)), {}, RuntimeError, r"meshgrid.*0D or 1D.*\(2, 2\)"),
        ErrorCase((make(2), make(3).astype(np.int64)), {}, RuntimeError, "meshgrid.*same dtype"),
        ErrorCase((make(2),), dict(indexing="foo"), RuntimeError, 'meshgrid.*"xy" or "ij".*foo'),
        ErrorCase((), {}, RuntimeError, "meshgrid.*non-empty")])
add_op("diag", minifm.diag, torch.diag, dtypes=FLOATS + (I64,), samples=lambda make: [
    Sample(make(4)), Sample(make(4), 2), Sample(make(4), -1), Sample(make(0)),
    Sample(make(3, 5)), Sample(make(3, 5), 2), Sample(make(5, 3).T, -1), Sample(make(3, 4), 7)],
    errors=lambda make: [ErrorCase((make(2, 3, 4),), {}, RuntimeError, "diag.*1D or 2D.*3D"),
                         ErrorCase((np.array(1.0),), {}, RuntimeError, "diag.*1D or 2D.*0D")])
shape_op("diagonal", lambda make: [
    Sample(make(3, 4)), Sample(make(3, 4), 1), Sample(make(2, 3, 4), -1, 2, 0),
    Sample(make(2, 3, 4), 1, 2, 0), Sample(make(2, 3, 4), 5, 1, 2), Sample(make(4, 5, 3).T, 0, -1, 1),
    Sample(make(0, 3), 0)],
    lambda make: [
        ErrorCase((make(2, 3, 4), 0, 1, 1), {}, RuntimeError, "diagonal.*cannot be identical 1, 1"),
        ErrorCase((make(2, 3, 4), 0, 0, 3), {}, IndexError, "diagonal.*3.*out of range")])
add_op("diag_embed", minifm.diag_embed, torch.diag_embed, dtypes=FLOATS + (I64,),
       samples=lambda make: [
           Sample(make(2, 3)), Sample(make(2, 3), 1), Sample(make(2, 3, 4), -1, 0, 2),
           Sample(make(2, 3, 4), 2, 3, 0), Sample(make(4, 3).T), Sample(make(0, 3), -2),
           Sample(make(3), 0, 1, 0)],
       errors=lambda make: [
           ErrorCase((make(2, 3), 1, 0, 0), {}, RuntimeError, "diag_embed.*cannot be identical 0, 0"),
           ErrorCase((make(2, 3), 0, 3, 0), {}, IndexError, "diag_embed.*3.*out of range"),
           ErrorCase((np.array(1.0),), {}, IndexError, "diag_embed.*out of range")])
add_op("trace", minifm.trace, torch.trace, dtypes=FLOATS + (I64,), samples=lambda make: [
    Sample(make(3, 4)), Sample(make(4, 3).T), Sample(make(4, 4)), Sample(make(0, 3))],
    errors=lambda make: [ErrorCase((make(2, 3, 4),), {}, RuntimeError, "trace.*matrix.*dim 3"),
                         ErrorCase((np.ones((2, 2), bool),), {}, NotImplementedError, "trace.*Bool")])


def _repeat_interleave_errors(make):
    ri = "repeat_interleave"
    yield ErrorCase((make(2, 3), -1), {}, RuntimeError, f"{ri}.*non-negative")
    yield ErrorCase((make(2, 3), np.array([1, -2]), 0), {}, RuntimeError, f"{ri}.*can not be negative")
    yield ErrorCase((make(3, 2), np.array([1, 2]), 0), {}, RuntimeError,
                    rf"{ri}.*repeats.size\(0\) = 2 and input.size\(0\) = 3")
    yield ErrorCase((make(2, 3), np.array([[1, 2]]), 0), {}, RuntimeError, f"{ri}.*0-dim or 1-dim")
    yield ErrorCase((make(2, 3), np.array([1.0, 2.0]), 0), {}, NotImplementedError,
                    f"{ri}.*integer.*float")
    yield ErrorCase((make(2, 3), 2, 1), dict(output_size=5), RuntimeError,
                    f"{ri}.*output_size.*expected 6 but got 5")
    yield ErrorCase((make(2, 3), 2, 2), {}, IndexError, f"{ri}.*out of range")
    yield ErrorCase((make(2, 3), 2.5), {}, TypeError, f"{ri}.*int.*float")


add_op("repeat_interleave", minifm.repeat_interleave, torch.repeat_interleave,
       dtypes=FLOATS + (I64,), samples=lambda make: [
           Sample(make(2, 3), 2), Sample(make(2, 3), 2, 1), Sample(make(3, 2), np.array([1, 0, 3]), 0),
           Sample(make(3, 2), np.array([2]), 1, output_size=4), Sample(np.array(make(1)[0]), 3),
           Sample(make(4, 3).T, np.array([1, 2, 0, 1]), 1), Sample(make(0, 2), 2, 0),
           Sample(make(2, 3), np.array(2), -1), Sample(make(2, 3), np.array([1, 0, 2, 1, 1, 3]))],
       errors=_repeat_interleave_errors)
add_op("repeat_interleave_counts", minifm.repeat_interleave, torch.repeat_interleave,
       dtypes=(I64,), differentiable=False, samples=lambda make: [
           Sample(np.array([1, 2, 0, 3])), Sample(np.array([], np.int64))],
       errors=lambda make: [ErrorCase((np.array([[1, 2]]),), {}, RuntimeError,
                                      "repeat_interleave only accept 1D vector")])
shape_op("unfold", lambda make: [
    Sample(make(2, 3, 7), 2, 3, 2), Sample(make(5, 4), 0, 2, 1), Sample(make(4, 6).T, 1, 4, 1),
    Sample(make(6), 0, 6, 2), Sample(make(6), -1, 2, 3), Sample(np.array(make(1)[0]), 0, 1, 1),
    Sample(make(3, 4), 1, 0, 1), Sample(make(0, 4), 1, 2, 2)],
    lambda make: [ErrorCase((make(2, 4), 1, 5, 1), {}, RuntimeError,
                            "unfold.*maximum size.*dimension 1 is 4 but size is 5"),
                  ErrorCase((make(2, 4), 1, 2, 0), {}, RuntimeError, "unfold.*step is 0.*> 0"),
                  ErrorCase((make(2, 4), 1, -1, 1), {}, RuntimeError, "unfold.*size is -1.*>= 0"),
                  ErrorCase((make(2, 4), 2, 2, 1), {}, IndexError, "unfold.*out of range")])
add_op("tile", minifm.tile, torch.tile, dtypes=FLOATS + (I64,), samples=lambda make: [
    Sample(make(2, 3), (2,)), Sample(make(2, 3), (2, 1, 2)), Sample(make(2, 3), (0, 2)),
    Sample(np.array(make(1)[0]), (2, 3)), Sample(make(4, 3).T, (1, 2)), Sample(make(2, 3), ())])
add_op("tile_method", lambda x: x.tile(2, 1), samples=lambda make: [Sample(make(2, 3))])


def _rot90_errors(make):
    yield ErrorCase((make(2, 3), 1, [0]), {}, RuntimeError, "rot90.*rotation dims == 2.*dims = 1")
    yield ErrorCase((make(3), 1), {}, RuntimeError, "rot90.*total dims >= 2.*= 1")
    yield ErrorCase((make(2, 3), 1, [1, 1]), {}, RuntimeError, "rot90.*different.*1.*1")
    yield ErrorCase((make(2, 3, 4), 1, [0, -3]), {}, RuntimeError, "rot90.*different.*0.*-3")
    yield ErrorCase((make(2, 3, 4), 1, [0, 3]), {}, IndexError, "rot90.*out of range")


add_op("rot90", minifm.rot90, torch.rot90, dtypes=FLOATS + (I64,), samples=lambda make: [
    *[Sample(make(2, 3), k) for k in (0, 1, 2, 3, -1)], Sample(make(2, 3, 4), 1, (2, 0)),
    Sample(make(2, 3, 4), 5, (-1, 1)), Sample(make(4, 3).T, 1), Sample(make(0, 3), 1)],
    errors=_rot90_errors)
add_op("block_diag", minifm.block_diag, torch.block_diag, dtypes=FLOATS + (I64,),
       samples=lambda make: [
           Sample(make(2, 2), make(3)), Sample(np.array(make(1)[0]), make(2, 3), make(1, 0)),
           Sample(make(3, 2).T, np.ones((1, 2), np.int64)), Sample(make(0, 2), make(3, 0)),
           Sample(make(2, 3))],
       errors=lambda make: [ErrorCase((make(2, 2), make(2, 2, 2)), {}, RuntimeError,
                                      "block_diag.*2 or fewer dimensions.*Input 1 has 3")])
add_op("block_diag_empty", lambda: minifm.block_diag(), lambda: torch.block_diag(),
       dtypes=(F32,), differentiable=False, samples=lambda make: [Sample()])
for _name in ("tril_indices", "triu_indices"):
    add_op(_name, getattr(minifm, _name),
           lambda *a, _f=getattr(torch, _name), **k: _f(*a, **{**k, "dtype": torch.int32})
           if k.get("dtype") == np.int32 else _f(*a, **k),
           dtypes=(I64,), differentiable=False, samples=lambda make: [
               Sample(3, 4), Sample(3, 4, 1), Sample(4, 3, -2), Sample(0, 4), Sample(1, 1, 5),
               Sample(3, 4, -1, dtype=np.int32)],
           errors=lambda make, n=_name: [
               ErrorCase((-3, 4), {}, RuntimeError, f"{n}.*row must be non-negative.*-3"),
               ErrorCase((3, 4), dict(dtype=np.float32), NotImplementedError, f"{n}.*float32")])
shape_op("movedim", lambda make: [
    Sample(make(2, 3, 4), (0, 1), (1, 0)), Sample(make(2, 3, 4), (2, 0), (0, 1)),
    Sample(make(2, 3, 4), -1, 0), Sample(make(4, 3).T, 0, 1), Sample(np.array(make(1)[0]), 0, -1)],
    lambda make: [
        ErrorCase((make(2, 3, 4), (0, 0), (1, 2)), {}, RuntimeError, "movedim.*repeated.*source"),
        ErrorCase((make(2, 3, 4), (0, 1), (1, 1)), {}, RuntimeError, "movedim.*repeated.*destination"),
        ErrorCase((make(2, 3, 4), (0, 1), 1), {}, RuntimeError, "movedim.*same number of dims"),
        ErrorCase((make(2, 3, 4), 3, 0), {}, IndexError, "movedim.*out of range")])
shape_op("moveaxis", lambda make: [Sample(make(2, 3, 4), (0, 2), (2, 1))])
shape_op("swapaxes", lambda make: [Sample(make(2, 3, 4), 0, 2), Sample(make(4, 3).T, -1, 0)])
shape_op("expand_as", lambda make: [Sample(make(3, 1), make(2, 3, 4)), Sample(make(1), make(0))])
shape_op("view_as", lambda make: [Sample(make(2, 6), make(3, 4)), Sample(make(6), make(1, 6, 1))])


def _im2col_arg_errors(name, lead):
    def errors(make):
        for kw, msg in [(dict(kernel_size=0), "kernel size should be greater than zero.*0"),
                        (dict(stride=0), "stride should be greater than zero"),
                        (dict(padding=-1), "padding should be non-negative.*-1"),
                        (dict(dilation=0), "dilation should be greater than zero"),
                        (dict(kernel_size=(2, 3, 1)), "kernel_size equals to 2.*size 3")]:
            yield ErrorCase(lead(make), {"kernel_size": 2, **kw}, RuntimeError, f"{name}.*{msg}")
    return errors


add_op("unfold_im2col", F.unfold, TF.unfold, samples=lambda make: [
    Sample(make(2, 3, 5, 6), 2), Sample(make(2, 3, 5, 6), (2, 3), stride=(1, 2)),
    Sample(make(1, 2, 6, 7), 3, dilation=(2, 1), padding=1, stride=2),
    Sample(make(2, 5, 4, 3).transpose(0, 3, 1, 2), (2, 1), padding=(0, 2)),   # non-contiguous
    Sample(make(3, 4, 4), 2, 1, 1, 2), Sample(make(0, 2, 3, 3), 2)],
    errors=lambda make: list(_im2col_arg_errors("unfold", lambda make: (make(1, 2, 4, 4),))(make))
    + [ErrorCase((make(1, 2, 3, 4, 5), 2), {}, RuntimeError, r"unfold.*3D or 4D.*\[1, 2, 3, 4, 5\]"),
       ErrorCase((make(1, 2, 3, 4), 5), {}, RuntimeError,
                 r"unfold.*sliding blocks as \(-1, 0\).*at least one"),
       ErrorCase((make(1, 2, 3, 4).astype(np.int64), 2), {}, NotImplementedError, "unfold.*int64")])
add_op("fold_col2im", F.fold, TF.fold, samples=lambda make: [
    Sample(make(2, 8, 6), (3, 4), 2), Sample(make(2, 18, 4), (5, 6), (2, 3), stride=(2, 2)),
    Sample(make(1, 18, 8), (6, 7), 3, dilation=(2, 1), padding=1, stride=2),
    Sample(make(2, 9, 8).transpose(0, 2, 1), (4, 4), 2, 1, 1, 2),                 # non-contiguous
    Sample(make(6, 5), 4, (2, 3), stride=(1, 2), padding=(1, 0)), Sample(make(0, 8, 6), (3, 4), 2)],
    errors=lambda make: list(_im2col_arg_errors("fold", lambda make: (make(1, 8, 6), (3, 4)))(make))
    + [ErrorCase((make(1, 1, 8, 6), (3, 4), 2), {}, RuntimeError, r"fold.*2D or 3D.*\[1, 1, 8, 6\]"),
       ErrorCase((make(1, 7, 6), (3, 4), 2), {}, RuntimeError,
                 r"fold.*divisible by the product of kernel_size.*input.size\(1\)=7"),
       ErrorCase((make(1, 8, 5), (3, 4), 2), {}, RuntimeError,
                 r"fold.*sliding blocks 2 \* 3 = 6, but got input.size\(2\)=5"),
       ErrorCase((make(1, 8, 6), (3, 4, 5), 2), {}, RuntimeError, "fold.*output_size equals to 2")])
# edge cases of the older shape ops: negative starts, empty and 0-d inputs, and PyTorch's refusals
shape_op("narrow_edges", lambda make: [
    Sample(make(2, 5), 1, -2, 2), Sample(make(2, 5), -1, 1, 0), Sample(make(4, 3).T, 0, 3, 0)],
    lambda make: [
        ErrorCase((make(2, 3), 1, 2, 3), {}, RuntimeError,
                  r"narrow.*start \(2\) \+ length \(3\) exceeds.*\(3\)"),
        ErrorCase((make(2, 3), 1, -4, 1), {}, IndexError, "narrow.*start -4.*out of range")],
    fn=lambda x, *a: x.narrow(*a))
shape_op("flatten_edges", lambda make: [
    Sample(make(2, 0, 3), 1), Sample(np.array(make(1)[0])), Sample(make(2, 3, 4), 1, 1)],
    lambda make: [ErrorCase((make(2, 3, 4), 2, 1), {}, RuntimeError,
                            "flatten.*start_dim cannot come after")],
    fn=lambda x, *a: x.flatten(*a))
shape_op("chunk_edges", lambda make: [
    Sample(make(5, 2), 3), Sample(make(0, 2), 2), Sample(make(2, 5), 9, 1)],
    lambda make: [ErrorCase((make(4, 2), n), {}, RuntimeError, f"chunk.*greater than 0, got: {n}")
                  for n in (0, -1)],
    fn=lambda x, *a: x.chunk(*a))
add_op("stack_edges", minifm.stack, torch.stack, samples=lambda make: [
    Sample([make(2, 3), make(2, 3)], -3), Sample([make(0, 3)], 1),
    Sample([np.array(make(1)[0])] * 3)],
    errors=lambda make: [ErrorCase(([make(2, 3), make(2, 3)], 3), {}, IndexError,
                                   "stack.*3.*out of range")])
shape_op("roll_edges", lambda make: [Sample(make(2, 3), (1, -2), (0, 1)), Sample(make(0, 3), 1, 1)],
         lambda make: [ErrorCase((make(2, 3), (1, 2), (0,)), {}, RuntimeError,
                                 "roll.*shifts and dimensions must align.*2.*1")],
         fn=lambda x, *a: x.roll(*a))
add_op("cat_edges", minifm.cat, torch.cat, samples=lambda make: [
    Sample([make(2, 3), make(0)], 1), Sample([make(0), make(2, 2), make(1, 2)]),   # legacy skip
    Sample([make(0), make(0)]), Sample([make(0, 3), make(3, 2).T])],
    errors=lambda make: [ErrorCase(([np.array(1.0), np.array(2.0)],), {}, RuntimeError,
                                   r"cat.*zero-dimensional tensor \(at position 0\)")])
shape_op("expand_edges", lambda make: [Sample(np.array(make(1)[0]), 2, 3), Sample(make(3, 1), 2, -1, 4)],
         lambda make: [ErrorCase((make(3), -1, 3), {}, RuntimeError, r"expand.*\(-1\).*leading")],
         fn=lambda x, *a: x.expand(*a))


# ----------------------------------------------------------------------------- linear algebra

def _wellconditioned(make, *shape):
    """Square matrices (the last two dims) with a dominant diagonal: far from singular."""
    n = shape[-1]
    return (make(*shape, low=-1, high=1) + 3 * np.eye(n)).astype(make.dtype)


def _products(name, samples, errors):
    add_op(name, getattr(minifm, name), getattr(torch, name), samples=samples, errors=errors)


_products("mm", lambda make: [Sample(make(3, 4), make(4, 5)), Sample(make(4, 3).T, make(5, 4).T),
                               Sample(make(0, 3), make(3, 2))],
          lambda make: [ErrorCase((make(2, 3), make(4, 5)), {}, RuntimeError, r"mm.*2x3 and 4x5"),
                        ErrorCase((make(3), make(3, 5)), {}, RuntimeError, r"mm.*self.*matrix.*\(3,\)"),
                        ErrorCase((make(2, 3), make(3, 5).astype(np.float64)), {}, RuntimeError,
                                  "mm.*same dtype")])
_products("bmm", lambda make: [Sample(make(2, 3, 4), make(2, 4, 5)),
                                Sample(make(2, 4, 3).transpose(0, 2, 1), make(2, 4, 5)),
                                Sample(make(0, 3, 4), make(0, 4, 2))],
          lambda make: [ErrorCase((make(2, 2, 3), make(3, 3, 5)), {}, RuntimeError,
                                  r"bmm.*\[2, 3\].*\[3, 3\]"),
                        ErrorCase((make(2, 3), make(2, 3, 5)), {}, RuntimeError, "bmm.*batch1.*3D")])
_products("mv", lambda make: [Sample(make(3, 4), make(4)), Sample(make(4, 3).T, make(4))],
          lambda make: [ErrorCase((make(2, 3), make(4)), {}, RuntimeError, r"mv.*2x3.*\(4\)"),
                        ErrorCase((make(2, 3), make(3, 1)), {}, RuntimeError, "mv.*vec.*vector")])
for _name in ("dot", "vdot"):
    _products(_name, lambda make: [Sample(make(5), make(5)), Sample(make(5, 2)[:, 1], make(5)),
                                   Sample(make(0), make(0))],
              lambda make, n=_name: [
                  ErrorCase((make(3), make(4)), {}, RuntimeError, f"{n}.*" + shapes_msg((3,), (4,))),
                  ErrorCase((make(3, 1), make(3)), {}, RuntimeError, f"{n}.*vector.*\\(3, 1\\)")])
for _name in ("outer", "ger"):
    _products(_name, lambda make: [Sample(make(3), make(4)), Sample(make(2, 3)[:, 0], make(1))],
              lambda make: [ErrorCase((make(3, 1), make(2)), {}, RuntimeError,
                                      r"outer.*self.*vector.*\(3, 1\)")])


def _add_product(name, shapes):
    """addmm/addmv/addbmm/baddbmm: `shapes` are (input, first, second) with a broadcast input."""
    full, first, second = shapes

    def samples(make):
        yield Sample(make(*full), make(*first), make(*second))
        yield Sample(make(full[-1]), make(*first), make(*second), beta=0.5, alpha=-2.0)
        yield Sample(make(*full), make(*first), make(*second), beta=0.0, alpha=1.5)
        ignored = make(*full)
        ignored[(0,) * len(full)] = np.nan                 # beta=0: NaN does not propagate
        yield Sample(ignored, make(*first), make(*second), beta=0, fd=False)

    def errors(make):
        yield ErrorCase((make(5, 5, 5), make(*first), make(*second)), {}, RuntimeError,
                        f"{name}.*" + shapes_msg((5, 5, 5)))

    add_op(name, getattr(minifm, name), getattr(torch, name), samples=samples, errors=errors)
    add_op(name + "_", lambda x, *a, n=name, **k: getattr(x * 1, n + "_")(*a, **k),
           lambda x, *a, n=name, **k: getattr(x * 1, n + "_")(*a, **k),
           samples=lambda make: [s for s in samples(make) if s.args[0].shape == full])


_add_product("addmm", ((2, 4), (2, 3), (3, 4)))
_add_product("addmv", ((2,), (2, 3), (3,)))
_add_product("baddbmm", ((2, 2, 4), (2, 2, 3), (2, 3, 4)))
_add_product("addbmm", ((2, 4), (3, 2, 3), (3, 3, 4)))


add_op("cross", minifm.cross, torch.cross, samples=lambda make: [
    Sample(make(4, 3), make(4, 3), dim=1), Sample(make(3, 5), make(3, 5), dim=0),
    Sample(make(2, 3, 4), make(1, 3, 4), dim=-2), Sample(make(3, 4).T, make(4, 3), dim=-1)],
    errors=lambda make: [
        ErrorCase((make(3, 4), make(3, 4)), {"dim": 1}, RuntimeError, "cross.*dimension 1.*length 3"),
        ErrorCase((make(3, 3), make(3)), {"dim": 0}, RuntimeError, "cross.*same number of dim")])
add_op("linalg.cross", minifm.linalg.cross, torch.linalg.cross, samples=lambda make: [
    Sample(make(4, 3), make(4, 3)), Sample(make(2, 1, 3), make(1, 5, 3)),
    Sample(make(3, 5), make(3, 5), dim=0)],
    errors=lambda make: [ErrorCase((make(3, 4), make(3, 4)), {}, RuntimeError,
                                   "linalg.cross.*dimension -1.*length 3. Got 4 and 4")])


def _vector_norm_samples(make):
    x = make(3, 4, away=0.1)
    for ord in (2, 1, 3, 0.5, -1.5, float("inf"), float("-inf")):
        yield Sample(make.distinct(3, 4) + 0.1 * (ord < 1), ord)
    yield Sample(x, 2, 1)
    yield Sample(x, 3, (0, 1), True)
    yield Sample(make(2, 3, 4, away=0.1), float("inf"), dim=-1, keepdim=True)
    yield Sample(make(4, 3, away=0.1).T, 1.5, dim=0)                       # non-contiguous
    yield Sample(make(3, 4), 0, fd=False)                                   # a count: gradient 0
    yield Sample(np.array(make(1, away=0.1)[0]), 2)                         # 0-d
    yield Sample(make(0, 3), 2, 1)                                          # empty


add_op("linalg.vector_norm", minifm.linalg.vector_norm, torch.linalg.vector_norm,
       samples=_vector_norm_samples, errors=lambda make: [
           ErrorCase((make(0),), {"ord": float("inf")}, RuntimeError, "vector_norm.*inf.*empty"),
           ErrorCase((make(3, 4).astype(np.int64),), {}, RuntimeError, "vector_norm.*floating.*int64"),
           ErrorCase((make(3, 4),), {"dim": (0, 0)}, RuntimeError, "vector_norm.*appears multiple times"),
           ErrorCase((make(3, 4),), {"dim": 2}, IndexError, "vector_norm.*out of range")])
add_op("linalg.vector_norm_dtype", lambda x: minifm.linalg.vector_norm(x, dtype=minifm.float64),
       lambda x: torch.linalg.vector_norm(x, dtype=torch.float64), dtypes=(F32,),
       samples=lambda make: [Sample(make(3, 4))])


def _matrix_norm_samples(make):
    m = lambda *shape: make.distinct(*shape) + 0.05  # noqa: E731  (no zero: |x| has a kink)
    for ord in ("fro", 1, -1, float("inf"), float("-inf")):
        yield Sample(m(3, 4), ord)
    yield Sample(m(2, 3, 4), 1, (0, 2), True)
    yield Sample(m(4, 3).T, float("inf"))                                   # non-contiguous
    yield Sample(m(2, 3, 3), "fro", keepdim=True)


add_op("linalg.matrix_norm", minifm.linalg.matrix_norm, torch.linalg.matrix_norm,
       samples=_matrix_norm_samples, errors=lambda make: [
           ErrorCase((make(3),), {}, RuntimeError, r"matrix_norm.*at least 2 dimensions.*\(3,\)"),
           ErrorCase((make(3, 3), 3), {}, RuntimeError, "matrix_norm.*Order 3 not supported"),
           ErrorCase((make(2, 3, 3),), {"dim": (1, 1)}, RuntimeError, "matrix_norm.*different")])
add_op("linalg.norm", minifm.linalg.norm, torch.linalg.norm, samples=lambda make: [
    Sample(make(2, 3, 4, away=0.1)), Sample(make(3, 4, away=0.1), 3, 1),
    Sample(make.distinct(3, 4), float("inf")), Sample(make(5, away=0.1), 1),
    Sample(make.distinct(2, 3, 4), 1, (1, 2), True), Sample(make(3, 4, away=0.1), None, (0, 1))],
    errors=lambda make: [ErrorCase((make(2, 3, 3), 1), {}, RuntimeError, "norm.*1D or 2D. Got 3D")])


def _cdist_samples(make):
    for p in (2.0, 1.0, 3.0, float("inf")):
        yield Sample(make.distinct(4, 3), make.distinct(5, 3) + 0.01, p)
    yield Sample(make.distinct(4, 3), make.distinct(5, 3) + 0.01, 0.0, fd=False)
    yield Sample(make.distinct(2, 4, 3), make.distinct(2, 5, 3) + 0.01)       # batched
    yield Sample(make.distinct(2, 1, 4, 3), make.distinct(3, 5, 3) + 0.01)    # broadcast batch
    yield Sample(make.distinct(3, 4).T, make.distinct(2, 3) + 0.01)           # non-contiguous
    x = make(4, 3)
    yield Sample(x, x[1:3].copy(), fd=False)                                  # zero distances


add_op("cdist", minifm.cdist, torch.cdist, samples=_cdist_samples, second_order=False,
       errors=lambda make: [
    ErrorCase((make(3), make(3)), {}, RuntimeError, "cdist.*at least 2D.*X1 got: 1D"),
    ErrorCase((make(2, 3), make(4, 4)), {}, RuntimeError, "cdist.*same number of columns. X1: 3 X2: 4"),
    ErrorCase((make(2, 3), make(4, 3)), {"p": -1.0}, RuntimeError, "cdist.*non-negative p")])


def _singular(make):
    a = make(3, 3)
    a[2] = a[0] + a[1] if make.dtype.kind != "f" else 0.0
    return a


def _square_errors(op):
    def errors(make):
        yield ErrorCase((make(3, 4),), {}, RuntimeError, f"{op}.*square.*3 by 4")
        yield ErrorCase((make(3),), {}, RuntimeError, rf"{op}.*at least 2 dimensions.*\(3,\)")
    return errors


add_op("linalg.inv", minifm.linalg.inv, torch.linalg.inv, samples=lambda make: [
    Sample(_wellconditioned(make, 3, 3)), Sample(_wellconditioned(make, 2, 4, 4)),
    Sample(_wellconditioned(make, 3, 3).T), Sample(_wellconditioned(make, 1, 1))],
    errors=lambda make: [*_square_errors("linalg.inv")(make),
                         ErrorCase((_singular(make),), {}, minifm.linalg.LinAlgError, "inv.*singular")])
add_op("inverse", minifm.inverse, torch.inverse, samples=lambda make: [
    Sample(_wellconditioned(make, 2, 3, 3))])
add_op("linalg.solve", minifm.linalg.solve, torch.linalg.solve, samples=lambda make: [
    Sample(_wellconditioned(make, 3, 3), make(3, 2)), Sample(_wellconditioned(make, 3, 3), make(3)),
    Sample(_wellconditioned(make, 2, 3, 3), make(2, 3)),                      # a batch of vectors
    Sample(_wellconditioned(make, 3, 3), make(2, 3, 2)),                      # broadcast A
    Sample(_wellconditioned(make, 3, 3).T, make(2, 3).T),                     # non-contiguous
    Sample(_wellconditioned(make, 3, 3), make(2, 3), left=False)],
    errors=lambda make: [
        ErrorCase((_wellconditioned(make, 3, 3), make(4)), {}, RuntimeError,
                  "solve.*AX = B.*3x3 and 4x1"),
        ErrorCase((_wellconditioned(make, 3, 3), make(3)), {"left": False}, RuntimeError,
                  "solve.*XA = B.*3x3 and 3x1"),
        ErrorCase((make(3, 3), make(3).astype(np.float64)), {}, RuntimeError, "solve.*same dtype"),
        ErrorCase((_singular(make), make(3)), {}, minifm.linalg.LinAlgError, "solve.*singular")])
add_op("linalg.det", minifm.linalg.det, torch.linalg.det, samples=lambda make: [
    Sample(_wellconditioned(make, 3, 3)), Sample(make(2, 4, 4)), Sample(make(4, 4).T),
    Sample(make(1, 1))], errors=_square_errors("linalg.det"))
add_op("det", minifm.det, torch.det, samples=lambda make: [Sample(make(2, 3, 3))])
add_op("linalg.slogdet", minifm.linalg.slogdet, torch.linalg.slogdet, samples=lambda make: [
    Sample(_wellconditioned(make, 3, 3)), Sample(make(2, 4, 4)), Sample(-_wellconditioned(make, 3, 3))],
    errors=_square_errors("linalg.slogdet"))


def _spread(make, *shape):
    """Matrices whose singular values are spread apart (3, 2, 1.3...): Q1 diag(s) Q2 with
    random orthogonal Q1, Q2, so that svd's gradient is well conditioned."""
    m, n = shape[-2:]
    k = min(m, n)
    q1 = np.linalg.qr(make.rng.standard_normal(shape[:-2] + (m, m)))[0][..., :k]
    q2 = np.linalg.qr(make.rng.standard_normal(shape[:-2] + (n, n)))[0][..., :k, :]
    s = 3.0 / (1.0 + 0.5 * np.arange(k))
    return ((q1 * s) @ q2).astype(make.dtype)


def _gauge_free_svd(svd):
    """svd's outputs as sign-invariant quantities, as PyTorch's own tests compare them:
    U diag(S) Vh, S, and the squares of the first min(m, n) singular vectors."""
    def op(A, *args, **kwargs):
        U, S, Vh = svd(A, *args, **kwargs)
        k = S.shape[-1]
        U, Vh = U[..., :k], Vh[..., :k, :]
        return (U * S[..., None, :]) @ Vh, S, U * U, Vh * Vh
    return op


def _svd_samples(make):
    yield Sample(_spread(make, 4, 3), full_matrices=False)
    yield Sample(_spread(make, 3, 5), full_matrices=False)
    yield Sample(_spread(make, 2, 3, 3))
    yield Sample(_spread(make, 4, 3))                                   # full_matrices=True
    yield Sample(_spread(make, 3, 4).T, full_matrices=False)            # non-contiguous


add_op("linalg.svd", _gauge_free_svd(minifm.linalg.svd), _gauge_free_svd(torch.linalg.svd),
       samples=_svd_samples, errors=lambda make: [
           ErrorCase((make(3),), {}, RuntimeError, r"linalg.svd.*at least 2 dimensions.*\(3,\)")])
add_op("linalg.svdvals", minifm.linalg.svdvals, torch.linalg.svdvals, samples=lambda make: [
    Sample(_spread(make, 4, 3)), Sample(_spread(make, 2, 3, 5)), Sample(_spread(make, 3, 3).T)],
    errors=lambda make: [ErrorCase((make(3).astype(np.int64),), {}, RuntimeError,
                                   "svdvals.*floating.*int64")])


def _svd_norm_samples(make):
    for ord in (2, -2, "nuc"):
        yield Sample(_spread(make, 3, 4), ord)
        yield Sample(_spread(make, 2, 3, 3), ord, keepdim=True)
    yield Sample(_spread(make, 3, 4, 2).transpose(1, 0, 2), "nuc", (0, 2))  # dims not last
    yield Sample(_spread(make, 2, 4, 3), 2, (-1, 1), True)


add_op("linalg.matrix_norm_svd", minifm.linalg.matrix_norm, torch.linalg.matrix_norm,
       samples=_svd_norm_samples)
add_op("linalg.norm_svd", minifm.linalg.norm, torch.linalg.norm, samples=lambda make: [
    Sample(_spread(make, 3, 4), 2), Sample(_spread(make, 4, 3), -2),
    Sample(_spread(make, 2, 3, 3), "nuc", (1, 2))])


def _symmetric(f):
    """f of the symmetric part of A: eigh and cholesky read one triangle, yet give a
    symmetric gradient, as PyTorch's do; finite differences agree on symmetric inputs. Inputs
    that are not square matrices (the error cases) go through unchanged."""
    def op(A, *args, **kwargs):
        if A.ndim >= 2 and A.shape[-1] == A.shape[-2]:
            A = (A + A.transpose(-2, -1)) / 2
        return f(A, *args, **kwargs)
    return op


def _gauge_free_eigh(eigh):
    def op(A, *args, **kwargs):
        L, Q = eigh(A, *args, **kwargs)
        return L, Q * Q, (Q * L[..., None, :]) @ Q.transpose(-2, -1)
    return op


def _spread_symmetric(make, *shape):
    """Symmetric matrices Q diag(l) Q^T with eigenvalues spread apart (-2.5, -1, 0.5, 2...)."""
    n = shape[-1]
    q = np.linalg.qr(make.rng.standard_normal(shape))[0]
    return ((q * (1.5 * np.arange(n) - 2.5)) @ q.swapaxes(-1, -2)).astype(make.dtype)


def _eig_samples(make):
    yield Sample(_spread_symmetric(make, 3, 3))
    yield Sample(_spread_symmetric(make, 2, 4, 4), UPLO="U")
    yield Sample(np.asfortranarray(_spread_symmetric(make, 4, 4)), "L")   # non-contiguous


add_op("linalg.eigh", _symmetric(_gauge_free_eigh(minifm.linalg.eigh)),
       _symmetric(_gauge_free_eigh(torch.linalg.eigh)), samples=_eig_samples)
add_op("linalg.eigh_triangle", _gauge_free_eigh(minifm.linalg.eigh),   # one triangle is read
       _gauge_free_eigh(torch.linalg.eigh), dtypes=(F64,), samples=lambda make: [
           Sample(_spread(make, 3, 3), "U", fd=False), Sample(_spread(make, 3, 3), "L", fd=False)],
       errors=lambda make: [*_square_errors("linalg.eigh")(make),
                            ErrorCase((make(3, 3), "X"), {}, RuntimeError, "eigh.*UPLO.*'L' or 'U'")])
add_op("linalg.eigvalsh", _symmetric(minifm.linalg.eigvalsh), _symmetric(torch.linalg.eigvalsh),
       samples=_eig_samples, errors=lambda make: [
           *_square_errors("linalg.eigvalsh")(make),
           ErrorCase((make(3, 3),), {"UPLO": "u"}, RuntimeError, "eigvalsh.*UPLO.*'L' or 'U'")])


def _positive_definite(make, *shape):
    a = make(*shape)
    return (a @ a.swapaxes(-1, -2) + shape[-1] * np.eye(shape[-1])).astype(make.dtype)


add_op("linalg.cholesky", _symmetric(minifm.linalg.cholesky), _symmetric(torch.linalg.cholesky),
       samples=lambda make: [Sample(_positive_definite(make, 3, 3)),
                             Sample(_positive_definite(make, 2, 4, 4), upper=True),
                             Sample(_positive_definite(make, 1, 1))],
       errors=lambda make: [
           *_square_errors("linalg.cholesky")(make),
           ErrorCase((-_positive_definite(make, 3, 3),), {}, minifm.linalg.LinAlgError,
                     "cholesky.*not positive-definite")])


def _gauge_free_qr(qr):
    """Q and R with R's diagonal made positive (QR is unique up to those signs)."""
    def op(A, *args, **kwargs):
        Q, R = qr(A, *args, **kwargs)
        k = min(R.shape[-2:])
        signs = R.diagonal(0, -2, -1).sign()
        return Q[..., :k] * signs[..., None, :], R[..., :k, :] * signs[..., :, None]
    return op


def _qr_samples(make):
    yield Sample(_spread(make, 4, 3))
    yield Sample(_spread(make, 2, 3, 3), mode="complete")
    yield Sample(_spread(make, 3, 5))                                   # wide
    yield Sample(_spread(make, 2, 3, 4), "complete")
    yield Sample(_spread(make, 3, 4).T)                                 # non-contiguous


add_op("linalg.qr", _gauge_free_qr(minifm.linalg.qr), _gauge_free_qr(torch.linalg.qr),
       samples=_qr_samples, errors=lambda make: [
           ErrorCase((make(3),), {}, RuntimeError, r"linalg.qr.*at least 2 dimensions.*\(3,\)"),
           ErrorCase((make(3, 3), "full"), {}, RuntimeError, "qr.*unrecognized mode 'full'")])
add_op("linalg.pinv", minifm.linalg.pinv, torch.linalg.pinv, samples=lambda make: [
    Sample(_spread(make, 4, 3)), Sample(_spread(make, 2, 3, 5)), Sample(_spread(make, 3, 3).T),
    Sample(_spread(make, 4, 4), atol=0.5), Sample(_spread(make, 3, 4), rtol=0.1)],
    errors=lambda make: [
        ErrorCase((make(3),), {}, RuntimeError, r"linalg.pinv.*at least 2 dimensions.*\(3,\)"),
        ErrorCase((make(3, 4),), {"hermitian": True}, RuntimeError, "pinv.*square.*3 by 4")])
add_op("linalg.pinv_hermitian", _symmetric(minifm.linalg.pinv), _symmetric(torch.linalg.pinv),
       samples=lambda make: [Sample(_spread_symmetric(make, 3, 3), hermitian=True),
                             Sample(_spread_symmetric(make, 2, 4, 4), hermitian=True)])
add_op("linalg.qr_r", lambda A: minifm.linalg.qr(A, "r").R.abs(),
       lambda A: torch.linalg.qr(A, "r").R.abs(), differentiable=False,
       samples=lambda make: [Sample(_spread(make, 4, 3)), Sample(_spread(make, 2, 3, 5))])


# ----------------------------------------------------------------------------- nn functions
# (interpolate modes, pad modes, normalize, distances, group/rms/instance norm)
def _interpolate_samples(make):
    x3, x4, x5 = make(2, 2, 5), make(1, 2, 4, 5), make(1, 1, 3, 4, 2)
    for ac in (False, True):
        yield Sample(x4, size=(7, 3), mode="bicubic", align_corners=ac)
        yield Sample(x4, scale_factor=(1.5, 0.7), mode="bicubic", align_corners=ac)
        yield Sample(x4, size=(6, 9), mode="bilinear", align_corners=ac)
        yield Sample(x4, scale_factor=0.6, mode="bilinear", align_corners=ac,
                     recompute_scale_factor=True)
        yield Sample(x3, size=9, mode="linear", align_corners=ac)
        yield Sample(x5, scale_factor=(1.7, 0.5, 2.0), mode="trilinear", align_corners=ac)
    for mode in ("nearest", "nearest-exact", "area"):
        yield Sample(x3, scale_factor=2.5, mode=mode)
        yield Sample(x4, size=(3, 8), mode=mode)
        yield Sample(x5, size=(5, 2, 3), mode=mode)
    yield Sample(make(5, 4, 1, 2).transpose(2, 3, 0, 1), size=(4, 7), mode="bicubic")
    yield Sample(make(0, 2, 3, 3), size=4, mode="bilinear")  # an empty batch


def _interpolate_errors(make):
    x4 = make(1, 1, 4, 4)
    return [
        ErrorCase((x4,), {}, ValueError, "either size or scale_factor"),
        ErrorCase((x4, 3, 2.0), {}, ValueError, "only one of size or scale_factor"),
        ErrorCase((x4, 3), {"mode": "nearest", "align_corners": True}, ValueError,
                  "align_corners option can only be set with the interpolating modes"),
        ErrorCase((x4, 3), {"mode": "bilinear", "recompute_scale_factor": True}, ValueError,
                  "recompute_scale_factor is not meaningful"),
        ErrorCase((x4, (3,)), {}, ValueError, "same number of spatial dimensions"),
        ErrorCase((x4, None, (2, 2, 2)), {}, ValueError, "same number of spatial dimensions"),
        ErrorCase((x4, (3.0, 3)), {}, TypeError, "expected size to be one of int"),
        ErrorCase((x4, 3), {"mode": "linear"}, NotImplementedError,
                  "Got 4D input, but linear mode needs 3D input"),
        ErrorCase((make(1, 1, 4), 3), {"mode": "bicubic"}, NotImplementedError,
                  r"Only 3D, 4D and 5D input.*\(got bicubic\)"),
        ErrorCase((make(4, 4), 3), {}, NotImplementedError, r"Only 3D, 4D and 5D.*\(got 2D\)"),
        ErrorCase((x4, 3), {"mode": "cubic"}, NotImplementedError, r"\(got cubic\)"),
        ErrorCase((x4, 3), {"mode": "nearest", "antialias": True}, ValueError,
                  "Anti-alias option is restricted"),
        ErrorCase((x4, None, 0.1), {"mode": "bilinear"}, RuntimeError,
                  "sizes should be greater than 0"),
        ErrorCase((make(1, 0, 4, 4), 3), {}, RuntimeError, "Non-empty 4D data tensor expected"),
        ErrorCase((x4.astype(np.int64), 3), {"mode": "bilinear"}, NotImplementedError,
                  "not implemented for"),
    ]


add_op("interpolate", F.interpolate, TF.interpolate, samples=_interpolate_samples,
       errors=_interpolate_errors)


def _pad_mode_samples(make):
    for mode in ("reflect", "replicate", "circular"):
        yield Sample(make(2, 3, 5), (2, 1), mode=mode)
        yield Sample(make(3, 5), (1, 3), mode=mode)                      # (C, W): no batch
        yield Sample(make(2, 2, 4, 3), (1, 2, 2, 0), mode=mode)
        yield Sample(make(2, 4, 3), (0, 1, 3, 1), mode=mode)            # (C, H, W)
        yield Sample(make(1, 2, 3, 2, 4), (1, 1, 0, 1, 2, 1), mode=mode)
        yield Sample(make(2, 3, 5), (-1, 2), mode=mode)                  # crop and pad
        yield Sample(make(3, 4, 2).transpose(2, 0, 1), (1, 2, 1, 1), mode=mode)  # non-contiguous
    yield Sample(make(0, 2, 3), (2, 2), mode="reflect")                  # an empty batch
    yield Sample(make(2, 3, 2), (4, 5), mode="replicate")                # wider than the input


def _pad_mode_errors(make):
    x3 = make(2, 3, 5)
    return [
        ErrorCase((x3, (1, 2, 3)), {}, RuntimeError, "Padding length must be divisible by 2"),
        ErrorCase((x3, (1,) * 8), {}, RuntimeError, "less than or equal to two times"),
        ErrorCase((x3, (5, 1)), {"mode": "reflect"}, RuntimeError,
                  r"Padding size should be less than the corresponding input dimension.*\(5, 1\)"),
        ErrorCase((x3, (6, 1)), {"mode": "circular"}, RuntimeError,
                  "wrapping around more than once"),
        ErrorCase((x3, (-3, -3)), {"mode": "replicate"}, RuntimeError, "too small"),
        ErrorCase((x3, (1, 1)), {"mode": "reflect", "value": 1.0}, RuntimeError,
                  "doesn't take in value argument"),
        ErrorCase((make(2, 3, 4, 5), (1, 1)), {"mode": "reflect"}, NotImplementedError,
                  "Padding size 2 is not supported for 4D input"),
        ErrorCase((make(5), (1, 1)), {"mode": "replicate"}, NotImplementedError,
                  "Padding size 2 is not supported for 1D input"),
        ErrorCase((x3, (1, 1)), {"mode": "wrap"}, NotImplementedError,
                  "Unrecognised padding mode wrap"),
        ErrorCase((make(2, 0, 5), (1, 1)), {"mode": "reflect"}, RuntimeError,
                  "other non-zero dimensions"),
        ErrorCase((x3, (-4, -2)), {}, RuntimeError, "negative output size"),
        ErrorCase((x3, (2, -6)), {}, RuntimeError, "narrow.*length must be non-negative"),
    ]


add_op("pad_modes", F.pad, TF.pad, samples=_pad_mode_samples, errors=_pad_mode_errors,
       dtypes=FLOATS + (I64,))


def _normalize_samples(make):
    yield Sample(make(3, 4))
    yield Sample(make(2, 3, 4), p=1.0, dim=-1)
    yield Sample(make(2, 3, 4), p=3.0, dim=0, eps=0.1)
    yield Sample(make(4, 3).T, p=float("inf"))                      # non-contiguous
    yield Sample(make(5), dim=0)


def _cosine_samples(make):
    yield Sample(make(3, 4), make(3, 4))
    yield Sample(make(3, 1, 4), make(5, 4), dim=-1)                 # broadcast
    yield Sample(make(2, 3), make(2, 3), dim=0, eps=0.5)            # norms under eps
    yield Sample(make(4, 3).T, make(3, 4), fd=False)                # non-contiguous
    yield Sample(make(5), make(5), dim=0)


def _pairwise_samples(make):
    yield Sample(make(3, 4), make(3, 4))
    yield Sample(make(3, 1, 4), make(5, 4), keepdim=True)           # broadcast
    yield Sample(make(3, 4), make(3, 4), p=1.0, eps=0.0)
    yield Sample(make(3, 4), make(3, 4), p=3.0)
    yield Sample(make(2, 4), make(2, 4), p=float("inf"))
    yield Sample(make(4, 3).T, make(3, 4))                          # non-contiguous


add_op("normalize", F.normalize, TF.normalize, samples=_normalize_samples,
       errors=lambda make: [ErrorCase((make(2, 3),), {"dim": 2}, IndexError, "out of range")])
add_op("cosine_similarity", F.cosine_similarity, TF.cosine_similarity, samples=_cosine_samples,
       errors=lambda make: [
           ErrorCase((make(3, 4), make(2, 4)), {}, RuntimeError, shapes_msg((3, 4), (2, 4))),
           ErrorCase((make(3, 4), make(3, 4)), {"dim": 2}, IndexError, "out of range")])
add_op("pairwise_distance", F.pairwise_distance, TF.pairwise_distance,
       samples=_pairwise_samples, errors=lambda make: [
           ErrorCase((make(3, 4), make(2, 4)), {}, RuntimeError, shapes_msg((3, 4), (2, 4)))])
add_op("pdist", F.pdist, TF.pdist, samples=lambda make: [
    Sample(make(4, 3)), Sample(make(5, 2), p=1.0), Sample(make(3, 4), p=3.0),
    Sample(make(3, 4).T, p=float("inf")), Sample(make(1, 3))],  # (0, M): PyTorch's backward crashes
    second_order=False, errors=lambda make: [  # PyTorch: no derivative of _pdist_backward
        ErrorCase((make(3),), {}, RuntimeError, "pdist only supports 2D tensors, got: 1D"),
        ErrorCase((make(3, 2),), {"p": -1.0}, RuntimeError, "non-negative p")])


def _group_norm_samples(make):
    yield Sample(make(2, 6, 4), 3)
    yield Sample(make(2, 6, 3, 2), 2, make(6), make(6), eps=0.1)
    yield Sample(make(3, 4), 2, make(4), None)                       # (N, C), weight only
    yield Sample(make(2, 5, 4).transpose(0, 2, 1), 1, make(4), make(4))  # non-contiguous


def _rms_norm_samples(make):
    yield Sample(make(2, 3, 4), (4,))
    yield Sample(make(2, 3, 4), [3, 4], make(3, 4), eps=0.1)
    yield Sample(make(5, 4).T, (5,), make(5))                       # non-contiguous
    yield Sample(make(0, 3), (3,))


def _instance_norm_samples(make):
    yield Sample(make(2, 3, 5))
    yield Sample(make(2, 3, 4, 2), weight=make(3), bias=make(3), eps=0.01)
    yield Sample(make(1, 2, 3, 2, 2), weight=make(2))
    yield Sample(make(3, 4, 2).transpose(2, 0, 1), None, None, make(3), make(3))  # non-contiguous


add_op("group_norm", F.group_norm, TF.group_norm, samples=_group_norm_samples,
       errors=lambda make: [
           ErrorCase((make(2, 6, 4), 4), {}, RuntimeError,
                     r"divisible by num_groups.*\[2, 6, 4\] and num_groups=4"),
           ErrorCase((make(6), 2), {}, RuntimeError, "Expected at least 2 dimensions"),
           ErrorCase((make(1, 2, 1), 2), {}, ValueError, "more than 1 value per channel"),
           ErrorCase((make(2, 6, 4), 3, make(3)), {}, RuntimeError,
                     r"weight to be a vector of size equal to the number of channels")])
add_op("rms_norm", F.rms_norm, TF.rms_norm, samples=_rms_norm_samples, errors=lambda make: [
    ErrorCase((make(2, 6, 4), [3]), {}, RuntimeError, r"normalized_shape=\[3\]"),
    ErrorCase((make(2, 6, 4), [4], make(3)), {}, RuntimeError,
              r"weight to be of same shape as normalized_shape")])
add_op("instance_norm", F.instance_norm, TF.instance_norm, samples=_instance_norm_samples,
       errors=lambda make: [
           ErrorCase((make(2, 3, 1),), {}, ValueError, "more than 1 spatial element"),
           ErrorCase((make(2, 6, 4), np.zeros(5, np.float32), np.ones(5, np.float32)), {},
                     RuntimeError, "running_mean should contain 12 elements not 10"),
           ErrorCase((make(2, 6, 4),), {"use_input_stats": False}, RuntimeError,
                     "running_mean and running_var to be defined")])
add_op("local_response_norm", F.local_response_norm, TF.local_response_norm,
       samples=lambda make: [
           Sample(make(2, 5, 4), 3), Sample(make(2, 6, 3, 2), 2, alpha=0.3, beta=0.8, k=1.5),
           Sample(make(1, 4, 2, 2, 3), 5, alpha=0.5), Sample(make(3, 4, 2).transpose(2, 0, 1), 4),
           Sample(make(0, 3, 4), 2)],
       errors=lambda make: [ErrorCase((make(3, 4), 2), {}, ValueError,
                                      "Expected 3D or higher dimensionality input")])


def _gqa_samples(make):
    yield Sample(make(2, 4, 3, 4), make(2, 2, 5, 4), make(2, 2, 5, 3))
    yield Sample(make(1, 6, 3, 2), make(1, 3, 3, 2), make(1, 2, 3, 2), is_causal=True)
    yield Sample(make(4, 3, 2), make(1, 3, 2), make(4, 3, 2))      # (H, L, E): no batch
    yield Sample(make(2, 2, 3, 4), make(2, 2, 3, 4), make(2, 2, 3, 4),
                 attn_mask=make.mask(3, 3))                         # equal heads: unchanged


add_op("scaled_dot_product_attention_gqa",
       lambda *a, **k: F.scaled_dot_product_attention(*a, enable_gqa=True, **k),
       lambda *a, **k: TF.scaled_dot_product_attention(*a, enable_gqa=True, **k),
       samples=_gqa_samples, second_order=False,  # PyTorch: no derivative of its CPU backward
       errors=lambda make: [
           ErrorCase((make(2, 6, 3, 4), make(2, 4, 3, 4), make(2, 4, 3, 4)), {}, RuntimeError,
                     "Number of heads in key and value must divide the number of heads"),
           ErrorCase((make(3, 4), make(3, 4), make(3, 4)), {}, IndexError, "out of range")])


# ----------------------------------------------------------------------------- conv and pooling, 1-d/3-d
# Odd sizes throughout: prime widths, stride 2 over odd inputs, dilation, groups, padding,
# unbatched, non-contiguous and empty-batch inputs. Max pooling samples have no ties.
def _conv_samples(nd, transposed):
    def samples(make):
        def weight(c_in, c_out, groups, *kernel):
            shape = (c_in, c_out // groups) if transposed else (c_out, c_in // groups)
            return make(*shape, *kernel)
        odd = (7, 5, 3)[:nd][::-1] if nd > 1 else (11,)
        x = make(2, 4, *odd)
        yield Sample(x, weight(4, 6, 1, *(3,) * nd), make(6), stride=2, padding=1)
        yield Sample(x, weight(4, 6, 2, *(2, 3, 1)[:nd]), None, groups=2, dilation=2)
        yield Sample(x[0], weight(4, 2, 1, *(1,) * nd), make(2))           # unbatched, 1x1
        yield Sample(make(*odd[::-1], 4, 2).T, weight(4, 4, 4, *(3,) * nd), None, groups=4,
                     padding=2)                                               # non-contiguous
        yield Sample(make(0, 4, *odd), weight(4, 2, 1, *(2,) * nd), None)    # empty batch
        if transposed:
            yield Sample(x[:1], weight(4, 2, 1, *(3,) * nd), make(2), stride=(3, 2, 2)[:nd],
                         padding=1, output_padding=(2, 1, 0)[:nd])
            # no bias: PyTorch's float32 bias gradient over this many outputs drifts past the
            # tolerance (minifm's pairwise sum is the closer to the float64 sum)
            yield Sample(x, weight(4, 6, 2, *(2,) * nd), None, stride=2, dilation=3,
                         output_padding=1, groups=2)
        else:
            yield Sample(x, weight(4, 3, 1, *(2, 3, 4)[:nd]), make(3), padding="same",
                         dilation=(2, 1, 1)[:nd])
            yield Sample(x, weight(4, 3, 1, *(3,) * nd), make(3), padding="valid",
                         stride=(2, 3, 1)[:nd])
    return samples


def _conv_errors(op, nd, transposed):
    def errors(make):
        x = make(1, 3, *(5,) * nd)
        w = make(3, 4, *(3,) * nd) if transposed else make(4, 3, *(3,) * nd)
        cases = [
            ErrorCase((make(2, 4, *(5,) * nd), w), {}, RuntimeError,
                      "4 channels, but weight of shape" if not transposed else "expects 4"),
            ErrorCase((x, make(4, 3, *(3,) * (nd - 1))), {}, RuntimeError,
                      f"expected a {nd + 2}-D weight"),
            ErrorCase((make(5),), {"weight": w}, RuntimeError, f"expected a {nd + 1}-D"),
            ErrorCase((x, w), {"stride": 0}, RuntimeError, "stride must be >= 1"),
            ErrorCase((x, w), {"groups": 2}, RuntimeError, "divisible by groups=2"),
            ErrorCase((x, w.astype(np.float64)), {}, TypeError, "must have the same dtype"),
        ]
        if transposed:
            cases[0] = ErrorCase((make(1, 3, *(5,) * nd), make(4, 2, *(3,) * nd)), {},
                                 RuntimeError, "has 3 channels, but weight .* expects 4")
            cases.append(ErrorCase((make(1, 4, *(5,) * nd), make(4, 2, *(3,) * nd)),
                                   {"stride": 2, "output_padding": 2}, RuntimeError,
                                   "output_padding .* must be smaller than either stride"))
            cases.append(ErrorCase((make(1, 4, *(1,) * nd), make(4, 2, *(1,) * nd)),
                                   {"padding": 1}, RuntimeError, "empty output"))
        else:
            cases.append(ErrorCase((make(1, 3, *(2,) * nd), w), {}, RuntimeError,
                                   r"spans 3 along \w, more than the padded input"))
            cases.append(ErrorCase((x, w), {"stride": 2, "padding": "same"}, RuntimeError,
                                   "padding='same' is not supported for strided"))
            cases.append(ErrorCase((x, w), {"stride": (1,) * (nd + 1)}, RuntimeError,
                                   f"stride must be an int or a tuple of {nd} ints"))
        return cases
    return errors


for _nd in (1, 3):
    add_op(f"conv{_nd}d", getattr(F, f"conv{_nd}d"), getattr(TF, f"conv{_nd}d"),
           samples=_conv_samples(_nd, False), errors=_conv_errors(f"conv{_nd}d", _nd, False))
    add_op(f"conv_transpose{_nd}d", getattr(F, f"conv_transpose{_nd}d"),
           getattr(TF, f"conv_transpose{_nd}d"), samples=_conv_samples(_nd, True),
           errors=_conv_errors(f"conv_transpose{_nd}d", _nd, True))


def _max_pool_samples(nd):
    def samples(make):
        odd = (7, 6, 5)[:nd][::-1] if nd > 1 else (11,)
        x = make.distinct(2, 3, *odd)
        yield Sample(x, 3, 2, 1, fd=False)
        yield Sample(x, 3, 2, 1, ceil_mode=True, return_indices=True)
        yield Sample(x, (2, 3, 2)[:nd], (1, 2, 3)[:nd], dilation=(2, 1, 1)[:nd])
        yield Sample(x[1], 2, return_indices=True)                             # unbatched
        yield Sample(make.distinct(*odd[::-1], 3, 2).T, 2, 1, ceil_mode=True)   # non-contiguous
        yield Sample(make(0, 3, *odd), 2)                                       # empty batch
    return samples


def _pool_errors(op, nd):
    def errors(make):
        return [
            ErrorCase((make(1, 1, *(5,) * nd), 2), {"padding": 2}, RuntimeError,
                      "at most half of the effective kernel"),
            ErrorCase((make(1, 1, *(2,) * nd), 3), {}, RuntimeError, "is too small for kernel"),
            ErrorCase((make(5), 2), {}, RuntimeError, f"{op}: expected a {nd + 1}-D"),
            ErrorCase((make(1, 1, *(4,) * nd).astype(np.int64), 2), {}, TypeError,
                      "expected a floating point input"),
        ]
    return errors


for _nd in (1, 3):
    add_op(f"max_pool{_nd}d", getattr(F, f"max_pool{_nd}d"), getattr(TF, f"max_pool{_nd}d"),
           samples=_max_pool_samples(_nd), errors=_pool_errors(f"max_pool{_nd}d", _nd))
add_op("max_pool2d_return_indices", F.max_pool2d, TF.max_pool2d,
       samples=lambda make: [Sample(make.distinct(2, 3, 7, 5), 3, 2, 1, ceil_mode=True,
                                    return_indices=True),
                             Sample(make.distinct(3, 8, 9), (2, 3), dilation=(2, 1),
                                    return_indices=True)])


def _avg_pool_samples(nd):
    def samples(make):
        odd = (7, 6, 5)[:nd][::-1] if nd > 1 else (11,)
        x = make(2, 3, *odd)
        yield Sample(x, 3, 2, 1)
        yield Sample(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        yield Sample(x[0], (2, 3, 2)[:nd], (1, 2, 3)[:nd], ceil_mode=True)   # unbatched
        yield Sample(make(*odd[::-1], 3, 2).T, 2, 1, 1)                      # non-contiguous
        yield Sample(make(0, 3, *odd), 2)                                    # empty batch
        yield Sample(make(2, 3, *(6, 4, 2)[:nd]), 2)                         # tiling windows
        if nd == 3:
            yield Sample(x, 3, 2, 1, divisor_override=5)
    return samples


for _nd in (1, 3):
    add_op(f"avg_pool{_nd}d", getattr(F, f"avg_pool{_nd}d"), getattr(TF, f"avg_pool{_nd}d"),
           samples=_avg_pool_samples(_nd), errors=_pool_errors(f"avg_pool{_nd}d", _nd))


def _adaptive_samples(nd, distinct):
    def samples(make):
        new = make.distinct if distinct else make
        odd = (7, 6, 5)[:nd][::-1] if nd > 1 else (11,)
        x = new(2, 3, *odd)
        yield Sample(x, (4, 2, 3)[:nd])             # overlapping, unequal windows
        yield Sample(x, 1)                          # global
        yield Sample(x[0], (13, 3, 1)[:nd])         # unbatched; larger than the input
        yield Sample(new(*odd[::-1], 3, 2).T, 3)    # non-contiguous
        if nd > 1:
            yield Sample(x, (None, 2, None)[:nd])   # None keeps a size
        if distinct:
            yield Sample(x, (3, 4, 2)[:nd], return_indices=True)
    return samples


def _adaptive_errors(op, nd):
    def errors(make):
        return [ErrorCase((make(1, 1, *(4,) * nd), (2,) * (nd + 1)), {}, RuntimeError,
                          f"{op}: output_size must be an int or a tuple of {nd}"),
                ErrorCase((make(1, 1, *(4,) * nd), -1), {}, RuntimeError,
                          "non-negative ints|must be >= 0")]
    return errors


for _name, _nd, _distinct in [("adaptive_avg_pool1d", 1, False), ("adaptive_avg_pool3d", 3, False),
                              ("adaptive_max_pool1d", 1, True), ("adaptive_max_pool2d", 2, True)]:
    add_op(_name, getattr(F, _name), getattr(TF, _name), samples=_adaptive_samples(_nd, _distinct),
           errors=_adaptive_errors(_name, _nd))


def _unpool_samples(nd):
    def samples(make):
        pool = TF.max_pool1d if nd == 1 else TF.max_pool2d
        odd = (7, 5) if nd == 2 else (11,)
        # non-overlapping windows: an index held by two windows would make the output's
        # value depend on the write order (and its gradient undefined)
        for kernel, stride, padding, output_size in [(3, 3, 1, odd), (2, None, 0, odd),
                                                     (2, 2, 0, (1, 3) + odd)]:
            _, i = pool(torch.from_numpy(make.distinct(2, 3, *odd)), kernel, stride, padding,
                        return_indices=True)
            yield Sample(make(*i.shape), i.numpy(), kernel, stride, padding, output_size)
            yield Sample(make(*i.shape[1:]), i[0].numpy(), kernel, stride, padding,
                         odd)  # unbatched
    return samples


def _unpool_errors(op, nd):
    def errors(make):
        x = make(1, 1, *(2,) * nd)
        return [
            ErrorCase((x, np.zeros((1, 1, *(2,) * (nd - 1), 3), np.int64), 2), {}, RuntimeError,
                      "expected indices of the input's shape"),
            ErrorCase((x, np.full(x.shape, 4 ** nd, np.int64), 2), {}, RuntimeError,
                      "invalid max index"),
            ErrorCase((x, np.zeros(x.shape, np.int64), 2), {"output_size": (7,) * nd}, ValueError,
                      r"invalid output_size .* \(dim 0 must be between 2 and 6\)"),
        ]
    return errors


for _nd in (1, 2):
    add_op(f"max_unpool{_nd}d", getattr(F, f"max_unpool{_nd}d"), getattr(TF, f"max_unpool{_nd}d"),
           samples=_unpool_samples(_nd), errors=_unpool_errors(f"max_unpool{_nd}d", _nd))
# ----------------------------------------------------------------------------- nn extras
# The in-place activations act on x * 1 (a leaf that requires grad is refused in place, as
# in PyTorch), so the gradient passes through the in-place commit back to x.
def _inplace_entry(name, fn, ref, low=-2.0, high=2.0, away=0.05, **kw):
    add_op(name, lambda x: fn(x * 1), lambda x: ref(x * 1), samples=lambda make: [
        Sample(make(3, 4, low=low, high=high, away=away)),
        Sample(make(2, 3, 2, low=low, high=high, away=away).transpose(2, 0, 1)),
        Sample(np.array(make(1, low=low, high=high, away=away)[0]))], **kw)


_inplace_entry("relu_", F.relu_, TF.relu_)
_inplace_entry("elu_", lambda x: F.elu_(x, 0.5), lambda x: TF.elu_(x, 0.5))
_inplace_entry("leaky_relu_", lambda x: F.leaky_relu_(x, 0.2), lambda x: TF.leaky_relu_(x, 0.2))
_inplace_entry("hardtanh_", lambda x: F.hardtanh_(x, -0.5, 1.5),
               lambda x: TF.hardtanh_(x, -0.5, 1.5))
_inplace_entry("selu_", F.selu_, TF.selu_)
_inplace_entry("celu_", lambda x: F.celu_(x, 0.7), lambda x: TF.celu_(x, 0.7))
_inplace_entry("threshold_", lambda x: F.threshold_(x, 0.5, -1.0),
               lambda x: TF.threshold_(x, 0.5, -1.0))
_inplace_entry("rrelu_eval_", F.rrelu_, TF.rrelu_)
for _name in ("relu6", "silu", "mish", "hardswish", "hardsigmoid"):
    _inplace_entry(f"{_name}_inplace", lambda x, f=getattr(F, _name): f(x, inplace=True),
                   lambda x, f=getattr(TF, _name): f(x, inplace=True), low=-5, high=5,
                   second_order=_name != "hardsigmoid")
unary("hardshrink", F.hardshrink, TF.hardshrink, away=0.05)
unary("hardshrink_lambd", lambda x: F.hardshrink(x, 1.0), lambda x: TF.hardshrink(x, 1.0),
      op_name="hardshrink", low=-3, high=3, away=0.05)
unary("softshrink", lambda x: F.softshrink(x, 0.3), lambda x: TF.softshrink(x, 0.3), away=0.05)
add_op("softshrink_negative", lambda x: F.softshrink(x, -1.0), lambda x: TF.softshrink(x, -1.0),
       samples=lambda make: [], errors=lambda make: [
           ErrorCase((make(3),), {}, RuntimeError, "softshrink.*lambda must be greater or equal to 0")])
unary("tanhshrink", F.tanhshrink, TF.tanhshrink)
unary("rrelu_eval", lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3), away=0.05,
      op_name="rrelu")
for _nd in (1, 2, 3):
    _pool_with = f"max_pool{_nd}d_with_indices"
    add_op(_pool_with, lambda x, k, f=getattr(F, _pool_with): f(x, k)[0],
           lambda x, k, f=getattr(TF, _pool_with): f(x, k)[0],
           samples=lambda make, nd=_nd: [Sample(make.distinct(2, 3, *(4,) * nd), 2),
                                         Sample(make.distinct(3, *(5,) * nd), 3)])
for _nd in (1, 2):
    _pool_with = f"adaptive_max_pool{_nd}d_with_indices"
    add_op(_pool_with, lambda x, s, f=getattr(F, _pool_with): f(x, s)[0],
           lambda x, s, f=getattr(TF, _pool_with): f(x, s)[0],
           samples=lambda make, nd=_nd: [Sample(make.distinct(2, 3, *(7,) * nd), 3)])


def _loss_entry(name, samples, target_at=None, errors=None, **kw):
    """A loss over reductions none/mean/sum; the argument at target_at, if given, is detached
    (PyTorch refuses a gradient for that target)."""
    def call(lib_f):
        def f(*args, reduction="mean", **kwargs):
            args = list(args)
            if target_at is not None:
                args[target_at] = args[target_at].detach()
            return getattr(lib_f, name)(*args, reduction=reduction, **kwargs)
        return f

    def all_reductions(make):
        for s in samples(make):
            for reduction in ("none", "mean", "sum"):
                yield Sample(*s.args, fd=s.fd, reduction=reduction, **s.kwargs)
    add_op(name, call(F), call(TF), samples=all_reductions, errors=errors, **kw)


def _signs(make, *shape):
    return np.where(make.mask(*shape), 1.0, -1.0).astype(make.dtype)


_loss_entry("huber_loss", lambda make: [
    Sample(make(4, 5), make(4, 5), delta=0.5, fd=False),
    Sample(make(4, 5, low=-0.4, high=0.4), make(4, 5, low=-0.4, high=0.4)),
    Sample(make(3, 4), make(3, 4), delta=2.0, weight=make(3, 4, low=0.1, high=1))],
    errors=lambda make: [ErrorCase((make(3), make(3)), {"delta": 0.0}, RuntimeError,
                                   "huber_loss.*non-positive values for delta")])
_loss_entry("margin_ranking_loss", lambda make: [
    Sample(make(6), make(6), _signs(make, 6), margin=0.1, fd=False),
    Sample(make(6), make(6), _signs(make, 6))],
    errors=lambda make: [ErrorCase((make(3), make(3, 1), make(3)), {}, RuntimeError,
                                   "margin_ranking_loss.*same dimension")])
_loss_entry("hinge_embedding_loss", lambda make: [
    Sample(make(4, 5, away=0.1), _signs(make, 4, 5), margin=0.5, fd=False),
    Sample(make(4, 5), _signs(make, 4, 5), fd=False)])
_loss_entry("soft_margin_loss", lambda make: [
    Sample(make(4, 5), _signs(make, 4, 5), fd=False), Sample(make(7), _signs(make, 7), fd=False)],
    1)
_loss_entry("cosine_embedding_loss", lambda make: [
    Sample(make(4, 5), make(4, 5), _signs(make, 4), fd=False),
    Sample(make(4, 5), make(4, 5), _signs(make, 4), margin=0.2, fd=False),
    Sample(make(5), make(5), np.array(1.0, make.dtype))],
    errors=lambda make: [ErrorCase((make(3, 4), make(3, 4), make(3, 1)), {}, RuntimeError,
                                   "cosine_embedding_loss.*multi-target not supported")])
_loss_entry("triplet_margin_loss", lambda make: [
    Sample(make(4, 5), make(4, 5), make(4, 5), fd=False),
    Sample(make(4, 5), make(4, 5), make(4, 5), margin=2.0, p=1, fd=False),
    Sample(make(4, 5), make(4, 5), make(4, 5), swap=True, fd=False)],
    errors=lambda make: [ErrorCase((make(3, 4), make(3, 4), make(4)), {}, RuntimeError,
                                   "triplet_margin_loss.*same number of dimensions")])
_loss_entry("poisson_nll_loss", lambda make: [
    Sample(make(4, 5), make(4, 5, low=0, high=4)),
    Sample(make(4, 5, low=0.2, high=2), make(4, 5, low=0, high=4), log_input=False),
    Sample(make(4, 5), make(4, 5, low=0, high=4), full=True)])
_loss_entry("gaussian_nll_loss", lambda make: [
    Sample(make(4, 5), make(4, 5), make(4, 5, low=0.1, high=2)),
    Sample(make(4, 5), make(4, 5), make(4, 1, low=0.1, high=2), full=True),
    Sample(make(4, 5), make(4, 5), make(4, low=0.1, high=2))],
    errors=lambda make: [
        ErrorCase((make(4, 5), make(4, 5), make(3, low=0.1, high=1)), {}, ValueError,
                  "var is of incorrect size"),
        ErrorCase((make(4, 5), make(4, 5), make(4, 5, low=-2, high=-1)), {}, ValueError,
                  "var has negative entry")])
_loss_entry("multilabel_soft_margin_loss", lambda make: [
    Sample(make(4, 5), make.mask(4, 5).astype(make.dtype)),
    Sample(make(4, 5), make.mask(4, 5).astype(make.dtype), weight=make(5, low=0.1, high=1))])
