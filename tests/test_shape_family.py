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
