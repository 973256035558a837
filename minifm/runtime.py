"""The process's runtime settings: thread counts, the device to train on, and whether the
Numba kernels still have to be compiled.

These are properties of the machine and the process, not of a model, so they live
here rather than in a config: a run can be resumed with other threads or on another
device.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import sys

from . import backend, distributed, kernels


def limit_threads(threads=None):
    """Set the thread counts of this process (minifm's kernels, BLAS, OpenMP); returns the
    count used.

    minifm's kernels run on `threads` threads (kernels.set_num_threads), and NumPy's
    OpenBLAS, where minifm finds it, on one: minifm cuts its matrix products among its own
    threads (kernels/matmul_cpu.py). threadpoolctl, which scikit-learn installs, sets the
    other BLAS and OpenMP libraries to `threads` (NumPy built on MKL, say); without it their
    defaults stay. With no request, a machine of 2 cores or fewer gets 1 thread: there, two
    threads lose to one as soon as anything else runs (a GPT step measured 632 ms with two
    OpenBLAS threads and 56 ms with one while another process used a core). Ranks started
    by mpiexec on one machine share its cores: each gets its share. With no request on a
    larger machine nothing is set: the libraries keep their own counts (OpenBLAS's threads
    then make the products minifm does not cut).
    """
    if threads is None:
        cores, ranks = os.cpu_count() or 1, distributed.launched_local_size()
        if cores > 2 and ranks == 1:
            return None
        threads = max(1, cores // ranks) if cores > 2 else 1
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        print("minifm: threadpoolctl is not installed; the BLAS thread count is unchanged",
              file=sys.stderr)
    if numba_installed():
        kernels.set_num_threads(threads)
    return threads


def numba_installed():
    return importlib.util.find_spec("numba") is not None


def check_device(device):
    """`device` ("cpu" or "cuda"), once it is known to be usable here; a ValueError that
    says what is missing otherwise."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not backend.cuda_is_available():
        raise ValueError("device 'cuda' needs CuPy and a CUDA GPU, and this machine has none "
                         "usable (pip install cupy-cuda12x on a GPU machine); use --device cpu")
    return device


def kernels_need_compiling():
    """Whether the Numba CPU kernels have not been compiled and cached on this machine yet
    (the first training step then takes about half a minute longer, once)."""
    if not numba_installed():
        return False
    folders = [os.path.join(os.path.dirname(kernels.__file__), "__pycache__")]
    if os.environ.get("NUMBA_CACHE_DIR"):
        folders.append(os.path.join(os.environ["NUMBA_CACHE_DIR"], "**"))
    return not any(glob.glob(os.path.join(folder, "*.nbi"), recursive=True) for folder in folders)
