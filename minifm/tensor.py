"""Tensor: an array, its device, its gradient, the node that made it, and its view links.

This file is storage and metadata only: it imports nothing of minifm but the backend and
the printer, so every layer above can import it. The Tensor holds no math; its methods and
operators (x.sum(), x + y, x.view(...), x.backward()) are given to it in one visible place,
`minifm/tensor_api.py`, which maps PyTorch's Tensor API to the ops in `minifm/ops/`.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .printing import tensor_repr


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
        elif not backend.is_cuda_array(data):
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

    @property
    def retains_grad(self):
        return self.grad_fn is not None and self.grad_fn.retained is not None

    # ------------------------------------------------------------------ printing
    def __repr__(self):
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
