"""Tensor factories: tensor, zeros, ones, full, arange, linspace, eye, the random ones
(rand, randn, randint, randperm), and the *_like forms.

Every random draw goes through a minifm Generator (the device's default one unless given),
never NumPy's global state, so `minifm.manual_seed` makes runs reproducible."""
from __future__ import annotations

import numpy as np

from . import backend
from .dims import size_args
from .tensor import Tensor


def _infer_dtype(data):
    """PyTorch's rule: Python floats become the default float dtype, ints int64, bools
    bool; NumPy arrays keep their dtype."""
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cuda_array(data):
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
    if backend.is_cuda_array(data):
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


def _filled(fill, size, dtype, device, requires_grad):
    dev = backend.as_device(device)
    xp = backend.array_module(dev)
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    return Tensor(xp.full(size_args(size), fill, dtype=dtype), requires_grad=requires_grad)


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


# ----------------------------------------------------------------------------- random
def generator_rng(device, generator):
    """The NumPy/CuPy random generator behind `generator`, or the device's default one."""
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
    rng = generator_rng(device, generator)
    return rng.standard_normal(shape, dtype=draw).astype(dtype, copy=False)


def rand_array(shape, dtype, device, generator=None):
    draw = np.float64 if dtype == backend.float64 else np.float32
    return generator_rng(device, generator).random(shape, dtype=draw).astype(dtype, copy=False)


def _size_of(op, args, size):
    """The size of rand(2, 3), rand((2, 3)) or rand(size=(2, 3)); exactly one is allowed."""
    if size is not None:
        if args:
            raise TypeError(f"{op}: the size was given both positionally {args} and as size={size}")
        return size_args((size,))
    if not args:
        raise TypeError(f"{op}: missing the 'size' argument")
    return size_args(args)


def _random_tensor(data, requires_grad):
    if requires_grad and data.dtype.kind != "f":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                           f"gradients, got {backend.dtype_name(data.dtype)}")
    return Tensor(data, requires_grad=requires_grad)


def randn(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples: randn(2, 3), randn((2, 3)) or randn(size=(2, 3))."""
    device = backend.as_device(device)
    data = randn_array(_size_of("randn", args, size), _float_dtype(dtype), device, generator)
    return Tensor(data, requires_grad=requires_grad)


def rand(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1): rand(2, 3), rand((2, 3)) or rand(size=(2, 3))."""
    device = backend.as_device(device)
    data = rand_array(_size_of("rand", args, size), _float_dtype(dtype), device, generator)
    return Tensor(data, requires_grad=requires_grad)


def check_integer_range(op, low, high, dtype):
    """PyTorch's bounds on random integers in [low, high) of `dtype` (random_, randint)."""
    if low >= high:
        raise RuntimeError(f"{op} expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    if dtype.kind in "iub":
        lo, hi = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        if not lo <= low <= hi:
            raise RuntimeError(f"{op}: from={low} is out of bounds for {backend.dtype_name(dtype)}")
        if not lo <= high - 1 <= hi:
            raise RuntimeError(f"{op}: to - 1 = {high - 1} is out of bounds for "
                               f"{backend.dtype_name(dtype)}")


def randint(*args, low=None, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False):
    """Integers in [low, high), in every form PyTorch accepts: randint(high, size),
    randint(low, high, size), with any of low=, high=, size= as keywords (low defaults to
    0). The result is int64 unless `dtype` says otherwise."""
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if len(args) > 2 or size is None:
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got positional "
                        f"arguments {tuple(args)} and size={size}")
    if len(args) == 2:
        low, high = args
    elif len(args) == 1 and high is None:
        high = args[0]
    elif len(args) == 1:
        low = args[0]
    if high is None:
        raise TypeError("randint: missing the 'high' argument")
    low = 0 if low is None else int(low)
    dtype = backend.int64 if dtype is None else np.dtype(dtype)
    check_integer_range("random_", low, int(high), dtype)
    device = backend.as_device(device)
    data = generator_rng(device, generator).integers(low, high, size=tuple(size), dtype=np.int64)
    return _random_tensor(data.astype(dtype, copy=False), requires_grad)


def randperm(n, generator=None, dtype=None, device=None):
    device = backend.as_device(device)
    rng = generator_rng(device, generator)
    # CuPy's Generator has no permutation: the order of n uniform draws is one
    order = rng.permutation(n) if device.type == "cpu" else rng.random(n).argsort()
    return Tensor(order.astype(dtype or np.int64, copy=False))



# ----------------------------------------------------------------------------- *_like
def _like(factory):
    def like(input, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(tuple(input.shape), dtype=dtype or input.dtype,
                       device=device or input.device, requires_grad=requires_grad, **kwargs)
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


def randint_like(input, low, high=None, dtype=None, device=None, requires_grad=False):
    """randint_like(input, high) or randint_like(input, low, high)."""
    low, high = (0, low) if high is None else (low, high)
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=device or input.device, requires_grad=requires_grad)
