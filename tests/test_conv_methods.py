"""The candidate 3x3 stride-1 convolution kernels (minifm/kernels/conv_direct_cpu.py,
conv_winograd_cpu.py) against their NumPy references and PyTorch: forward, input gradient
and (direct) weight gradient at odd sizes (7x5 maps, 1x1 maps, asymmetric padding), batch
1 and 3, channels 1, 3 and 16, float32 and float64; and the geometries `supports` takes."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close

pytest.importorskip("numba")
torch = pytest.importorskip("torch")
from minifm.kernels import conv_direct_cpu, conv_winograd_cpu  # noqa: E402

# (batch, in channels, out channels, height, width, ((top, bottom), (left, right)))
PROBLEMS = [
    (1, 1, 1, 1, 1, ((1, 1), (1, 1))),
    (3, 3, 16, 7, 5, ((1, 1), (1, 1))),
    (1, 16, 3, 5, 7, ((0, 0), (0, 0))),
    (3, 16, 16, 6, 9, ((1, 1), (1, 1))),
    (3, 3, 1, 4, 3, ((2, 0), (1, 2))),
    (1, 1, 3, 2, 1, ((2, 2), (2, 2))),
]
KERNELS = [conv_direct_cpu, conv_winograd_cpu]
DTYPES = [np.float32, np.float64]


def _problem(problem, dtype, seed=0):
    """x, w, gy and PyTorch's y, gx, gw for one problem."""
    n, c, o, h, w, padding = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    (top, bottom), (left, right) = padding
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (left, right, top, bottom)), tw)
    gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(torch.tensor(gy))
    return x, weight, gy, padding, y.detach(), tx.grad, tw.grad


def _args(padding):
    return (1, 1), padding, (1, 1), 1


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__.split(".")[-1])
def test_forward_and_input_grad(kernel, problem, dtype):
    x, w, gy, padding, y, gx, _ = _problem(problem, dtype)
    out = kernel.conv_forward(x, w, *_args(padding), tuple(y.shape[2:]))
    assert out.dtype == dtype and out.flags.c_contiguous
    assert_close(out, y)
    assert_close(out, kernel.reference_forward(x, w, padding, tuple(y.shape[2:])))
    assert_close(kernel.conv_input_grad(gy, w, x.shape, *_args(padding)), gx)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_direct_against_references(problem, dtype):
    """The direct kernels' three maps (and, in float32 as the benchmark runs it, its other
    loop order) against the NumPy reference and PyTorch."""
    k = conv_direct_cpu
    x, w, gy, padding, y, gx, gw = _problem(problem, dtype, seed=1)
    out_size = tuple(y.shape[2:])
    if dtype == np.float32:
        assert_close(k.conv_forward(x, w, *_args(padding), out_size, by_input=True), y)
    got_gx = k.conv_input_grad(gy, w, x.shape, *_args(padding))
    assert_close(got_gx, k.reference_input_grad(gy, w, x.shape, padding))
    got_gw = k.conv_weight_grad(x, gy, w.shape, *_args(padding))
    assert got_gw.shape == w.shape and got_gw.dtype == dtype
    assert_close(got_gw, gw)
    assert_close(got_gw, k.reference_weight_grad(x, gy, padding))


@pytest.mark.parametrize("need", [(True, True), (True, False), (False, True)])
def test_direct_backward(need):
    """conv_backward: the gradients asked for, from stand-ins for the array not needed."""
    x, w, gy, padding, _, gx, gw = _problem(PROBLEMS[1], np.float32, seed=3)
    stand_in = lambda a: np.broadcast_to(np.zeros((), a.dtype), a.shape)  # noqa: E731
    got = conv_direct_cpu.conv_backward(x if need[1] else stand_in(x), gy,
                                        w if need[0] else stand_in(w), *_args(padding), *need)
    for value, expected, needed in zip(got, (gx, gw), need):
        if needed:
            assert_close(value, expected)
        else:
            assert value is None


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__.split(".")[-1])
def test_chunks_and_batch(kernel):
    """A batch spanning several of the Winograd kernel's chunks (and one the direct kernel
    loops over) equals the samples run one at a time."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((37, 3, 9, 11)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    args = _args(((1, 1), (1, 1)))
    whole = kernel.conv_forward(x, w, *args, (9, 11))
    for i in (0, 17, 36):
        np.testing.assert_array_equal(whole[i:i + 1],
                                      kernel.conv_forward(x[i:i + 1], w, *args, (9, 11)))


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__.split(".")[-1])
def test_supports(kernel):
    ok = dict(dtype=np.dtype(np.float32), w_shape=(8, 4, 3, 3), stride=(1, 1),
              padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    assert kernel.supports(**ok) is None
    assert kernel.supports(**{**ok, "dtype": np.dtype(np.float64)}) is None
    assert kernel.supports(**{**ok, "padding": ((0, 2), (2, 0))}) is None
    for change in (dict(dtype=np.dtype(np.float16)), dict(w_shape=(8, 4, 5, 5)),
                   dict(w_shape=(8, 4, 1, 3)), dict(stride=(2, 2)), dict(stride=(1, 2)),
                   dict(dilation=(2, 2)), dict(groups=2), dict(padding=((3, 3), (1, 1)))):
        reason = kernel.supports(**{**ok, **change})
        assert isinstance(reason, str) and "convolution" in reason, change


def test_direct_faster_than_im2col():
    """The measured rule: thin layers (at most 16 channels in and out) on maps of 32x32 and
    more."""
    faster = conv_direct_cpu.faster_than_im2col
    assert faster((64, 16, 32, 32), (16, 16, 3, 3))
    assert faster((64, 3, 32, 32), (16, 3, 3, 3))
    assert faster((1, 1, 16, 64), (1, 1, 3, 3))
    assert not faster((64, 16, 16, 16), (16, 16, 3, 3))
    assert not faster((64, 32, 32, 32), (16, 32, 3, 3))
    assert not faster((64, 16, 32, 32), (32, 16, 3, 3))
