"""How the Numba CPU kernels share out their work among threads.

A kernel is written as a range function, `range_fn(*args, start, stop)`, that does rows
(or elements, or channels) start .. stop of its output, and a parallel twin beside it,

    @njit(parallel=True, cache=True)
    def _forward_shared(tasks, rows, *args):
        for task in prange(tasks):
            start, stop = task_range(task, tasks, rows)
            _forward_range(*args, start, stop)

Small problems run as one range on the calling thread (no parallel launch); larger ones
are cut into one contiguous range per thread (Numba's thread count), all run by one call
of the twin. The twin only calls the range function: its loops stay the plain function's,
vectorized as they are there (a prange whose body held the loops themselves, the design of
an earlier session, vectorized worse: batch norm forward of (64, 16, 1024) float32 0.86-1.08
ms plain, 1.37-1.88 ms as a prange of one task).

Why a parallel loop and not Python threads (the design before this one, a pool of Python
threads calling the GIL-free range functions): the loop runs under Numba's OpenMP layer
(kernels._choose_threading_layer), whose workers spin for a while after each loop, so
handing a share to the second thread costs microseconds, where waking a sleeping Python
thread cost 50-110 us on this project's 2-core VM (`python benchmarks/bench_handoff.py`:
ReLU over 256 K floats on two threads, 15-17 us of hand-off under OpenMP). Matrix products
run on the same pool (matmul_cpu), so that OpenBLAS's spinning threads do not fight it.

A forked child runs every kernel on one thread: GNU OpenMP cannot run a parallel loop in a
child forked from a process that used it (see _after_fork_in_child).
"""
from __future__ import annotations

import os
import threading

import numba
from numba import njit

from . import _choose_threading_layer

_choose_threading_layer()

# Below this much work a call runs on the calling thread. Work is counted in ReLU elements:
# a kernel passes its elements times its weight, its time per element relative to ReLU's
# (one read, one write). Sharing a call costs the parallel loop's launch and the wait for
# the slower share. `python benchmarks/bench_split.py` (forward + backward at two threads,
# split time over serial time, three runs): ReLU 1.24-1.34 at 8-32 K elements, 1.03 at
# 64 K, 0.75 at 128 K, 0.56-0.73 above; SGD 0.88-1.30 up to 32 K, 0.90 at 64 K, 0.77-0.79 at
# 128 K; the weighted kernels cross where their weight puts them (GELU, weight 4: 1.15 at
# 8 K, 1.03 at 16 K, 0.92 at 32 K). With Python threads as helpers (the design before,
# each hand-off a sleeping thread's wake-up) this was 1 M: ReLU split/serial 0.97-1.17 at
# 512 K then.
SERIAL_BELOW = 1 << 17


@njit(cache=True)
def task_range(task, tasks, rows):
    """(start, stop) of the task-th of `tasks` contiguous, near-equal ranges of `rows`; the
    last ranges may be empty (start == stop == rows: 5 rows in 4 tasks are 2, 2, 1 and 0)."""
    per_task = (rows + tasks - 1) // tasks
    return min(rows, task * per_task), min(rows, (task + 1) * per_task)


_forked = [False]  # whether this process is a forked child (see _after_fork_in_child)


def _after_fork_in_child():
    """A forked child (a data-loading worker, say) runs minifm's kernels on one thread, as
    PyTorch's DataLoader workers do: GNU OpenMP cannot run a parallel loop in a child forked
    from a process that used it (Numba's 'omp' layer stops such a child, SIGTERM). On one
    thread the kernels never reach their parallel twins; kernels whose loops are parallel
    throughout (flash attention) are not chosen in such a child (in_forked_child)."""
    _forked[0] = True
    numba.set_num_threads(1)


def in_forked_child():
    """Whether this process was forked from another (its kernels then run on one thread)."""
    return _forked[0]


os.register_at_fork(after_in_child=_after_fork_in_child)


def threads():
    """How many threads minifm's kernels may share a call among here: Numba's thread count,
    but 1 in a forked child (see _after_fork_in_child; numba.set_num_threads there holds
    for the thread that called it only, and a Python thread the child starts later would
    reach a parallel loop), and 1 for a Python thread other than the main one under Numba's
    workqueue layer (the fallback where no OpenMP is found), which aborts the process when
    two threads launch parallel loops at once."""
    if _forked[0]:
        return 1
    count = numba.get_num_threads()
    if (count > 1 and _on_workqueue()
            and threading.current_thread() is not threading.main_thread()):
        return 1
    return count


_layer = []  # [the threading layer Numba launched], once asked


def _on_workqueue():
    """Whether Numba's parallel loops run on its workqueue layer (asked once threads run)."""
    if not _layer:
        _layer.append(numba.threading_layer())
    return _layer[0] == "workqueue"


def task_count(rows, size):
    """How many ranges to cut `rows` rows (`size` units of work in all, counted as
    SERIAL_BELOW says) into: one per thread (threads()), or 1 for a small problem."""
    if size < SERIAL_BELOW:
        return 1
    return max(1, min(rows, threads()))


def run_tasks(range_fn, shared_fn, rows, size, *args):
    """range_fn(*args, start, stop) over [0, rows) (`size` units of work in all, see
    SERIAL_BELOW): one range on the calling thread for a small problem, else
    shared_fn(tasks, rows, *args), the kernel's parallel loop over one contiguous range per
    thread (each calling range_fn)."""
    tasks = task_count(rows, size)
    if tasks == 1:
        range_fn(*args, 0, rows)
    else:
        shared_fn(tasks, rows, *args)


def run_in_ranges(range_fn, shared_fn, out, *args, weight=1):
    """Fill `out` with range_fn(*args, out, start, stop) over its rows (see run_tasks);
    `weight`: the kernel's time per element of out relative to ReLU's (see SERIAL_BELOW)."""
    run_tasks(range_fn, shared_fn, out.shape[0], out.size * weight, *args, out)
