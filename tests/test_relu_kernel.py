"""The Numba relu kernel (minifm/kernels/relu_cpu.py) and relu's choice of path: Relu (NumPy)
below RELU_KERNEL_FROM elements, the kernel from there on; the same bits as Relu either
side of the threshold (NaN, infinities, -0.0 included), PyTorch's values and node name,
second order through the kernel's node, and in-place relu through a view."""
from __future__ import annotations

import numpy as np
import pytest

import minifm
import minifm.nn.functional as F
from minifm.ops.activation import RELU_KERNEL_FROM, Relu, ReluFused

pytest.importorskip("numba")
torch = pytest.importorskip("torch")
import minifm.kernels as kernels  # noqa: E402
from minifm.kernels import cpu_tasks, relu_cpu  # noqa: E402

BELOW, AT = (RELU_KERNEL_FROM - 1,), (RELU_KERNEL_FROM // 64, 64)


@pytest.fixture(autouse=True)
def _reset_backend():
    yield
    kernels.set_backend("relu", None)


@pytest.fixture(params=["serial", "parallel"])
def loops(request, monkeypatch):
    """The kernel's loops on the calling thread, or cut into one range per thread."""
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", 1 << 62 if request.param == "serial" else 0)
    return request.param


def _special(shape, dtype, seed=0):
    """Normal draws with NaN, +-inf, -0.0 and +0.0 among them."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, np.finfo(dtype).tiny]
    return x


@pytest.mark.parametrize("shape, fn", [(BELOW, Relu), (AT, ReluFused), ((3, 5), Relu)])
def test_the_path_follows_the_size(shape, fn):
    out = F.relu(minifm.zeros(*shape, requires_grad=True))
    assert out.grad_fn.fn is fn
    assert out.grad_fn.name() == "ReluBackward0"  # PyTorch's node name on both paths


def test_reference_backend_and_unsupported_inputs_take_relu():
    kernels.set_backend("relu", "reference")
    assert F.relu(minifm.zeros(*AT, requires_grad=True)).grad_fn.fn is Relu
    kernels.set_backend("relu", None)
    transposed = minifm.zeros(*AT, requires_grad=True).t()
    assert F.relu(transposed).grad_fn.fn is Relu
    assert F.relu(minifm.zeros(*AT, dtype=minifm.float16, requires_grad=True)).grad_fn.fn is Relu
    assert F.relu(minifm.zeros(*AT, dtype=minifm.int64)).dtype == minifm.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [BELOW, AT, (3, 7, 401)])
def test_kernel_gives_relus_bits_and_torchs_values(shape, dtype, loops):
    x, g = _special(shape, dtype), _special(shape, dtype, seed=1)
    results = []
    for backend in ("reference", "auto"):
        kernels.set_backend("relu", backend)
        t = minifm.tensor(x, requires_grad=True)
        out = F.relu(t)
        out.backward(minifm.tensor(g))
        results.append((out.detach().numpy(), t.grad.numpy()))
    for ours, reference in zip(*results):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours.view(f"i{ours.itemsize}"),
                                      reference.view(f"i{ours.itemsize}"))
    tx = torch.from_numpy(x).requires_grad_()
    torch.relu(tx).backward(torch.from_numpy(g))
    t_out = torch.relu(torch.from_numpy(x)).numpy()
    out, grad = results[1]
    np.testing.assert_array_equal(out, t_out)  # equal values (-0.0 == 0.0)
    np.testing.assert_array_equal(grad, tx.grad.numpy())  # NaN inputs and infinite g too


def test_second_order_through_the_kernel_node():
    x = np.random.default_rng(2).standard_normal(AT).astype(np.float64)
    t = minifm.tensor(x, requires_grad=True)
    y = F.relu(t)
    assert y.grad_fn.fn is ReluFused
    (gx,) = minifm.autograd.grad((y * y * y).sum(), t, create_graph=True)
    gx.sum().backward()
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.relu(tx)
    (tgx,) = torch.autograd.grad((ty * ty * ty).sum(), tx, create_graph=True)
    tgx.sum().backward()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy())
    np.testing.assert_allclose(t.grad.numpy(), tx.grad.numpy())


def test_inplace_relu_through_a_view_reaches_the_base():
    base = minifm.tensor(np.random.default_rng(3).standard_normal((2,) + AT).astype(np.float32))
    view = base[1]
    F.relu(view, inplace=True)
    assert (base.numpy()[1] >= 0).all()
    assert (base.numpy()[0] < 0).any()


def test_kernels_refuse_what_they_cannot_run():
    y = relu_cpu.relu_forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="relu backward"):
        relu_cpu.relu_backward(np.ones((3, 4), np.float32), y)
    with pytest.raises(TypeError, match="relu forward"):  # the output would be a copy's
        relu_cpu.relu_forward(np.ones((4, 3), np.float32).T)
    with pytest.raises(TypeError, match="relu forward"):
        relu_cpu.relu_forward(np.ones((4, 3), np.float16))
