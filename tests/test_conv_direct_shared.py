"""conv_direct_cpu's batch shared among threads (its wrappers' `tasks`: a parallel loop over
contiguous ranges of the samples, each running the single-thread loops): the forward and the
input gradient bit for bit as with one task (each sample's sums are the same sums), the
weight gradient within rounding (its per-range terms are added in another order), all
against PyTorch; and one task, or one sample, never launching a parallel loop (a forked
child must not reach one)."""
from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")
torch = pytest.importorskip("torch")
from minifm.kernels import conv_direct_cpu  # noqa: E402

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}  # see _assert_near
TASKS = [2, 3, 5]  # 5: more tasks than samples for batches of 1 and 3
BATCHES = [1, 3, 7]
CHANNELS = [(3, 16), (16, 3), (16, 16)]  # (in, out)
MAPS = [(32, 32), (33, 35)]
PADDINGS = [((1, 1), (1, 1)), ((0, 2), (2, 0))]


@pytest.fixture(autouse=True)
def two_threads():
    """Numba on two threads (or as many as it has, where fewer), restored afterwards."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    yield
    numba.set_num_threads(before)


def _problem(n, channels, size, padding, dtype):
    """x, w, gy, the kernels' (stride, padding, dilation, groups) and PyTorch's y, gx, gw
    (the padding applied by hand: PyTorch's conv2d pads both sides alike)."""
    (c, o), (h, wd), ((top, bottom), (left, right)) = channels, size, padding
    rng = np.random.default_rng(n + 10 * c + 100 * o)
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    padded = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    y = torch.nn.functional.conv2d(padded, torch.from_numpy(w))
    gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
    gx = torch.nn.grad.conv2d_input(padded.shape, torch.from_numpy(w), torch.from_numpy(gy))
    gw = torch.nn.grad.conv2d_weight(padded, w.shape, torch.from_numpy(gy))
    args = (1, 1), padding, (1, 1), 1
    return x, w, gy, args, y, gx[:, :, top:top + h, left:left + wd], gw


def _assert_near(actual, expected):
    """actual within RTOL of expected, the error counted relative to expected's largest value:
    a sum's rounding grows with its terms, and a value near zero is a sum of terms far
    larger than itself (PyTorch's per-element tolerances fail a weight gradient's sums of
    thousands of terms, one task or many)."""
    expected = np.asarray(expected)
    rtol = RTOL[expected.dtype.type]
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


problems = pytest.mark.parametrize("n, channels, size, padding", [
    (n, channels, size, padding) for n in BATCHES for channels in CHANNELS for size in MAPS
    for padding in PADDINGS], ids=str)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)


def test_problems_supported():
    """The problems below are ones the direct kernel takes (`supports`)."""
    for channels in CHANNELS:
        for padding in PADDINGS:
            assert conv_direct_cpu.supports(np.dtype(np.float32), (*channels[::-1], 3, 3),
                                            (1, 1), padding, (1, 1), 1) is None


@dtypes
@problems
def test_forward_and_input_grad_as_one_task(n, channels, size, padding, dtype):
    x, w, gy, args, y, gx, _ = _problem(n, channels, size, padding, dtype)
    one_y = conv_direct_cpu.conv_forward(x, w, *args, size)
    one_gx = conv_direct_cpu.conv_input_grad(gy, w, x.shape, *args)
    _assert_near(one_y, y)
    _assert_near(one_gx, gx)
    for tasks in TASKS:
        np.testing.assert_array_equal(
            conv_direct_cpu.conv_forward(x, w, *args, size, tasks=tasks), one_y)
        np.testing.assert_array_equal(
            conv_direct_cpu.conv_input_grad(gy, w, x.shape, *args, tasks=tasks), one_gx)


@dtypes
@problems
def test_weight_grad_near_one_task(n, channels, size, padding, dtype):
    x, w, gy, args, _, _, gw = _problem(n, channels, size, padding, dtype)
    one = conv_direct_cpu.conv_weight_grad(x, gy, w.shape, *args)
    _assert_near(one, gw)
    for tasks in TASKS:
        shared = conv_direct_cpu.conv_weight_grad(x, gy, w.shape, *args, tasks=tasks)
        _assert_near(shared, one)
        _assert_near(shared, gw)


def test_one_task_launches_no_parallel_loop(monkeypatch):
    """tasks=1 (the default), or a batch of one sample whatever `tasks`, runs the plain loops
    on the calling thread."""
    def launched(*args):
        raise AssertionError("a parallel loop was launched")

    monkeypatch.setattr(conv_direct_cpu, "_forward_shared", launched)
    monkeypatch.setattr(conv_direct_cpu, "_weight_grad_shared", launched)
    x, w, gy, args, y, gx, gw = _problem(3, (3, 16), (32, 32), PADDINGS[0], np.float32)
    for tasks in ({}, {"tasks": 1}):
        _assert_near(conv_direct_cpu.conv_forward(x, w, *args, (32, 32), **tasks), y)
        _assert_near(conv_direct_cpu.conv_input_grad(gy, w, x.shape, *args, **tasks), gx)
        _assert_near(conv_direct_cpu.conv_weight_grad(x, gy, w.shape, *args, **tasks), gw)
    conv_direct_cpu.conv_forward(x[:1], w, *args, (32, 32), tasks=3)
    conv_direct_cpu.conv_input_grad(gy[:1], w, x[:1].shape, *args, tasks=3)
    conv_direct_cpu.conv_weight_grad(x[:1], gy[:1], w.shape, *args, tasks=3)


def test_by_input_takes_one_task():
    x, w, _, args, _, _, _ = _problem(3, (3, 16), (32, 32), PADDINGS[0], np.float32)
    with pytest.raises(ValueError, match="one task"):
        conv_direct_cpu.conv_forward(x, w, *args, (32, 32), by_input=True, tasks=2)
