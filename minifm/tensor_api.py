"""Tensor's methods and operators: the map from PyTorch's Tensor API to minifm's ops.

`tensor.py` defines the Tensor's storage and metadata and imports nothing above it, so that
autograd and every op can import it. The methods that need the ops or the engine are given
to the class here, once, when `minifm` is imported: the methods written below with `def`,
then the table `METHODS`, which names each method and the op function that implements it
(`x.sum(1)` is `ops.reduce.sum(x, 1)`). Reading down this file lists the whole Tensor API.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import backend
from .autograd.engine import gradients_of, run_backward, seed_for
from .creation import full, tensor
from .dims import size_args
from .hooks import RemovableHandle
from .ops import activation as act
from .ops import decompositions as dec
from .ops import elementwise as ew
from .ops import index as ix
from .ops import inplace as ip
from .ops import linalg as la
from .ops import random as rnd
from .ops import reduce as red
from .ops import shape as sh
from .tensor import Tensor


# ----------------------------------------------------------------------------- autograd
def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's .grad (PyTorch's signature). With
    create_graph=True the gradients are Tensors in a graph of their own, so they can be
    differentiated again; retain_graph defaults to create_graph."""
    retain_graph = create_graph if retain_graph is None else bool(retain_graph)
    seed = seed_for(self, gradient, "backward", create_graph)
    if inputs is not None:
        grads = gradients_of([self], [seed], list(inputs), retain_graph, create_graph)
        for t, g in zip(inputs, grads):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    run_backward([self], [seed], retain_graph, create_graph)


def retain_grad(self):
    """Keep .grad for this non-leaf tensor after backward (leaves always keep theirs)."""
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self.grad_fn is not None:
        self.grad_fn.retained = weakref.ref(self)


def register_hook(self, hook):
    """hook(grad) -> Tensor or None, called with this tensor's gradient during backward;
    a returned tensor replaces the gradient. Returns a handle with .remove()."""
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is None:
        self._hooks = hooks = self._hooks or []
    else:
        self.grad_fn.hooks = hooks = self.grad_fn.hooks or []
    hooks.append(hook)
    return RemovableHandle(hooks, hook)


# ----------------------------------------------------------------------------- dtype, device
def _is_dtype_name(arg):
    if isinstance(arg, backend.device):
        return False
    try:
        np.dtype(arg)
        return True
    except TypeError:
        return False


def to(self, *args, **kwargs):
    """to(device), to(dtype), to(device, dtype) or to(other_tensor), differentiably."""
    dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    for arg in args:
        if isinstance(arg, Tensor):
            dev, dtype = arg.device, arg.dtype
        elif isinstance(arg, (str, backend.device)) and not _is_dtype_name(arg):
            dev = arg
        else:
            dtype = arg
    out = self
    if dtype is not None:
        out = ew.to_dtype(out, np.dtype(dtype))
    if dev is not None:
        out = ew.to_device(out, backend.as_device(dev))
    return out


def _to(target):
    """A method that calls `to(target)`, for x.float(), x.long(), x.cpu()..."""
    method = lambda self: to(self, target)  # noqa: E731
    method.__doc__ = f"self.to({target!r})"
    return method


def cuda(self, device=None):
    return to(self, backend.device("cuda", device))


# ----------------------------------------------------------------------------- new tensors
def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    """A new tensor with this one's dtype and device unless given (Tensor.new_tensor)."""
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    return new_full(self, size_args(size), 0, dtype, device, requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return new_full(self, size_args(size), 1, dtype, device, requires_grad)


_numpy = Tensor.numpy  # tensor.py's: the array itself, refused when it needs grad or a GPU


def numpy(self, *, force=False):
    """The tensor's array (shared with it, not a copy). force=True first detaches it and
    copies it to the host if it is on a GPU (PyTorch's numpy(force=True)), so that it
    works for any tensor."""
    return _numpy(self.detach().cpu() if force else self)


# ----------------------------------------------------------------------------- printing
def __format__(self, spec):
    """f"{loss:.4f}": a 0-d tensor formats as its Python number; other tensors take only the
    empty spec (PyTorch's rule)."""
    if self.ndim == 0:
        return format(self.item(), spec)
    return object.__format__(self, spec)


def _reflected(op):
    """b (op) a for a reflected operator a.__rop__(b) (b a Python scalar)."""
    method = lambda self, other: op(other, self)  # noqa: E731
    method.__doc__ = f"{op.__name__}(other, self)"
    return method


# ----------------------------------------------------------------------------- the table
METHODS = {
    # autograd, dtype and device
    "backward": backward, "retain_grad": retain_grad, "register_hook": register_hook,
    "clone": ew.clone, "to": to, "cuda": cuda, "cpu": _to("cpu"),
    "float": _to(backend.float32), "double": _to(backend.float64), "half": _to(backend.float16),
    "long": _to(backend.int64), "int": _to(backend.int32), "bool": _to(backend.bool_),
    "type_as": lambda self, other: to(self, other.dtype),
    "new_tensor": new_tensor, "new_full": new_full, "new_zeros": new_zeros,
    "new_ones": new_ones, "new_empty": new_zeros,
    # arithmetic and operators
    "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow,
    "neg": ew.neg, "abs": ew.abs, "exp": ew.exp, "log": ew.log, "log1p": ew.log1p,
    "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "sin": ew.sin, "cos": ew.cos, "square": ew.square,
    "clamp": ew.clamp, "clip": ew.clamp, "maximum": ew.maximum, "minimum": ew.minimum,
    "masked_fill": ew.masked_fill, "where": lambda self, cond, other: ew.where(cond, self, other),
    "sign": ew.sign, "reciprocal": ew.reciprocal,
    "tan": ew.tan, "asin": ew.asin, "acos": ew.acos, "atan": ew.atan, "atan2": ew.atan2,
    "arcsin": ew.asin, "arccos": ew.acos, "arctan": ew.atan, "arctan2": ew.atan2,
    "sinh": ew.sinh, "cosh": ew.cosh, "asinh": ew.asinh, "acosh": ew.acosh, "atanh": ew.atanh,
    "arcsinh": ew.asinh, "arccosh": ew.acosh, "arctanh": ew.atanh,
    "erf": ew.erf, "erfc": ew.erfc, "erfinv": ew.erfinv, "exp2": ew.exp2, "expm1": ew.expm1,
    "log2": ew.log2, "log10": ew.log10, "frac": ew.frac, "fmod": ew.fmod,
    "remainder": ew.remainder, "copysign": ew.copysign, "lerp": ew.lerp, "hypot": ew.hypot,
    "logaddexp": ew.logaddexp, "logaddexp2": ew.logaddexp2, "xlogy": ew.xlogy,
    "nan_to_num": ew.nan_to_num,
    "__add__": ew.add, "__radd__": _reflected(ew.add),
    "__sub__": ew.sub, "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul, "__rmul__": _reflected(ew.mul),
    "__truediv__": ew.div, "__rtruediv__": _reflected(ew.div),
    "__pow__": ew.pow, "__rpow__": _reflected(ew.pow),
    "__mod__": ew.remainder, "__rmod__": _reflected(ew.remainder),
    "__floordiv__": ew.floor_divide, "__rfloordiv__": _reflected(ew.floor_divide),
    "__neg__": ew.neg, "__abs__": ew.abs, "__pos__": lambda a: a,
    "__matmul__": la.matmul, "__rmatmul__": _reflected(la.matmul),
    "matmul": la.matmul, "mm": la.mm, "bmm": la.bmm, "mv": la.mv, "dot": la.dot,
    "vdot": la.vdot, "outer": la.outer, "ger": la.outer, "addmm": la.addmm, "addmv": la.addmv,
    "addbmm": la.addbmm, "baddbmm": la.baddbmm, "cross": la.cross, "det": dec.det,
    "inverse": dec.inv, "slogdet": dec.slogdet,
    "addmm_": ip._inplace("addmm_", la.addmm), "addmv_": ip._inplace("addmv_", la.addmv),
    "addbmm_": ip._inplace("addbmm_", la.addbmm),
    "baddbmm_": ip._inplace("baddbmm_", la.baddbmm),
    # comparisons and logic (no gradient)
    "eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt, "ge": ew.ge,
    "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le,
    "__gt__": ew.gt, "__ge__": ew.ge,
    "logical_and": ew.logical_and, "logical_or": ew.logical_or,
    "logical_xor": ew.logical_xor, "logical_not": ew.logical_not,
    "isnan": ew.isnan, "isinf": ew.isinf, "isfinite": ew.isfinite, "isposinf": ew.isposinf,
    "isneginf": ew.isneginf, "isclose": ew.isclose,
    "floor": ew.floor, "ceil": ew.ceil, "round": ew.round, "trunc": ew.trunc, "fix": ew.trunc,
    "floor_divide": ew.floor_divide,
    # bitwise, on integer and bool tensors (on bool, & | ^ ~ are the logical ops)
    "bitwise_and": ew.bitwise_and, "bitwise_or": ew.bitwise_or,
    "bitwise_xor": ew.bitwise_xor, "bitwise_not": ew.bitwise_not,
    "bitwise_left_shift": ew.bitwise_left_shift, "bitwise_right_shift": ew.bitwise_right_shift,
    "__and__": ew.bitwise_and, "__rand__": _reflected(ew.bitwise_and),
    "__or__": ew.bitwise_or, "__ror__": _reflected(ew.bitwise_or),
    "__xor__": ew.bitwise_xor, "__rxor__": _reflected(ew.bitwise_xor),
    "__invert__": ew.bitwise_not,
    "__lshift__": ew.bitwise_left_shift, "__rlshift__": _reflected(ew.bitwise_left_shift),
    "__rshift__": ew.bitwise_right_shift, "__rrshift__": _reflected(ew.bitwise_right_shift),
    # activations
    "sigmoid": act.sigmoid, "tanh": act.tanh, "relu": act.relu,
    "softmax": act.softmax, "log_softmax": act.log_softmax,
    "__format__": __format__, "numpy": numpy,
    # reductions
    "sum": red.sum, "mean": red.mean, "var": red.var, "std": red.std, "prod": red.prod,
    "max": red.max, "min": red.min, "amax": red.amax, "amin": red.amin,
    "logsumexp": red.logsumexp, "cumsum": red.cumsum, "norm": red.norm,
    "argmax": red.argmax, "argmin": red.argmin, "all": red.all, "any": red.any,
    "cumprod": red.cumprod, "cummax": red.cummax, "cummin": red.cummin,
    "logcumsumexp": red.logcumsumexp, "nansum": red.nansum, "nanmean": red.nanmean,
    "count_nonzero": red.count_nonzero, "aminmax": red.aminmax, "median": red.median,
    "quantile": red.quantile,
    # shape: views share the tensor's memory (see ops/inplace.py)
    "reshape": sh.reshape, "view": sh.view, "view_as": lambda a, b: sh.view(a, b.shape),
    "reshape_as": lambda a, b: sh.reshape(a, b.shape),
    "permute": sh.permute, "transpose": sh.transpose, "t": sh.t,
    "unsqueeze": sh.unsqueeze, "squeeze": sh.squeeze, "expand": sh.expand,
    "expand_as": lambda a, b: sh.expand(a, *b.shape), "flatten": sh.flatten,
    "unflatten": sh.unflatten, "contiguous": sh.contiguous, "split": sh.split,
    "chunk": sh.chunk, "repeat": sh.repeat, "flip": sh.flip, "roll": sh.roll,
    "tril": sh.tril, "triu": sh.triu, "unbind": sh.unbind, "narrow": sh.narrow,
    "movedim": sh.movedim, "swapaxes": sh.swapaxes, "swapdims": sh.swapaxes,
    "select": sh.select, "diagonal": sh.diagonal,
    "moveaxis": sh.movedim, "tile": sh.tile, "rot90": sh.rot90, "diag": sh.diag,
    "diag_embed": sh.diag_embed, "trace": sh.trace, "repeat_interleave": sh.repeat_interleave,
    "unfold": sh.unfold,
    # indexing
    "__getitem__": ix.getitem, "__setitem__": ip.setitem, "gather": ix.gather,
    "scatter_add": ix.scatter_add, "index_select": ix.index_select,
    "sort": ix.sort, "topk": ix.topk, "argsort": ix.argsort, "scatter": ix.scatter,
    "index_add": ix.index_add, "index_copy": ix.index_copy, "index_fill": ix.index_fill,
    "take": ix.take, "take_along_dim": ix.take_along_dim, "masked_select": ix.masked_select,
    "nonzero": ix.nonzero, "unique": ix.unique,
    # in-place updates (ops/inplace.py: through views, and recorded in the graph)
    "copy_": ip.copy_, "zero_": ip.zero_, "fill_": ip.fill_,
    # random: samplers in place (through views, refused on a leaf requiring grad) and not
    "normal_": rnd.normal_, "uniform_": rnd.uniform_, "random_": rnd.random_,
    "bernoulli_": rnd.bernoulli_, "exponential_": rnd.exponential_,
    "geometric_": rnd.geometric_, "log_normal_": rnd.log_normal_, "cauchy_": rnd.cauchy_,
    "bernoulli": rnd.bernoulli, "multinomial": rnd.multinomial,
    "add_": ip.add_, "sub_": ip.sub_, "mul_": ip.mul_, "div_": ip.div_,
    "clamp_": ip.clamp_, "masked_fill_": ip.masked_fill_,
    "scatter_": ip._inplace("scatter_", ix.scatter),
    "scatter_add_": ip._inplace("scatter_add_", ix.scatter_add),
    "index_add_": ip._inplace("index_add_", ix.index_add),
    "index_copy_": ip._inplace("index_copy_", ix.index_copy),
    "index_fill_": ip._inplace("index_fill_", ix.index_fill),
    "__iadd__": ip.add_, "__isub__": ip.sub_, "__imul__": ip.mul_, "__itruediv__": ip.div_,
    "broadcast_to": sh.broadcast_to, "allclose": ew.allclose, "equal": ew.equal,
    "clamp_min": lambda self, min: ew.clamp(self, min=min),
    "clamp_max": lambda self, max: ew.clamp(self, max=max),
}
# the other `_` forms (x.exp_(), x.pow_(2), x.t_(), ...): each one the method above, then
# ops/inplace.commit (or, for the view ops, the tensor's own shape changed)
METHODS.update(ip.inplace_forms(METHODS))
METHODS.update({"__ipow__": METHODS["pow_"], "__imod__": METHODS["remainder_"],
                "__ifloordiv__": METHODS["floor_divide_"], "__iand__": METHODS["bitwise_and_"],
                "__ior__": METHODS["bitwise_or_"], "__ixor__": METHODS["bitwise_xor_"],
                "__ilshift__": METHODS["bitwise_left_shift_"],
                "__irshift__": METHODS["bitwise_right_shift_"]})

for _name, _method in METHODS.items():
    setattr(Tensor, _name, _method)
