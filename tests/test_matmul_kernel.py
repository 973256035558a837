"""The matrix products on minifm's threads (minifm/kernels/matmul_cpu.py): every layout the
kernel reads (C-contiguous, transposed, copied), 2-d and batched, cut by rows and by batch
entries, at odd sizes, on one thread and two, against NumPy's product; and through minifm's
linear and matmul against PyTorch, forward and backward."""
from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")
torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from minifm import kernels  # noqa: E402
from minifm.kernels import matmul_cpu  # noqa: E402
from minifm.ops import linalg  # noqa: E402

from conftest import assert_close  # noqa: E402

RNG = np.random.default_rng(0)
needs_openblas = pytest.mark.skipif(matmul_cpu.supports(np.dtype(np.float32)) is not None,
                                    reason="NumPy's BLAS is not the OpenBLAS the kernel calls")


@pytest.fixture(params=[1, 2])
def threads(request, monkeypatch):
    """Numba's thread count for the test, every product of linear and matmul sent to the
    kernel and cut (MATMUL_KERNEL_FROM and SPLIT_FROM 0)."""
    if request.param > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("needs two Numba threads")
    monkeypatch.setattr(linalg, "MATMUL_KERNEL_FROM", 0)
    monkeypatch.setattr(matmul_cpu, "SPLIT_FROM", 0)
    previous = numba.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(previous)


def _layout(x, how):
    """x (its values) laid out as `how` says: C-contiguous, a transpose's view, or strided."""
    if how == "c":
        return np.ascontiguousarray(x)
    if how == "t":
        return np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    padded = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    padded[..., ::2] = x
    return padded[..., ::2]


@needs_openblas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a,layout_b", [("c", "c"), ("t", "c"), ("c", "t"), ("t", "t"),
                                               ("strided", "c")])
@pytest.mark.parametrize("shape", [(1, 7, 5, 3), (1, 37, 29, 31), (3, 11, 13, 5),
                                   (1, 1, 4, 6)])
def test_products_match_numpy(threads, dtype, layout_a, layout_b, shape):
    entries, m, k, n = shape
    a = RNG.standard_normal((entries, m, k)).astype(dtype)
    b = RNG.standard_normal((entries, k, n)).astype(dtype)
    if entries == 1:
        a, b = a[0], b[0]
    a, b = _layout(a, layout_a), _layout(b, layout_b)
    out = matmul_cpu.matmul(a, b)
    assert out.shape == (a @ b).shape and out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@needs_openblas
@pytest.mark.parametrize("entries", [1, 2, 5])
def test_cut_by_rows_and_by_entries_give_numpys_bits_per_block(threads, entries):
    """Each block is one gemm over whole rows: the result does not depend on the cut."""
    a = RNG.standard_normal((entries, 64, 48)).astype(np.float32)
    b = RNG.standard_normal((entries, 48, 40)).astype(np.float32)
    serial = np.stack([x @ y for x, y in zip(a, b)])
    np.testing.assert_allclose(matmul_cpu.matmul(a, b), serial, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_other_dtypes_are_refused_and_run_as_numpy_products(dtype):
    assert "float32 or float64" in matmul_cpu.supports(np.dtype(dtype))
    a = np.arange(12).reshape(3, 4).astype(dtype)
    got = minifm.matmul(minifm.tensor(a), minifm.tensor(a.T.copy())).numpy()
    np.testing.assert_array_equal(got, a @ a.T)


@needs_openblas
@pytest.mark.parametrize("shape_x,shape_w", [((6, 37, 29), (31, 29)), ((113, 64), (65, 64))])
def test_linear_forward_and_backward_match_pytorch(threads, shape_x, shape_w):
    x = RNG.standard_normal(shape_x).astype(np.float32)
    w = RNG.standard_normal(shape_w).astype(np.float32)
    b = RNG.standard_normal(shape_w[0]).astype(np.float32)
    mx, mw, mb = (minifm.tensor(v, requires_grad=True) for v in (x, w, b))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    y, ty = F.linear(mx, mw, mb), torch.nn.functional.linear(tx, tw, tb)
    g = RNG.standard_normal(ty.shape).astype(np.float32)
    y.backward(minifm.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(y, ty, rtol=1e-5, atol=1e-4)
    for mine, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-4)


@needs_openblas
@pytest.mark.parametrize("shape_x,shape_y", [((5, 17, 13), (5, 13, 11)), ((4, 9, 7), (7, 3)),
                                             ((19, 23), (23, 29)), ((2, 3, 5, 7), (3, 7, 4)),
                                             ((2, 3, 9, 7), (2, 3, 7, 5))])
def test_matmul_forward_and_backward_match_pytorch(threads, shape_x, shape_y):
    x = RNG.standard_normal(shape_x).astype(np.float32)
    y = RNG.standard_normal(shape_y).astype(np.float32)
    mx, my = minifm.tensor(x, requires_grad=True), minifm.tensor(y, requires_grad=True)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    out, tout = minifm.matmul(mx, my), torch.matmul(tx, ty)
    g = RNG.standard_normal(tout.shape).astype(np.float32)
    out.backward(minifm.tensor(g))
    tout.backward(torch.tensor(g))
    assert_close(out, tout, rtol=1e-5, atol=1e-4)
    assert_close(mx.grad, tx.grad, rtol=1e-5, atol=1e-4)
    assert_close(my.grad, ty.grad, rtol=1e-5, atol=1e-4)


@needs_openblas
def test_second_order_gradients_run_through_the_same_products(threads):
    """Under create_graph the backward's products are recorded (not the kernel's arrays)."""
    x = RNG.standard_normal((9, 8)).astype(np.float64)
    w = RNG.standard_normal((5, 8)).astype(np.float64)
    mx, mw = minifm.tensor(x, requires_grad=True), minifm.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gx,) = minifm.autograd.grad((F.linear(mx, mw) ** 2).sum(), [mx], create_graph=True)
    (tgx,) = torch.autograd.grad((torch.nn.functional.linear(tx, tw) ** 2).sum(), [tx],
                                 create_graph=True)
    gx.sum().backward()
    tgx.sum().backward()
    assert_close(mw.grad, tw.grad, rtol=1e-10, atol=1e-10)


def test_the_ops_hand_the_kernel_the_products_it_would_cut():
    """linear and matmul send a product to the kernel from the size the kernel cuts from."""
    assert linalg.MATMUL_KERNEL_FROM == matmul_cpu.SPLIT_FROM
