"""Tensor factories: tensor, zeros, ones, full, arange, linspace, eye, the *_like forms."""
from __future__ import annotations

import numpy as np

from . import backend
from .ops.random import rand, randint, randn
from .tensor import Tensor


def _infer_dtype(data):
    """PyTorch's rule: Python floats become the default float dtype, ints int64, bools
    bool; NumPy arrays keep their dtype."""
    if isinstance(data, (np.ndarray, np.generic)) or hasattr(data, "__cuda_array_interface__"):
        return None
    array = np.asarray(data)
    if array.dtype.kind == "f":
        return backend.get_default_dtype()
    if array.dtype.kind in "iu":
        return backend.int64
    return None


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor that copies `data` (nested lists, scalars, arrays or a Tensor)."""
    if isinstance(data, Tensor):
        data = data._data
    dev = backend.as_device(device)
    xp = backend.array_module(dev)
    if dtype is None:
        dtype = _infer_dtype(data)
    if hasattr(data, "__cuda_array_interface__"):
        data = backend.move_array(data, dev)
    array = xp.array(data, dtype=dtype)  # always a copy, made once
    if array.dtype.kind in "fiub":
        return Tensor(array, requires_grad=requires_grad)
    raise TypeError(f"tensor: unsupported data type {array.dtype}")


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype) and (
            device is None or data.device == backend.as_device(device)):
        return data
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A tensor sharing memory with a NumPy array."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _filled(fill, size, dtype, device, requires_grad):
    dev = backend.as_device(device)
    xp = backend.array_module(dev)
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    return Tensor(xp.full(_shape(size), fill, dtype=dtype), requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _filled(0, size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = _infer_dtype(fill_value) or np.asarray(fill_value).dtype
    return _filled(fill_value, (tuple(size),), dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = _infer_dtype([start, end, step])
    xp = backend.array_module(backend.as_device(device))
    return Tensor(xp.arange(start, end, step, dtype=dtype), requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    xp = backend.array_module(backend.as_device(device))
    dtype = backend.get_default_dtype() if dtype is None else dtype
    return Tensor(xp.linspace(start, end, steps, dtype=np.float64).astype(dtype),
                  requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    xp = backend.array_module(backend.as_device(device))
    dtype = backend.get_default_dtype() if dtype is None else dtype
    return Tensor(xp.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def _like(factory):
    def like(input, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                       requires_grad=requires_grad, **kwargs)
    like.__name__ = factory.__name__ + "_like"
    like.__doc__ = f"{factory.__name__} with the shape, dtype and device of `input`."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None):
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=device or input.device)
