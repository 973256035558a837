"""A CuPy stand-in for minifm's tests: NumPy underneath, CuPy's rules on top.

tests/conftest.py puts this folder first on sys.path only when no real CuPy that sees a
GPU can be imported, so a real CuPy always wins. With it, every test that asks for
device="cuda" runs on the CPU, and the mistakes that would break minifm on a GPU show
up without one:

- `cupy.ndarray` is its own type, not numpy.ndarray, so `isinstance(x, np.ndarray)`
  tells host from device as it does with CuPy;
- a device array refuses to become a NumPy array implicitly: np.asarray(x), np.array(x)
  and NumPy's functions and ufuncs on it raise TypeError (CuPy's message: "Implicit
  conversion to a NumPy array is not allowed"); `.get()` and `cupy.asnumpy` copy to the
  host, `cupy.asarray` copies to the device;
- an op that mixes a device array with a NumPy array raises TypeError, as CuPy does;
- reductions and indexing give 0-d device arrays, never NumPy scalars, as in CuPy;
- copies between host and device are counted in `cupy._transfers` (a Counter: "to_device"
  for host data made into device arrays, host index arrays and host values written into
  device arrays, which CuPy copies first; "to_host" for .get(), asnumpy, .item(),
  .tolist() and the scalar conversions float(), int(), bool(), which wait for the device),
  so that tests can find host round trips in a hot path (CuPy itself counts nothing);
- device memory is counted by a memory pool (`get_default_memory_pool()`: used_bytes,
  total_bytes, free_all_blocks; blocks rounded to 512 bytes and cached when freed), and
  `cupy.cuda.set_allocator` sees every allocation, so minifm.cuda's memory counters run.

What it does not emulate: there is no GPU and no kernel. Arrays live in host memory, work
runs synchronously (streams and events only order host work; event times are host
times), there is one device, random draws follow NumPy's PCG64 rather than cuRAND, and
there is no `__cuda_array_interface__`, so Numba-CUDA kernels cannot take these arrays
(they are tested under Numba's CUDA simulator instead). CuPy's own kernel APIs (RawKernel,
ElementwiseKernel, fuse) and cupy.cuda.nccl are absent: minifm's tests do not reach them. It is stricter than CuPy in one
place: CuPy dispatches some NumPy functions called on its arrays back to itself
(`__array_function__`), where this stand-in raises, because minifm's rule is to call the
array module `xp`, never `np`, on arrays. Functions are NumPy's, looked up by name: the
stand-in does not check that CuPy has each one.
"""
from __future__ import annotations

import sys
from collections import Counter

import numpy

from . import cuda, random  # noqa: F401  (cupy.cuda and cupy.random, as in CuPy)
from .cuda import memory as _memory

_transfers = Counter()    # see the module docstring
IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly.")


def _refuse_host(value):
    raise TypeError(f"Unsupported type {type(value)}: a NumPy array cannot be mixed with "
                    f"cupy arrays (copy it first with cupy.asarray)")


# ----------------------------------------------------------------------------- wrapping
def _unwrap(value):
    """The NumPy array under a device array; a NumPy array is refused (a host array mixed
    into device work); lists, tuples and dicts are unwrapped element by element."""
    kind = type(value)
    if kind is ndarray:
        return value._a
    if kind is numpy.ndarray:
        _refuse_host(value)
    if kind in (list, tuple):
        return kind(_unwrap(v) for v in value)
    if kind is dict:
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _owner_of(a):
    """The array that owns `a`'s memory (NumPy's base chain, followed to its root)."""
    while isinstance(a.base, numpy.ndarray):
        a = a.base
    return a


def _wrap(result, inputs=()):
    """Device arrays for the NumPy arrays and scalars in `result`. An input returned as is
    (`out=`, or a no-op like ascontiguousarray) keeps its wrapper; new memory is charged to
    the memory pool for as long as its NumPy owner lives."""
    if isinstance(result, numpy.ndarray):
        for inp in inputs:
            if inp._a is result:
                return inp
        owner = _owner_of(result)
        if id(owner) not in _memory._live:
            _memory.charge(owner)
        return ndarray._from(result)
    if isinstance(result, numpy.generic):       # CuPy gives 0-d arrays, never scalars
        return _wrap(numpy.asarray(result))
    if isinstance(result, (tuple, list)):  # a NumPy named tuple (slogdet) as CuPy's plain one
        return (list if isinstance(result, list) else tuple)(_wrap(r, inputs) for r in result)
    return result


def _inputs(args, kwargs):
    found = [a for a in args if type(a) is ndarray]
    out = kwargs.get("out")
    if type(out) is ndarray:
        found.append(out)
    return found


def _device_function(name, func):
    """NumPy's `func` on device arrays: arguments unwrapped, results wrapped. split and
    array_split read their sections in Python, so those may be a host array, as in CuPy."""
    def call(*args, **kwargs):
        if name in ("split", "array_split") and len(args) > 1:
            args = (args[0], list(args[1]) if type(args[1]) is numpy.ndarray else args[1],
                    *args[2:])
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)), _inputs(args, kwargs))
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"numpy.{name} on device arrays (the CuPy stand-in)."
    return call


# the ufunc methods CuPy has, and for which ufuncs (CuPy's tracker, cupy/cupy#7082: at for
# add, maximum, minimum and the bitwise ops; reduce for add and multiply; accumulate and
# reduceat for add only; outer for all)
_UFUNC_METHODS = {"at": ("add", "maximum", "minimum", "bitwise_and", "bitwise_or",
                         "bitwise_xor"),
                  "reduce": ("add", "multiply"), "accumulate": ("add",), "reduceat": ("add",)}


class _DeviceUfunc:
    """A NumPy ufunc with the methods CuPy gives it (see _UFUNC_METHODS), on device arrays."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _wrap(self._ufunc(*_unwrap(args), **_unwrap(kwargs)), _inputs(args, kwargs))

    def __getattr__(self, name):
        if self.__name__ not in _UFUNC_METHODS.get(name, (self.__name__,)):
            raise NotImplementedError(
                f"cupy.{self.__name__}.{name} is not supported: CuPy has ufunc.{name} only "
                f"for {', '.join(_UFUNC_METHODS[name])}")
        if name == "at":
            return self._at
        attr = getattr(self._ufunc, name)
        return _device_function(f"{self.__name__}.{name}", attr) if callable(attr) else attr

    def _at(self, a, indices, b=None):
        """ufunc.at(a, indices, b): an unbuffered scatter. As in CuPy, the index and b may
        be host arrays (CuPy copies them), and add.at takes only the dtypes CUDA's atomicAdd
        has (no int64, int8, int16 or bool)."""
        if self.__name__ == "add" and a.dtype not in _ATOMIC_ADD:
            raise TypeError("scatter_add only supports int32, float16, float32, float64, "
                            f"uint32, uint64, as data type (got {a.dtype})")
        if type(b) is numpy.ndarray:
            _transfers["to_device"] += 1
        args = () if b is None else (b if type(b) is numpy.ndarray else _unwrap(b),)
        self._ufunc.at(a._a, _index(indices), *args)


_ATOMIC_ADD = tuple(numpy.dtype(t) for t in ("int32", "float16", "float32", "float64",
                                              "uint32", "uint64"))


# ----------------------------------------------------------------------------- the array
class ndarray:
    """A device array: a NumPy array that NumPy may not touch implicitly (see the module
    docstring). Attributes and methods are NumPy's, with device arrays in and out."""

    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None   # NumPy's ufuncs refuse it; its binary operators defer to ours
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, order="C"):
        """cupy.ndarray(shape, dtype): uninitialized device memory."""
        self._a = numpy.empty(shape, dtype, order=order)
        _memory.charge(self._a)

    @classmethod
    def _from(cls, a):
        out = object.__new__(cls)
        out._a = a
        return out

    # -- what makes it a device array
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was given a cupy array: call the array "
                        f"module's {func.__name__} (xp.{func.__name__}), or copy to the host "
                        f"with .get(). {IMPLICIT}")

    def get(self, stream=None, order="C", out=None):
        """A host copy (NumPy array)."""
        _transfers["to_host"] += 1
        if out is not None:
            out[...] = self._a
            return out
        return numpy.array(self._a, order=order)

    def set(self, arr, stream=None):
        """Copy a host array into this device array."""
        _transfers["to_device"] += 1
        self._a[...] = arr

    @property
    def device(self):
        return cuda.Device(0)

    @property
    def base(self):
        """The device array whose memory this one views, or None (an owner)."""
        return None if self._a.base is None else ndarray._from(_owner_of(self._a))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray._from(row) for row in self._a) if self._a.ndim > 1 else \
            (_wrap(v) for v in self._a)

    def __bool__(self):
        _transfers["to_host"] += 1  # CuPy syncs and reads a one-element array, as here
        return bool(self._a)

    def __int__(self):
        _transfers["to_host"] += 1
        return int(self._a)

    def __float__(self):
        _transfers["to_host"] += 1
        return float(self._a)

    def __complex__(self):
        _transfers["to_host"] += 1
        return complex(self._a)

    def item(self):
        _transfers["to_host"] += 1
        return self._a.item()

    def tolist(self):
        _transfers["to_host"] += 1
        return self._a.tolist()

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)], (self,))

    def __setitem__(self, key, value):
        key = _index(key)
        if type(value) is numpy.ndarray:
            if not _advanced(key):
                _refuse_host(value)  # CuPy converts a host value only for an advanced index
            _transfers["to_device"] += 1
        self._a[key] = value if type(value) is numpy.ndarray else _unwrap(value)

    def __copy__(self):
        return _wrap(self._a.copy())

    def __deepcopy__(self, memo):
        return _wrap(self._a.copy())

    def __reduce__(self):
        # CuPy arrays pickle by copying through the host; unpickled, they are device arrays
        return (_from_host, (self._a.copy(),))

    def __getattr__(self, name):
        if name.startswith("__"):  # __array_interface__ & co would let NumPy read the data
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return _bound_method(self, name, attr)
        return _wrap(attr, (self,))


def _bound_method(self, name, method):
    def call(*args, **kwargs):
        return _wrap(method(*_unwrap(args), **_unwrap(kwargs)), [self] + _inputs(args, kwargs))
    call.__name__ = name
    return call


def _index(key):
    """An index for the NumPy array underneath: device arrays unwrapped; Python lists and
    NumPy arrays taken, as CuPy takes them (it copies them to the device first)."""
    if type(key) is tuple:
        return tuple(_index(k) for k in key)
    if type(key) is list:
        _transfers["to_device"] += 1
        return numpy.asarray([_unwrap_index(k) for k in key])
    return _unwrap_index(key)


def _unwrap_index(k):
    if type(k) is numpy.ndarray:
        _transfers["to_device"] += 1
    return k._a if type(k) is ndarray else k


def _advanced(key):
    """Whether an (unwrapped) index selects with an integer or boolean array."""
    keys = key if type(key) is tuple else (key,)
    return any(isinstance(k, numpy.ndarray) for k in keys)


def _operator(name):
    op = getattr(numpy.ndarray, name)

    def method(self, other):
        if type(other) is numpy.ndarray:
            _refuse_host(other)
        return _wrap(op(self._a, _unwrap(other)), (self,))
    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
              "or", "xor", "lshift", "rshift", "divmod"):
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        _dunder = _form.format(_name)
        if hasattr(numpy.ndarray, _dunder):
            setattr(ndarray, _dunder, _operator(_dunder))
for _dunder in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(ndarray, _dunder, _operator(_dunder))
for _dunder in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _dunder, (lambda op: lambda self: _wrap(op(self._a)))(
        getattr(numpy.ndarray, _dunder)))
ndarray.__hash__ = None


def _from_host(host, count=True):
    """A device copy of a host array (the unpickling and asarray path; count=False for
    the random draws, which CuPy makes on the device)."""
    _transfers["to_device"] += count
    copy = numpy.array(host, copy=True)
    _memory.charge(copy)
    return ndarray._from(copy)


# ----------------------------------------------------------------------------- host <-> device
def asarray(a, dtype=None, order=None):
    """A device array: `a` itself when it is one (of that dtype), else a copy to the device."""
    if type(a) is ndarray:
        return a if dtype is None or a.dtype == numpy.dtype(dtype) else a.astype(dtype)
    return _from_host(numpy.asarray(_unwrap(a) if isinstance(a, (list, tuple)) else a,
                                    dtype=dtype, order=order))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    """A device array copied from a host or device array or a Python sequence."""
    if type(obj) is ndarray:
        return _wrap(numpy.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin),
                     () if copy else (obj,))
    return _from_host(numpy.array(_unwrap(obj) if isinstance(obj, (list, tuple)) else obj,
                                  dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None):
    """A host copy of a device array (a NumPy array or scalar is returned as a NumPy array)."""
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    """cupy if any argument is a device array, else numpy."""
    return sys.modules[__name__] if any(type(a) is ndarray for a in args) else numpy


def get_default_memory_pool():
    return _memory.default_pool


# ----------------------------------------------------------------------------- the namespace
def __getattr__(name):
    """cupy.<name>: NumPy's types and constants as they are (CuPy uses NumPy's dtypes),
    NumPy's functions and ufuncs on device arrays."""
    try:
        attr = getattr(numpy, name)
    except AttributeError:
        raise AttributeError(f"module 'cupy' (the test stand-in) has no attribute {name!r}") \
            from None
    if isinstance(attr, numpy.ufunc):
        value = _DeviceUfunc(attr)
    elif callable(attr) and not isinstance(attr, type):
        value = _device_function(name, attr)
    else:
        value = attr
    globals()[name] = value
    return value


class _Submodule:
    """cupy.linalg, cupy.lib.stride_tricks...: NumPy's submodule on device arrays."""

    def __init__(self, module, name):
        self._module, self.__name__ = module, name

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, type(numpy)):
            return _Submodule(attr, f"{self.__name__}.{name}")
        return _device_function(f"{self.__name__}.{name}", attr) if callable(attr) else attr


linalg = _Submodule(numpy.linalg, "linalg")
lib = _Submodule(numpy.lib, "lib")
