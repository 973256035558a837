"""minifm.kernels: fused kernels (Numba on the CPU, Numba-CUDA on the GPU), and the switch
that picks one for an op.

Each kernel module imports Numba at its top, and this package imports a kernel module
only when an op first asks for it, so `import minifm` needs NumPy alone.

One pattern for every op with a kernel (attention, softmax and log_softmax, layer_norm,
GELU, batch_norm). The op is two autograd Functions in minifm/ops, named after PyTorch's
node for it:

    <Op>Reference   the plain xp composite: the test oracle and the fallback
    <Op>Fused       the kernel's loops; it takes the kernel module as its `kernel`
                    attribute and keeps it on the node (ctx.kernel) for backward

and the op's public function makes one dispatch call and applies one of the two:

    def gelu(input, approximate="none"):
        kernel = kernels.select("gelu", input.device.type, dtype=input.dtype,
                                approximate=approximate)
        if kernel is None:
            return GeluReference.apply(input, approximate=approximate)
        return GeluFused.apply(input, kernel=kernel)

So each Function has one forward and one backward with no branch on the backend, the
grad_fn names which path ran (GeluFusedBackward0), and a new kernel is a module here, an
entry in _KERNELS and one fused Function. The fused Function takes the module rather than
importing it, so that one Function serves every device's kernel (attention's CPU and
CUDA kernels have the same functions).

One kernel has no Function of its own: "matmul" (matmul_cpu) is the matrix product that
linear and matmul's Functions make, forward and backward, on NumPy arrays; they ask
select for it at each product, and its gradient is more products.

An op can run on one of these backends:

    "reference"  the reference Function
    "numba"      the Numba CPU kernel, for NumPy arrays
    "cuda"       the Numba-CUDA kernel, for CuPy arrays
    "auto"       (default) "cuda" for CuPy arrays when Numba's CUDA target is installed,
                 "numba" for NumPy arrays when Numba is installed, "reference" otherwise,
                 and "reference" as well when the op has no kernel for the device or the
                 kernel does not support the inputs

Choose with `set_backend("attention", "numba")` or the environment variable
MINIFM_ATTENTION_BACKEND (set_backend wins). The variable is read once, at the op's first
call, as Numba reads its NUMBA_ variables at import: set it before running the op, and use
set_backend to change the choice at run time; `set_backend(op, None)` undoes a choice and
has the variable read again at the op's next call. A backend chosen by name that cannot run
the inputs is an error, never a silent fallback. The choice made is logged once per
configuration at DEBUG level on the "minifm.kernels" logger.

`select` runs on every call of an op, so its answer for a problem (the op, the device type
and the keywords it passes) is kept until set_backend changes a choice: a call costs one
dictionary lookup and the key's making (float32 relu, one thread: 2.1-2.5 -> 0.7-1.1 us;
reading the variable on every call, as before, took 0.9 us of that alone).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os

logger = logging.getLogger("minifm.kernels")

BACKENDS = ("auto", "reference", "numba", "cuda")

# op -> {backend: module in this package}
_KERNELS = {
    "attention": {"numba": "flash_attention_cpu", "cuda": "flash_attention_cuda"},
    "layer_norm": {"numba": "layer_norm_cpu"},
    "softmax": {"numba": "softmax_cpu"},
    "gelu": {"numba": "gelu_cpu"},
    "batch_norm": {"numba": "batch_norm_cpu"},
    "int8_matmul": {"numba": "int8_matmul_cpu"},
    "conv": {"numba": "conv_cpu"},
    "max_pool": {"numba": "pool_cpu"},
    "relu": {"numba": "relu_cpu"},
    "sgd": {"numba": "sgd_cpu"},
    "matmul": {"numba": "matmul_cpu"},
}
_chosen: dict = {}    # op -> backend set with set_backend
_from_environment: dict = {}  # op -> backend its MINIFM_<OP>_BACKEND names, read at first call
_selected: dict = {}  # (op, device type, *problem items) -> select's answer
_choices_made = [0]   # how many times set_backend has run: an answer worked out across one
                      # is not kept (it may rest on the choice before)
_SELECTED_AT_MOST = 4096  # answers kept (sizes in the problem make the keys many)
_logged: set = set()  # configurations already logged
# A forked child works its answers out again: some kernels cannot run there (cpu_tasks).
os.register_at_fork(after_in_child=_selected.clear)


def _check_op(op):
    if op not in _KERNELS:
        raise ValueError(f"minifm.kernels: unknown op {op!r}; ops with kernels: "
                         f"{', '.join(sorted(_KERNELS))}")


def _check_backend(op, backend, source):
    if backend not in BACKENDS:
        raise ValueError(f"minifm.kernels: unknown {op} backend {backend!r} from {source}; "
                         f"expected one of {', '.join(BACKENDS)}")
    return backend


def _env_var(op):
    return f"MINIFM_{op.upper()}_BACKEND"


def set_backend(op, backend):
    """Run `op` on `backend` ("auto", "reference", "numba", "cuda"); None undoes it."""
    _check_op(op)
    if backend is None:
        _chosen.pop(op, None)
        _from_environment.pop(op, None)  # the variable is read again at the next call
    else:
        _chosen[op] = _check_backend(op, backend, "set_backend")
    _choices_made[0] += 1
    _selected.clear()


def get_backend(op):
    """The backend requested for `op`: set_backend's, else the environment's, else "auto"."""
    backend = _chosen.get(op) or _from_environment.get(op)
    if backend is not None:
        return backend
    _check_op(op)
    backend = _check_backend(op, os.environ.get(_env_var(op), "auto"), _env_var(op))
    _from_environment[op] = backend
    return backend


@functools.lru_cache(maxsize=None)
def _installed(module):
    """Whether `module` can be imported, found without importing it (asked on every call
    of an op, so the answer is kept)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def _numba_cuda_installed():
    # cupy first: looking for numba.cuda imports numba itself
    return _installed("cupy") and _installed("numba") and _installed("numba.cuda")


def available_backends(op="attention"):
    """The backends `op` can use in this environment ("reference" always)."""
    _check_op(op)
    found = ["reference"]
    if "numba" in _KERNELS[op] and _installed("numba"):
        found.append("numba")
    if "cuda" in _KERNELS[op] and _numba_cuda_installed():
        found.append("cuda")
    return found


def _log_once(op, requested, chosen, device, reason):
    key = (op, requested, chosen, device, reason)
    if key not in _logged:
        _logged.add(key)
        logger.debug("%s on %s: %s backend (requested %r)%s", op, device, chosen, requested,
                     f"; {reason}" if reason else "")


@functools.lru_cache(maxsize=None)
def _choose_threading_layer():
    """Run Numba's parallel loops on OpenMP's threads (Numba's 'omp' layer), or on its own
    'workqueue' threads where no OpenMP runtime is found.

    minifm's kernels share a call among threads by a parallel loop over its shares
    (cpu_tasks). OpenMP's workers spin for a while after a loop, waiting for the next, so
    the next call's hand-off costs microseconds: sharing a ReLU of 256 K floats on two
    threads took 15-17 us of hand-off under OpenMP against ~100 us under workqueue (or
    minifm's own Python threads, the design before), whose workers sleep between calls
    (`python benchmarks/bench_handoff.py`). The spinning has a price where another pool
    wants the cores: OpenBLAS's threads spin too, and the two pools fought (a GPT step at
    two threads: 124 ms with both pools, 79-83 ms on workqueue), so minifm's matrix products
    run on the same pool, OpenBLAS on one thread inside each share (matmul_cpu). A user's
    NUMBA_THREADING_LAYER is respected. It must be set before the first parallel launch in
    the process, hence here, before a kernel module is first used.
    """
    if "NUMBA_THREADING_LAYER" not in os.environ:
        import numba
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
        numba.config.THREADING_LAYER = "default"


def set_num_threads(threads):
    """Threads for minifm's CPU kernels (their threading layer is chosen first). NumPy's
    OpenBLAS is set to one thread where minifm calls it from its kernels, which then cut
    the large products among these threads (blas_cpu.one_thread_for_good): OpenBLAS's own
    threads spin after each product and took a core from the next call (PyTorch's global
    average pool at two threads, 0.24 ms after minifm's with OpenBLAS on one thread, 1.1-5.3
    ms with it on two: the pool's small products had woken OpenBLAS's threads)."""
    _choose_threading_layer()
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    # imported on first use, as the kernel modules are: it imports Numba
    importlib.import_module(f"{__name__}.blas_cpu").one_thread_for_good()


@functools.lru_cache(maxsize=None)
def _kernel_module(op, backend):
    """The kernel module of `op` on `backend`, imported on first use (select runs on every
    call of an op: a dictionary lookup here costs less than import_module's)."""
    return importlib.import_module(f"{__name__}.{_KERNELS[op][backend]}")


def select(op, device_type, **problem):
    """The kernel module to run `op` with on arrays of `device_type` ("cpu" or "cuda"), or
    None for the reference. `problem` (dtype, head sizes, ...) goes to the module's
    `supports`, which returns None or the reason it cannot run these inputs."""
    key = (op, device_type, *problem.items())
    module = _selected.get(key, False)
    if module is not False:
        return module
    choices = _choices_made[0]
    module = _select(op, device_type, problem)
    if choices == _choices_made[0]:
        if len(_selected) >= _SELECTED_AT_MOST:
            _selected.clear()
        _selected[key] = module
    return module


def _select(op, device_type, problem):
    """select's answer, worked out (it raises when a backend chosen by name cannot run)."""
    requested = get_backend(op)
    backend = requested
    if requested == "auto":
        if device_type == "cuda":
            backend = "cuda" if _numba_cuda_installed() else "reference"
        else:
            backend = "numba" if _installed("numba") else "reference"
        if backend not in _KERNELS[op]:  # e.g. an op with a CPU kernel only, on a GPU
            backend = "reference"
    elif requested != "reference":
        needs = "cuda" if requested == "cuda" else "cpu"
        if device_type != needs:
            raise RuntimeError(f"{op}: the {requested!r} backend runs on {needs} arrays, got "
                               f"{device_type} arrays (set_backend({op!r}, 'auto') picks one)")
        if requested not in available_backends(op):
            why = "is not installed here" if requested in _KERNELS[op] else "does not exist"
            raise RuntimeError(f"{op}: the {requested!r} backend {why}; "
                               f"available: {', '.join(available_backends(op))}")
    if backend == "reference":
        _log_once(op, requested, backend, device_type, None)
        return None
    if backend == "numba":
        _choose_threading_layer()
    module = _kernel_module(op, backend)
    reason = module.supports(**problem)
    if reason is not None:
        if requested != "auto":
            raise RuntimeError(f"{op}: the {backend!r} backend cannot run these inputs: {reason}")
        _log_once(op, requested, "reference", device_type, reason)
        return None
    _log_once(op, requested, backend, device_type, None)
    return module


__all__ = ["BACKENDS", "available_backends", "get_backend", "select", "set_backend",
           "set_num_threads"]
