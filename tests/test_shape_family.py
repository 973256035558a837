"""The shape family beyond the op table (tests/optable.py, section "shape family II"): the
nn modules against PyTorch's, and the cases the table cannot hold (PyTorch's own quirks)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm import nn  # noqa: E402
from conftest import assert_close, to_torch  # noqa: E402


@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.PixelShuffle(2), torch.nn.PixelShuffle(2), (2, 8, 3, 5)),
    (nn.PixelUnshuffle(3), torch.nn.PixelUnshuffle(3), (2, 2, 6, 9)),
])
def test_pixel_shuffle_modules(ours, theirs, shape):
    x = minifm.randn(*shape, requires_grad=True)
    tx = to_torch(x, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty)
    g = minifm.randn(*y.shape)
    y.backward(g)
    ty.backward(to_torch(g))
    assert_close(x.grad, tx.grad)
    assert repr(ours) == repr(theirs)


def test_pixel_shuffle_of_empty_tensors():
    """Empty inputs get the shape the rule gives. PyTorch agrees for pixel_shuffle's forward,
    but returns an empty input unchanged from pixel_unshuffle (and so fails pixel_shuffle's
    backward on it)."""
    x = minifm.zeros(0, 8, 2, 2, requires_grad=True)
    y = minifm.pixel_shuffle(x, 2)
    assert tuple(y.shape) == tuple(torch.pixel_shuffle(torch.zeros(0, 8, 2, 2), 2).shape)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert tuple(minifm.pixel_unshuffle(minifm.zeros(0, 1, 4, 4), 2).shape) == (0, 4, 2, 2)


@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.Unfold(2), torch.nn.Unfold(2), (2, 3, 5, 6)),
    (nn.Unfold((2, 3), 2, 1, (1, 2)), torch.nn.Unfold((2, 3), 2, 1, (1, 2)), (1, 2, 7, 8)),
    (nn.Fold((4, 5), 2), torch.nn.Fold((4, 5), 2), (2, 12, 12)),
    (nn.Fold(4, (2, 3), stride=2, padding=1), torch.nn.Fold(4, (2, 3), stride=2, padding=1),
     (1, 6, 6)),
])
def test_fold_modules(ours, theirs, shape):
    test_pixel_shuffle_modules(ours, theirs, shape)


def test_fold_of_unfold_counts_the_blocks_covering_each_pixel():
    """fold(unfold(x)) = x times the number of blocks that cover each pixel (PyTorch's
    documented identity), here with overlapping, dilated and padded blocks."""
    args = dict(kernel_size=(3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
    x = minifm.randn(2, 3, 7, 6)
    ones = minifm.ones(2, 3, 7, 6)
    F = minifm.nn.functional
    back = F.fold(F.unfold(x, **args), (7, 6), **args)
    counts = F.fold(F.unfold(ones, **args), (7, 6), **args)
    np.testing.assert_allclose(back.numpy(), (x * counts).numpy(), rtol=1e-6)
    assert counts.numpy().max() > 1  # the blocks do overlap


def test_tensor_unfold_is_a_view():
    """Tensor.unfold shares the tensor's memory, as in PyTorch: a write through it shows in
    the tensor, and in-place ops through it reach the base's gradient."""
    x = minifm.arange(8.0)
    windows = x.unfold(0, 2, 2)
    windows[1, 0] = 100.0
    assert x[2].item() == 100.0
    for lib in (minifm, torch):
        a = lib.arange(8.0, requires_grad=True)
        b = a * 1
        b.unfold(0, 3, 2)[1].mul_(2)       # window 1 is b[2:5]
        (b * lib.arange(8.0)).sum().backward()
        if lib is minifm:
            ours = a.grad.numpy()
        else:
            np.testing.assert_array_equal(ours, a.grad.numpy())


def test_meshgrid_outputs_are_expanded_views():
    x, y = minifm.tensor([1.0, 2.0]), minifm.tensor([3.0, 4.0, 5.0])
    gx, gy = minifm.meshgrid(x, y, indexing="ij")
    assert gx._data.strides[1] == 0 and gy._data.strides[0] == 0
    assert np.shares_memory(gx._data, x._data)


# ----------------------------------------------------------------------------- drawn dims
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

FAST = settings(max_examples=25, deadline=None)


def _both(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return minifm.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _same(fn_ours, fn_theirs, shape):
    """Equal values and gradients, or the same refusal (both raise)."""
    x, tx = _both(shape)
    try:
        expected = fn_theirs(tx)
    except (RuntimeError, IndexError):
        with pytest.raises((RuntimeError, IndexError, ValueError)):
            fn_ours(x)
        return
    y = fn_ours(x)
    assert tuple(y.shape) == tuple(expected.shape)
    assert_close(y, expected)
    g = np.random.default_rng(1).standard_normal(tuple(expected.shape))
    y.backward(minifm.tensor(g))
    expected.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)


@FAST
@given(shape=SHAPES, data=st.data())
def test_movedim_with_drawn_dims(shape, data):
    n = len(shape)
    src = data.draw(st.lists(st.integers(-n, n - 1), max_size=n))
    dst = data.draw(st.lists(st.integers(-n, n - 1), min_size=len(src), max_size=len(src)))
    _same(lambda x: x.movedim(src, dst), lambda x: x.movedim(src, dst), shape)


@FAST
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=0, max_side=4), data=st.data())
def test_rot90_with_drawn_k_and_dims(shape, data):
    n = len(shape)
    dims = data.draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=2))
    k = data.draw(st.integers(-6, 6))
    _same(lambda x: x.rot90(k, dims), lambda x: x.rot90(k, dims), shape)


@FAST
@given(shape=SHAPES, data=st.data())
def test_unfold_with_drawn_windows(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(0, shape[dim] + 1))
    step = data.draw(st.integers(1, 3))
    _same(lambda x: x.unfold(dim, size, step), lambda x: x.unfold(dim, size, step), shape)


@FAST
@given(shape=SHAPES, data=st.data())
def test_diag_embed_with_drawn_dims(shape, data):
    n = len(shape) + 1
    offset = data.draw(st.integers(-3, 3))
    d1, d2 = data.draw(st.integers(-n, n - 1)), data.draw(st.integers(-n, n - 1))
    _same(lambda x: minifm.diag_embed(x, offset, d1, d2),
          lambda x: torch.diag_embed(x, offset, d1, d2), shape)


@FAST
@given(shape=SHAPES, data=st.data())
def test_repeat_interleave_with_drawn_repeats(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=shape[dim], max_size=shape[dim]))
    _same(lambda x: x.repeat_interleave(minifm.tensor(counts, dtype=minifm.int64), dim),
          lambda x: x.repeat_interleave(torch.tensor(counts, dtype=torch.int64), dim), shape)


@FAST
@given(shape=SHAPES, reps=st.lists(st.integers(0, 3), max_size=5))
def test_tile_with_drawn_reps(shape, reps):
    _same(lambda x: x.tile(reps), lambda x: x.tile(reps), shape)


@pytest.mark.parametrize("op", [
    lambda lib, x: lib.trace(x),
    lambda lib, x: lib.diag_embed(x),
    lambda lib, x: x.unfold(1, 2, 1),
    lambda lib, x: lib.nn.functional.unfold(x.reshape(1, 1, 3, 4), 2),
    lambda lib, x: lib.nn.functional.fold(x.reshape(1, 2, 6), (4, 4), (2, 1), stride=(1, 2)),
], ids=["trace", "diag_embed", "Tensor.unfold", "F.unfold", "F.fold"])
def test_grad_fn_names_follow_pytorch(op):
    x, tx = _both((3, 4))
    assert op(minifm, x).grad_fn.name() == type(op(torch, tx).grad_fn).__name__


# ----------------------------------------------------------------------------- second order
@pytest.mark.parametrize("fn,shape", [
    (lambda x: minifm.nn.functional.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=2),
     (1, 2, 5, 6)),
    (lambda x: minifm.nn.functional.fold(x, (4, 5), (2, 2), padding=1, stride=(2, 1)), (1, 8, 18)),
    (lambda x: x.unfold(1, 3, 2), (2, 7)),
    (lambda x: minifm.diag_embed(x, -1, 0, 2), (3, 2)),
    (lambda x: x.diagonal(1, 1, 0), (3, 4)),
    (lambda x: minifm.trace(x) * x, (3, 3)),
    (lambda x: x.repeat_interleave(minifm.tensor([2, 0, 1]), 0), (3, 2)),
    (lambda x: minifm.block_diag(x, x[:1]), (2, 2)),
], ids=["F.unfold", "F.fold", "Tensor.unfold", "diag_embed", "diagonal", "trace",
        "repeat_interleave", "block_diag"])
def test_gradgradcheck(fn, shape):
    """Second derivatives through the backward of each op, with a cotangent that requires
    grad (so each backward runs on the differentiable array namespace)."""
    x = minifm.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    assert minifm.autograd.gradgradcheck(lambda t: fn(t) ** 2, (x,))
