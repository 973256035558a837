"""How the Numba CPU kernels share out their work among threads.

A kernel is written as a range function, `range_fn(*args, out, start, stop)`, that does
rows (or elements) start .. stop of `out`, and a parallel twin that runs the ranges of
`task_range(task, tasks, rows)` for every task in a prange. Small problems run as one range on
the calling thread: starting Numba's threads costs tens of microseconds (measured on 2
busy cores), more than problems below SERIAL_BELOW elements take.
"""
from __future__ import annotations

import numba
from numba import njit

SERIAL_BELOW = 1 << 18


@njit(cache=True)
def task_range(task, tasks, rows):
    """(start, stop) of the task-th of `tasks` contiguous, near-equal ranges of `rows`."""
    per_task = (rows + tasks - 1) // tasks
    return task * per_task, min(rows, (task + 1) * per_task)


def task_count(rows, size):
    """How many ranges to cut `rows` rows (`size` elements in all) into: one per Numba
    thread, or 1 for a small problem."""
    if size < SERIAL_BELOW:
        return 1
    return max(1, min(rows, numba.get_num_threads()))


def run_in_ranges(range_fn, parallel_fn, out, *args):
    """Fill `out` with range_fn(*args, out, 0, rows) on the calling thread, or with
    parallel_fn(*args, out, tasks) where the problem is worth the threads."""
    rows = out.shape[0]
    tasks = task_count(rows, out.size)
    if tasks == 1:
        range_fn(*args, out, 0, rows)
    else:
        parallel_fn(*args, out, tasks)
