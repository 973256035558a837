"""Devices, array modules, dtypes and random generators.

Everything that differs between the CPU (NumPy) and the GPU (CuPy) is decided here, so the
rest of minifm is written once against an "xp" array module (Chainer's get_array_module idea).
CuPy is imported lazily, on first use of a CUDA device: `import minifm` needs NumPy alone.
"""
from __future__ import annotations

import ctypes
import os
import sys
import warnings

import numpy as np

# ----------------------------------------------------------------------------- float errors
# PyTorch computes 1/0 = inf, log(0) = -inf and sqrt(-1) = nan silently; NumPy does the same
# arithmetic but also warns ("divide by zero encountered in log"). minifm follows PyTorch by
# ignoring NumPy's floating-point warnings when they are raised from minifm's own modules or
# from NumPy's Python-level reductions (numpy._core._methods: `.sum()`, `.mean()`, which
# minifm's ops call). Other warnings, minifm's own included, are untouched. A filter costs
# nothing per op, where np.errstate around each op would cost as much as the op itself.
warnings.filterwarnings(
    "ignore", message=r"(divide by zero|overflow|underflow|invalid value) encountered",
    category=RuntimeWarning, module=r"(minifm|numpy\._core\._methods)(\.|$)")

# ----------------------------------------------------------------------------- dtypes
# minifm's dtypes are NumPy's dtype objects: no wrapper to learn, and CuPy uses them too.
# (The PyTorch aliases float, int, long, half, double are added in minifm/__init__.py; here
# they would shadow Python's builtins.)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype():
    """The floating dtype new tensors get from Python floats (float32, as in PyTorch)."""
    return _default_dtype


def set_default_dtype(dtype):
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype}")
    _default_dtype = dtype


def dtype_name(dtype) -> str:
    """'float32' -> 'minifm.float32', the way PyTorch prints torch.float32."""
    return "minifm.bool" if dtype == bool_ else f"minifm.{np.dtype(dtype).name}"


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def promote_types(a, b):
    """PyTorch's promotion for two tensor dtypes: a float wins over any integer and keeps its
    own width (int64 + float32 -> float32, where NumPy would say float64)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    a_float, b_float = a.kind == "f", b.kind == "f"
    if a_float != b_float:
        return a if a_float else b
    return np.promote_types(a, b)


# ----------------------------------------------------------------------------- devices
class device:
    """Where a tensor's memory lives: device('cpu') or device('cuda', 0) / device('cuda:0')."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        elif ":" in type:
            type, idx = type.split(":", 1)
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise ValueError(f"Expected a 'cpu' or 'cuda' device, got {type!r}")
        if type == "cuda" and index is None:
            index = 0
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))


CPU = device("cpu")
_interned = {(CPU.type, CPU.index): CPU}


def as_device(dev) -> device:
    """Accepts None (the CPU), a string or a device, and returns the one shared object for
    that device, so the hot path can compare devices by identity."""
    if dev is None:
        return CPU
    dev = dev if isinstance(dev, device) else device(dev)
    return _interned.setdefault((dev.type, dev.index), dev)


def cupy_module():
    """CuPy, imported on first use, with a clear error when it is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "CUDA tensors need CuPy: install minifm with the 'cuda' extra "
            "(pip install 'minifm[cuda]') on a machine with an NVIDIA GPU") from exc
    return cupy


def array_module(dev: device):
    """numpy for the CPU, cupy for a CUDA device."""
    return np if dev.type == "cpu" else cupy_module()


def is_cuda_array(value) -> bool:
    """Whether `value` is a CUDA array: a CuPy array (CuPy is then imported already), or
    another library's array that exposes __cuda_array_interface__."""
    cupy = sys.modules.get("cupy")
    return (cupy is not None and isinstance(value, cupy.ndarray)) or \
        hasattr(value, "__cuda_array_interface__")


def device_of_array(array) -> device:
    """The device an xp array lives on."""
    if isinstance(array, np.ndarray) or np.isscalar(array):
        return CPU
    return as_device(device("cuda", array.device.id))


def move_array(array, dev: device):
    """Copy an array to dev (no copy when it is already there)."""
    src = device_of_array(array)
    if src == dev:
        return array
    if dev.type == "cpu":
        return array.get()
    cupy = cupy_module()
    with cupy.cuda.Device(dev.index):
        return cupy.asarray(array)


def cuda_is_available() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, no driver, or no device: all mean "not available"
        return False


# ----------------------------------------------------------------------------- randomness
class Generator:
    """A seeded random stream for one device (torch.Generator's role).

    On the CPU it wraps NumPy's PCG64 bit generator; on a GPU, CuPy's. All of minifm's
    randomness (init, dropout, randperm, sampling) draws from one of these, never from the
    global np.random, so `manual_seed` makes a run reproducible and `get_state`/`set_state`
    let a checkpoint resume it exactly.
    """

    def __init__(self, device="cpu", seed=None):
        self.device = as_device(device)
        self.manual_seed(np.random.SeedSequence().entropy % (2**63) if seed is None else seed)

    def manual_seed(self, seed):
        self.initial_seed_value = int(seed)
        if self.device.type == "cpu":
            self.rng = np.random.Generator(np.random.PCG64(self.initial_seed_value))
        else:
            cupy = cupy_module()
            with cupy.cuda.Device(self.device.index):
                self.rng = cupy.random.default_rng(self.initial_seed_value)
        return self

    def initial_seed(self):
        return self.initial_seed_value

    def get_state(self) -> dict:
        """A JSON-able snapshot (PCG64's state is two 128-bit integers)."""
        if self.device.type != "cpu":
            raise NotImplementedError("get_state() is implemented for CPU generators only")
        return {"seed": self.initial_seed_value, "bit_generator": self.rng.bit_generator.state}

    def set_state(self, state: dict):
        if self.device.type != "cpu":
            raise NotImplementedError("set_state() is implemented for CPU generators only")
        self.initial_seed_value = state["seed"]
        self.rng.bit_generator.state = state["bit_generator"]
        return self


_default_generators: dict = {}
DEFAULT_SEED = 67280421310721  # PyTorch's default seed: runs are reproducible out of the box


def default_generator(dev=None) -> Generator:
    """The process-wide generator of a device, created on first use."""
    dev = as_device(dev)
    gen = _default_generators.get(dev)
    if gen is None:
        gen = _default_generators[dev] = Generator(dev, seed=DEFAULT_SEED)
    return gen


def manual_seed(seed):
    """Seed the CPU generator and every CUDA generator created so far (torch.manual_seed)."""
    gen = default_generator(CPU).manual_seed(seed)
    for dev, other in _default_generators.items():
        if dev.type != "cpu":
            other.manual_seed(seed)
    return gen


def get_rng_state() -> dict:
    return default_generator(CPU).get_state()


def set_rng_state(state: dict):
    default_generator(CPU).set_state(state)


# ----------------------------------------------------------------------------- host memory
def keep_freed_host_memory():
    """Let glibc keep freed blocks for reuse instead of handing them back to the OS.

    NumPy allocates each array with malloc. By default glibc serves blocks of 128 KiB and
    more with a fresh mmap and unmaps them on free, so every large temporary (one per op
    in a training step) page-faults its memory in again, and page faults are slow (very slow
    in virtual machines). Raising the mmap and trim thresholds makes freed blocks stay in
    the heap to be reused: the job PyTorch's caching allocator does for its tensors. It
    measured 3-5x faster on large elementwise chains (GELU fwd+bwd on 768x512: 5 ms -> 1.7
    ms in a VM). Only on Linux with glibc; MINIFM_KEEP_FREED_MEMORY=0 turns it off.
    """
    if not sys.platform.startswith("linux") or os.environ.get("MINIFM_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 256 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))


keep_freed_host_memory()
