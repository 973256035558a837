"""minifm.cuda: the GPU questions torch.cuda answers, asked of CuPy.

Is there a GPU, how many, wait for it (synchronize), how much memory do tensors hold,
seed its random generators, and time GPU work with CUDA events. CuPy is imported on first
use, so `import minifm` still needs NumPy alone.

As in PyTorch, is_available(), device_count() and the seeding functions work on machines
without a GPU (False, 0, nothing to seed); every other function needs CuPy and a visible
GPU and raises a RuntimeError saying which of the two is missing.

Memory. minifm's CUDA arrays come from CuPy's default memory pool, which caches freed
blocks the way PyTorch's caching allocator does: memory_allocated() is the pool's bytes
in live arrays, memory_reserved() what it holds from the driver, empty_cache() hands the
cached blocks back. CuPy keeps no high-water mark, so minifm counts one: the first call
of memory_allocated, max_memory_allocated or reset_peak_memory_stats puts a thin wrapper
around the pool's malloc that reads the pool's usage after each allocation (usage only
grows at an allocation, so no peak is missed). Peaks are counted from that first call
on, not from the start of the program as in PyTorch.

Timing. GPU calls return before the GPU has finished, so a host clock measures launch
time. `timer` records a CUDA event before and after a region and reads the GPU time
between them:

    with minifm.cuda.timer() as t:
        loss = model(x, y)
    print(t.elapsed_ms)
"""
from __future__ import annotations

from . import backend


def _cupy(what):
    """CuPy, when it is installed and sees a GPU; otherwise a RuntimeError naming `what`
    (the function asked for) and the missing piece."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            f"minifm.cuda.{what} needs CuPy, which is not installed: install minifm with "
            f"the 'cuda' extra (pip install 'minifm[cuda]') on a machine with an NVIDIA GPU"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises CUDARuntimeError when no driver is loaded
        raise RuntimeError(f"minifm.cuda.{what}: CuPy is installed but cannot reach a GPU "
                           f"({exc})") from exc
    if count == 0:
        raise RuntimeError(f"minifm.cuda.{what}: CuPy is installed but sees no GPU")
    return cupy


def _index(cupy, device, what):
    """A device index from None (the current device), an int, 'cuda:1' or a minifm.device."""
    if device is None:
        return cupy.cuda.runtime.getDevice()
    if isinstance(device, int):
        index = device
    else:
        dev = backend.as_device(device)
        if dev.type != "cuda":
            raise ValueError(f"minifm.cuda.{what}: expected a CUDA device, got {dev}")
        index = dev.index
    count = cupy.cuda.runtime.getDeviceCount()
    if not 0 <= index < count:
        raise ValueError(f"minifm.cuda.{what}: device {index} does not exist "
                         f"({count} GPU{'s' if count != 1 else ''} visible)")
    return index


# ----------------------------------------------------------------------------- devices
def is_available() -> bool:
    """Whether CuPy is installed and sees at least one GPU."""
    return backend.cuda_is_available()


def device_count() -> int:
    """The number of GPUs CuPy sees; 0 without CuPy or a driver."""
    if not is_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


def current_device() -> int:
    """The index of the GPU that new CUDA work goes to."""
    return _cupy("current_device").cuda.runtime.getDevice()


def get_device_name(device=None) -> str:
    """The GPU's marketing name, e.g. 'NVIDIA H100 80GB HBM3'."""
    cupy = _cupy("get_device_name")
    name = cupy.cuda.runtime.getDeviceProperties(_index(cupy, device, "get_device_name"))["name"]
    return name.decode() if isinstance(name, bytes) else name


def synchronize(device=None):
    """Wait until every kernel queued on the device has finished."""
    cupy = _cupy("synchronize")
    with cupy.cuda.Device(_index(cupy, device, "synchronize")) as dev:
        dev.synchronize()


# ----------------------------------------------------------------------------- memory
_peaks: dict = {}        # device index -> most bytes in live arrays seen since the last reset
_counting_pool = None    # the pool whose malloc is wrapped, once counting has started


def _pool(cupy):
    """CuPy's default memory pool, with peak counting started on first use."""
    global _counting_pool
    pool = cupy.get_default_memory_pool()
    if _counting_pool is not pool:
        def malloc(nbytes):
            memory = pool.malloc(nbytes)
            _sample_peak(cupy, pool)
            return memory
        cupy.cuda.set_allocator(malloc)
        _counting_pool = pool
    return pool


def _sample_peak(cupy, pool):
    """Raise the current device's peak to the pool's current usage."""
    index = cupy.cuda.runtime.getDevice()
    _peaks[index] = max(_peaks.get(index, 0), pool.used_bytes())


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA arrays on the device."""
    cupy = _cupy("memory_allocated")
    pool = _pool(cupy)
    with cupy.cuda.Device(_index(cupy, device, "memory_allocated")):
        _sample_peak(cupy, pool)
        return pool.used_bytes()


def max_memory_allocated(device=None) -> int:
    """The most bytes live CUDA arrays held on the device at once, since the last
    reset_peak_memory_stats() or the first memory query (see the module docstring)."""
    cupy = _cupy("max_memory_allocated")
    pool = _pool(cupy)
    with cupy.cuda.Device(_index(cupy, device, "max_memory_allocated")):
        _sample_peak(cupy, pool)
        return _peaks[cupy.cuda.runtime.getDevice()]


def reset_peak_memory_stats(device=None):
    """Start a new peak from the bytes allocated now."""
    cupy = _cupy("reset_peak_memory_stats")
    pool = _pool(cupy)
    with cupy.cuda.Device(_index(cupy, device, "reset_peak_memory_stats")):
        _peaks[cupy.cuda.runtime.getDevice()] = pool.used_bytes()


def memory_reserved(device=None) -> int:
    """Bytes the memory pool holds from the driver: live arrays plus cached free blocks."""
    cupy = _cupy("memory_reserved")
    with cupy.cuda.Device(_index(cupy, device, "memory_reserved")):
        return cupy.get_default_memory_pool().total_bytes()


def empty_cache():
    """Return the pool's cached free blocks to the driver (live arrays are untouched), so
    that other processes, or nvidia-smi, see the memory as free."""
    _cupy("empty_cache").get_default_memory_pool().free_all_blocks()


# ----------------------------------------------------------------------------- randomness
def manual_seed(seed):
    """Seed the current GPU's default generator; does nothing without a GPU, as in PyTorch
    (so a script can seed the GPU unconditionally)."""
    if is_available():
        index = current_device()
        backend.default_generator(backend.device("cuda", index)).manual_seed(seed)


def manual_seed_all(seed):
    """Seed the default generator of every GPU; does nothing without a GPU."""
    for index in range(device_count()):
        backend.default_generator(backend.device("cuda", index)).manual_seed(seed)


# ----------------------------------------------------------------------------- timing
class timer:
    """GPU time of the work queued inside a `with` block, in milliseconds.

    An event is recorded on the current stream on entry and another on exit; leaving the
    block waits for the second, and `elapsed_ms` is the GPU's time between the two. Host
    work in the block counts only where the GPU sat idle waiting for it.
    """

    def __init__(self):
        self.elapsed_ms = None

    def __enter__(self):
        cupy = _cupy("timer")
        self._cupy = cupy
        self._start, self._end = cupy.cuda.Event(), cupy.cuda.Event()
        self._start.record()
        return self

    def __exit__(self, *exc_info):
        self._end.record()
        self._end.synchronize()
        self.elapsed_ms = self._cupy.cuda.get_elapsed_time(self._start, self._end)
        return False


__all__ = [
    "is_available", "device_count", "current_device", "get_device_name", "synchronize",
    "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats", "memory_reserved",
    "empty_cache", "manual_seed", "manual_seed_all", "timer",
]
