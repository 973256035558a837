"""minifm.kernels.cpu_tasks: the kernels' work shared out among threads.

A problem of SERIAL_BELOW units of work or more (elements times the kernel's weight) is
cut into one range per thread, the ranges run at once by the kernel's parallel loop.
Every kernel that shares its work so must give, on two threads, the bits it gives on one.
SERIAL_BELOW is lowered here to the size of the test batch, so that it is shared."""
import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import minifm  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from minifm import kernels  # noqa: E402
from minifm.kernels import cpu_tasks  # noqa: E402

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                reason="needs two Numba threads")


def _on_threads(threads, fn, *arrays):
    """fn's output and its inputs' gradients, run with `threads` Numba threads."""
    previous = numba.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        leaves = [minifm.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*leaves)
        y.backward(minifm.tensor(np.cos(np.arange(y.numel(), dtype=y.dtype.type)).reshape(
            tuple(y.shape))))
        return [y.detach().numpy()] + [t.grad.numpy() for t in leaves]
    finally:
        kernels.set_num_threads(previous)


# a batch of 64 x 16 x 17 x 19 floats, shared by two threads (see _shared below)
X = np.random.default_rng(0).standard_normal((64, 16, 17, 19)).astype(np.float32)


@pytest.fixture(autouse=True)
def _shared(monkeypatch):
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", X.size)


CASES = {
    "relu": (F.relu, [X]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   [X, np.linspace(0.5, 2, 16, dtype=np.float32),
                    np.linspace(-1, 1, 16, dtype=np.float32)]),
    "softmax": (lambda x: F.softmax(x, dim=-1), [X]),
    "gelu": (F.gelu, [X]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), [X]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (19,), w, b),
                   [X, np.linspace(0.5, 2, 19, dtype=np.float32),
                    np.linspace(-1, 1, 19, dtype=np.float32)]),
}


def test_problem_is_shared():
    previous = numba.get_num_threads()
    kernels.set_num_threads(2)
    try:
        assert cpu_tasks.task_count(X.shape[0], X.size) == 2
        assert cpu_tasks.task_count(X.shape[0], X.size - 1) == 1
    finally:
        kernels.set_num_threads(previous)


@pytest.mark.parametrize("name", list(CASES))
def test_two_threads_give_one_threads_bits(name):
    fn, arrays = CASES[name]
    one, two = _on_threads(1, fn, *arrays), _on_threads(2, fn, *arrays)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@numba.njit(nogil=True)
def _log_range(owner, threads, start, stop):
    for row in range(start, stop):
        owner[row] += start + 1  # + 1: a row no task wrote stays 0
        threads[row] = numba.get_thread_id()


@numba.njit(parallel=True)
def _log_shared(tasks, rows, *args):
    for task in numba.prange(tasks):
        start, stop = cpu_tasks.task_range(task, tasks, rows)
        _log_range(*args, start, stop)


def test_run_tasks_covers_every_row_once():
    """The ranges of run_tasks partition [0, rows): each row written by exactly one task,
    the tasks on distinct threads; a small problem runs as one range on the calling
    thread, without the parallel loop."""
    owner, threads = np.zeros(1001, np.int64), np.full(1001, -1, np.int64)
    previous = numba.get_num_threads()
    kernels.set_num_threads(2)
    try:
        cpu_tasks.run_tasks(_log_range, _log_shared, 1001, cpu_tasks.SERIAL_BELOW, owner,
                            threads)
        assert sorted(set(owner)) == [1, 502]
        assert (owner[:501] == 1).all() and (owner[501:] == 502).all()
        assert len(set(threads)) == 2

        def no_parallel_loop(*args):
            raise AssertionError("a small problem ran the parallel loop")

        owner[:] = 0
        cpu_tasks.run_tasks(_log_range, no_parallel_loop, 1001, cpu_tasks.SERIAL_BELOW - 1,
                            owner, threads)
        assert (owner == 1).all()
    finally:
        kernels.set_num_threads(previous)


def test_weight_counts_a_kernels_work_in_relu_elements(monkeypatch):
    """run_in_ranges shares a call when its elements times the kernel's weight reach
    SERIAL_BELOW: a heavier kernel splits smaller outputs."""
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", 1000)
    calls = []

    def range_fn(out, start, stop):
        calls.append(("serial", start, stop))

    def shared_fn(tasks, rows, out):
        calls.append(("shared", tasks, rows))

    previous = numba.get_num_threads()
    kernels.set_num_threads(2)
    try:
        cpu_tasks.run_in_ranges(range_fn, shared_fn, np.empty(500))
        cpu_tasks.run_in_ranges(range_fn, shared_fn, np.empty(500), weight=2)
        assert calls == [("serial", 0, 500), ("shared", 2, 500)]
    finally:
        kernels.set_num_threads(previous)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_every_kernel_on_one_thread():
    """After the parent ran Numba's parallel loops (flash attention, a product cut among
    threads), a forked child runs the same ops (GNU OpenMP would stop it, SIGTERM, at its
    first parallel loop): on one thread, flash attention left for the reference."""
    previous = numba.get_num_threads()
    kernels.set_num_threads(2)
    try:
        q = minifm.tensor(np.random.default_rng(1).standard_normal((2, 3, 70, 16)))
        w = minifm.tensor(np.random.default_rng(2).standard_normal((256, 16)))
        expected = [F.scaled_dot_product_attention(q, q, q).numpy(),
                    F.linear(q.reshape(-1, 16), w).numpy()]
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 if both ran and agreed
            got = [F.scaled_dot_product_attention(q, q, q).numpy(),
                   F.linear(q.reshape(-1, 16), w).numpy()]
            ok = (numba.get_num_threads() == 1 and cpu_tasks.in_forked_child()
                  and all(np.allclose(a, b) for a, b in zip(got, expected)))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        kernels.set_num_threads(previous)


def test_task_ranges_partition_the_rows_and_are_never_reversed():
    """Every row in exactly one range, start <= stop always (an empty last range where the
    rounded-up ranges run out: 5 rows in 4 tasks are 2, 2, 1 and 0)."""
    for rows in range(0, 23):
        for tasks in range(1, 9):
            ranges = [cpu_tasks.task_range(task, tasks, rows) for task in range(tasks)]
            assert all(start <= stop for start, stop in ranges)
            assert [row for start, stop in ranges for row in range(start, stop)] == \
                list(range(rows))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_python_thread_of_a_forked_child_runs_the_kernels_on_one_thread(monkeypatch):
    """numba.set_num_threads holds for the thread that calls it: a thread the child starts
    must not reach a parallel loop either (GNU OpenMP would stop the child, SIGTERM)."""
    import threading
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", 0)  # every call shared where it may be
    previous = numba.get_num_threads()
    kernels.set_num_threads(2)
    try:
        expected = F.relu(minifm.tensor(X)).numpy()  # the parent runs the parallel loop
        pid = os.fork()
        if pid == 0:
            results = []
            worker = threading.Thread(target=lambda: results.append(
                (cpu_tasks.threads(), F.relu(minifm.tensor(X)).numpy())))
            worker.start()
            worker.join()
            ok = results and results[0][0] == 1 and np.array_equal(results[0][1], expected)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        kernels.set_num_threads(previous)
