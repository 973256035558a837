"""How the Numba CPU kernels share out their work among threads.

A kernel is written as a range function, `range_fn(*args, start, stop)`, compiled with
nogil=True, that does rows (or elements, or channels) start .. stop of its output. Small
problems run as one range on the calling thread; larger ones are cut into one contiguous
range per thread (Numba's thread count), the calling thread taking the first and a pool of
Python threads the others: the range functions release the GIL, so they run in parallel.

Why not Numba's own parallel loops (a prange over the tasks, the design before): on this
project's 2-core machine with Numba 0.68's workqueue layer, a prange twin ran slower than
the plain range function even with a single task, and slower still with two (batch norm
forward of (64, 16, 1024) float32: 0.86-1.08 ms plain, 1.37-1.88 ms as a prange of one
task, 1.50-1.56 ms of two; ReLU forward of 1 M floats: 325-390 us plain, 470-720 us as a
prange of two, 250-380 us as two ranges on two Python threads). The compiled parfor does
not vectorize the inner loops as the plain function does, and launches cost on top.
Through minifm at two threads against one: a (64, 16, 32, 32) batch norm forward + backward
2.6-2.8 ms against 3.4-3.6 (as prange twins: 4.6-4.8, slower than one thread); layer norm
went the same way later (its prange gained nothing on two threads). Flash attention (heavy
tasks) keeps its prange loops.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
from numba import njit

from . import _choose_threading_layer

_choose_threading_layer()

# Below this much work a call runs on the calling thread. Work is counted in ReLU elements:
# a kernel passes its elements times its weight, its time per element relative to ReLU's
# (one read, one write). Handing a share to a helper thread costs the helper's wake-up,
# 50-110 us on this project's 2-core VM, so a call must be long before half of it pays
# that. `python benchmarks/bench_split.py` (forward + backward at two threads, split time
# over serial time, two runs): ReLU 2.25-2.45, 1.48-1.94, 0.97-1.17 at 128, 256, 512 K
# elements, 0.76-0.82 at 1 M, 0.57-0.70 above; the weighted kernels cross where their weight
# puts them (GELU, weight 4: 1.21-1.24 at 128 K, 0.78-0.90 at 256 K). It was 256 K elements
# for every kernel before that measurement, which split ReLU, softmax and layer norm calls
# that then took longer.
SERIAL_BELOW = 1 << 20


@njit(cache=True)
def task_range(task, tasks, rows):
    """(start, stop) of the task-th of `tasks` contiguous, near-equal ranges of `rows`."""
    per_task = (rows + tasks - 1) // tasks
    return task * per_task, min(rows, (task + 1) * per_task)


def task_count(rows, size):
    """How many ranges to cut `rows` rows (`size` units of work in all, counted as
    SERIAL_BELOW says) into: one per Numba thread, or 1 for a small problem."""
    if size < SERIAL_BELOW:
        return 1
    return max(1, min(rows, numba.get_num_threads()))


_pool = []  # [(threads, ThreadPoolExecutor)]: the helper threads of run_tasks and conv_cpu
_growing = threading.Lock()
_forked = [False]  # whether this process is a forked child (see _after_fork_in_child)


def _after_fork_in_child():
    """A forked child (a data-loading worker, say) runs minifm's kernels on one thread, as
    PyTorch's DataLoader workers do: GNU OpenMP cannot run a parallel loop in a child forked
    from a process that used it (Numba's 'omp' layer stops such a child, SIGTERM), and the
    child has none of the parent's helper threads. Its first parallel call would otherwise
    queue work for threads that do not exist there, under a lock one of them may have held.
    Kernels with parallel loops of their own (flash attention) are not chosen in such a
    child (in_forked_child)."""
    global _growing
    _forked[0] = True
    _pool.clear()
    _growing = threading.Lock()
    numba.set_num_threads(1)


def in_forked_child():
    """Whether this process was forked from another (its kernels then run on one thread)."""
    return _forked[0]


os.register_at_fork(after_in_child=_after_fork_in_child)


def helpers(threads):
    """A pool of at least threads - 1 Python threads (the caller is the last), kept across
    calls. A larger request replaces the pool; the old one is not shut down, since another
    thread may be submitting to it (its threads exit once it is no longer referenced)."""
    with _growing:
        if not _pool or _pool[0][0] < threads:
            _pool[:] = [(threads, ThreadPoolExecutor(threads - 1, "minifm-kernels"))]
        return _pool[0][1]


def run_parts(fn, parts):
    """[fn(*part) for part in parts], all at once: the first on the calling thread, the
    others on the pool's threads (fn releases the GIL for its work); results in order."""
    pool = helpers(len(parts)) if len(parts) > 1 else None
    others = [pool.submit(fn, *part) for part in parts[1:]]
    first = fn(*parts[0])
    return [first] + [other.result() for other in others]


def run_tasks(range_fn, rows, size, *args):
    """range_fn(*args, start, stop) over [0, rows) (`size` units of work in all, see
    SERIAL_BELOW): one range on the calling thread for a small problem, else one contiguous
    range per thread."""
    tasks = task_count(rows, size)
    if tasks == 1:
        range_fn(*args, 0, rows)
        return
    run_parts(range_fn, [(*args, *task_range(task, tasks, rows)) for task in range(tasks)])


def run_in_ranges(range_fn, out, *args, weight=1):
    """Fill `out` with range_fn(*args, out, start, stop) over its rows (see run_tasks);
    `weight`: the kernel's time per element of out relative to ReLU's (see SERIAL_BELOW)."""
    run_tasks(range_fn, out.shape[0], out.size * weight, *args, out)
