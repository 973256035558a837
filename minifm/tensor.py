"""Tensor: an array, its device, its gradient and the node that made it.

The Tensor itself holds no math. Each method forwards to the op that implements it in
`minifm/ops/` (one file per family), where the forward and backward of an op stand together.
This file is the map from PyTorch's Tensor API to those ops.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import run_backward, _no_create_graph, _seed_for


class Tensor:
    """A multi-dimensional array that can record the ops applied to it.

    `Tensor(array)` wraps an existing NumPy or CuPy array without copying; use
    `minifm.tensor(data)` to build one from Python data (as in PyTorch).
    """

    __slots__ = ("_data", "device", "requires_grad", "grad", "grad_fn", "_hooks", "_view",
                 "_views", "__weakref__")
    __array_priority__ = 1000  # so ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data._data
        elif not hasattr(data, "__cuda_array_interface__"):
            data = np.asarray(data)
        self._data = data
        self.device = backend.device_of_array(data)
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._hooks = None
        self._view = None       # a ViewOf when this tensor shares its base's memory
        self._views = None      # weak references to the live views of this tensor
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, device, requires_grad=False, grad_fn=None):
        """Fast constructor used by the ops: no checks, no conversion."""
        t = object.__new__(cls)
        t._data = data
        t.device = device
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = grad_fn
        t._hooks = None
        t._view = None
        t._views = None
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self):
        return int(self._data.size)

    def element_size(self):
        return self._data.itemsize

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def _base(self):
        """The tensor whose memory this view shares, or None (PyTorch's Tensor._base)."""
        return None if self._view is None else self._view.base

    def _is_view(self):
        return self._view is not None

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    @property
    def data(self):
        """The same array, detached from the graph (writes to it are not recorded)."""
        return Tensor._make(self._data, self.device)

    @data.setter
    def data(self, value):
        """`p.data = other` swaps the array (and with it the device) under the same tensor."""
        if isinstance(value, Tensor):
            self._data, self.device = value._data, value.device
        else:
            self._data, self.device = value, backend.device_of_array(value)

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} elements is ambiguous")
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        if self.device.type != "cpu":
            raise TypeError(f"can't convert {self.device} tensor to numpy. "
                            "Use Tensor.cpu() to copy the tensor to host memory first.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        array = backend.move_array(self._data, backend.CPU)
        return array if dtype is None else array.astype(dtype)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"item(): a Tensor with {self._data.size} elements cannot be "
                               "converted to a Python scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        return backend.move_array(self._data, backend.CPU).tolist()

    def detach(self):
        return Tensor._make(self._data, self.device)

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self):
        from .ops.elementwise import clone
        return clone(self)

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype) or to(other_tensor), differentiably."""
        from .ops.elementwise import to_dtype, to_device
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
            out = to_dtype(out, np.dtype(dtype))
        if dev is not None:
            out = to_device(out, backend.as_device(dev))
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to(backend.device("cuda", device))

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def half(self):
        return self.to(backend.float16)

    def long(self):
        return self.to(backend.int64)

    def int(self):
        return self.to(backend.int32)

    def bool(self):
        return self.to(backend.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    # ------------------------------------------------------------------ new tensors like this one
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """A new tensor with this one's dtype and device unless given (Tensor.new_tensor)."""
        from .creation import tensor
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        from .creation import full
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from .creation import _shape
        return self.new_full(_shape(size), 0, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from .creation import _shape
        return self.new_full(_shape(size), 1, dtype, device, requires_grad)

    new_empty = new_zeros

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise RuntimeError("requires_grad_(): you can only change requires_grad flags of "
                               "leaf variables; use .detach() for a non-leaf")
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got {backend.dtype_name(self._data.dtype)}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep .grad for this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            import weakref
            self.grad_fn.retained = weakref.ref(self)

    @property
    def retains_grad(self):
        return self.grad_fn is not None and self.grad_fn.retained is not None

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
        return _RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad (PyTorch's signature;
        create_graph=True, for higher-order gradients, is not supported)."""
        _no_create_graph("backward", create_graph)
        retain_graph = bool(retain_graph)
        seed = _seed_for(self, gradient, "backward")
        if inputs is not None:
            grads = run_backward([self], [seed], retain_graph=retain_graph, inputs=list(inputs))
            for t, g in zip(inputs, grads):
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
            return
        run_backward([self], [seed], retain_graph=retain_graph)

    # ------------------------------------------------------------------ printing
    def __repr__(self):
        from .printing import tensor_repr
        return tensor_repr(np.asarray(backend.move_array(self._data, backend.CPU)), self.device,
                           backend.dtype_name(self.dtype), backend.get_default_dtype(),
                           self.grad_fn, self.requires_grad)

    __str__ = __repr__


class ViewOf:
    """How a view was made from its base: the base tensor and the view ops (Function class,
    attributes) that lead from the base's array to the view's. Replaying `steps` on the
    base, or on any array of the base's shape, gives the view again; that is how a write
    through the view reaches the base, and how the base's gradient reaches the view.

    `multi_output` marks views made by split/chunk/unbind, and `in_no_grad` views made
    under no_grad: PyTorch refuses in-place ops on both when the base requires grad."""

    __slots__ = ("base", "steps", "multi_output", "in_no_grad")

    def __init__(self, base, steps, in_no_grad):
        self.base, self.steps, self.in_no_grad = base, steps, in_no_grad
        self.multi_output = False


def _is_dtype_name(arg):
    if isinstance(arg, backend.device):
        return False
    try:
        np.dtype(arg)
        return True
    except TypeError:
        return False


class _RemovableHandle:
    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def _bind_methods():
    """Attach the op library to Tensor as methods and operators (PyTorch's Tensor API)."""
    from .ops import elementwise as ew, reduce as red, shape as sh, index as ix
    from .ops import linalg as la, activation as act, inplace as ip

    methods = {
        # arithmetic and operators
        "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow,
        "neg": ew.neg, "abs": ew.abs, "exp": ew.exp, "log": ew.log, "log1p": ew.log1p,
        "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "sin": ew.sin, "cos": ew.cos, "square": ew.square,
        "clamp": ew.clamp, "clip": ew.clamp, "maximum": ew.maximum, "minimum": ew.minimum,
        "masked_fill": ew.masked_fill, "where": lambda self, cond, other: ew.where(cond, self, other),
        "sign": ew.sign, "reciprocal": ew.reciprocal,
        "__add__": ew.add, "__radd__": lambda a, b: ew.add(b, a),
        "__sub__": ew.sub, "__rsub__": lambda a, b: ew.sub(b, a),
        "__mul__": ew.mul, "__rmul__": lambda a, b: ew.mul(b, a),
        "__truediv__": ew.div, "__rtruediv__": lambda a, b: ew.div(b, a),
        "__pow__": ew.pow, "__rpow__": lambda a, b: ew.pow(b, a),
        "__neg__": ew.neg, "__abs__": ew.abs, "__pos__": lambda a: a,
        "__matmul__": la.matmul, "__rmatmul__": lambda a, b: la.matmul(b, a),
        "matmul": la.matmul, "mm": la.matmul, "bmm": la.matmul,
        # comparisons and logic (no gradient)
        "eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt, "ge": ew.ge,
        "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le,
        "__gt__": ew.gt, "__ge__": ew.ge,
        "__and__": ew.logical_and, "__or__": ew.logical_or, "__xor__": ew.logical_xor,
        "__invert__": ew.logical_not, "logical_not": ew.logical_not,
        "__floordiv__": ew.floor_divide, "__mod__": ew.remainder,
        "isnan": ew.isnan, "isinf": ew.isinf, "isfinite": ew.isfinite,
        "floor": ew.floor, "ceil": ew.ceil, "round": ew.round,
        # activations
        "sigmoid": act.sigmoid, "tanh": act.tanh, "relu": act.relu,
        "softmax": act.softmax, "log_softmax": act.log_softmax,
        # reductions
        "sum": red.sum, "mean": red.mean, "var": red.var, "std": red.std, "prod": red.prod,
        "max": red.max, "min": red.min, "amax": red.amax, "amin": red.amin,
        "logsumexp": red.logsumexp, "cumsum": red.cumsum, "norm": red.norm,
        "argmax": red.argmax, "argmin": red.argmin, "all": red.all, "any": red.any,
        # shape
        "reshape": sh.reshape, "view": sh.view, "view_as": lambda a, b: sh.reshape(a, b.shape),
        "reshape_as": lambda a, b: sh.reshape(a, b.shape),
        "permute": sh.permute, "transpose": sh.transpose, "t": sh.t,
        "unsqueeze": sh.unsqueeze, "squeeze": sh.squeeze, "expand": sh.expand,
        "expand_as": lambda a, b: sh.expand(a, *b.shape), "flatten": sh.flatten,
        "unflatten": sh.unflatten, "contiguous": sh.contiguous, "split": sh.split,
        "chunk": sh.chunk, "repeat": sh.repeat, "flip": sh.flip, "roll": sh.roll,
        "tril": sh.tril, "triu": sh.triu, "unbind": sh.unbind, "narrow": sh.narrow,
        "movedim": sh.movedim, "swapaxes": sh.swapaxes, "swapdims": sh.swapaxes,
        "select": sh.select, "diagonal": sh.diagonal,
        # indexing
        "__getitem__": ix.getitem, "__setitem__": ip.setitem, "gather": ix.gather,
        "scatter_add": ix.scatter_add, "index_select": ix.index_select,
        "sort": ix.sort, "topk": ix.topk, "argsort": ix.argsort,
        # in-place updates (ops/inplace.py: through views, and recorded in the graph)
        "copy_": ip.copy_, "zero_": ip.zero_, "fill_": ip.fill_,
        "normal_": ip.normal_, "uniform_": ip.uniform_,
        "add_": ip.add_, "sub_": ip.sub_, "mul_": ip.mul_, "div_": ip.div_,
        "clamp_": ip.clamp_, "masked_fill_": ip.masked_fill_,
        "__iadd__": ip.add_, "__isub__": ip.sub_, "__imul__": ip.mul_, "__itruediv__": ip.div_,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
