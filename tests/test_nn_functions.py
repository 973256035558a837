"""The nn function family's modules against torch.nn (Upsample, padding, distances, GroupNorm,
RMSNorm, InstanceNorm): weights copied from the torch module, then outputs, input and
parameter gradients compared (test_nn_layers.check). The functions themselves are in the op
table (tests/optable.py, section "nn functions")."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from test_nn_layers import check, pair, randn  # noqa: E402


# ----------------------------------------------------------------------------- upsampling
@pytest.mark.parametrize("make,shape", [
    (lambda m: m.Upsample(scale_factor=2, mode="bicubic"), (2, 3, 4, 5)),
    (lambda m: m.Upsample(size=(7, 3), mode="bicubic", align_corners=True), (2, 3, 4, 5)),
    (lambda m: m.Upsample(scale_factor=(1.5, 2.5), mode="bilinear"), (1, 2, 4, 3)),
    (lambda m: m.Upsample(size=9, mode="linear", align_corners=True), (2, 3, 4)),
    (lambda m: m.Upsample(scale_factor=2, mode="trilinear"), (1, 2, 3, 2, 4)),
    (lambda m: m.Upsample(scale_factor=1.5, mode="nearest"), (1, 2, 3, 2, 4)),
    (lambda m: m.Upsample(size=5, mode="nearest-exact"), (2, 2, 3)),
    (lambda m: m.Upsample(size=(2, 3), mode="area"), (1, 2, 5, 7)),
    (lambda m: m.UpsamplingBilinear2d(scale_factor=2), (2, 3, 4, 5)),
    (lambda m: m.UpsamplingNearest2d(size=(5, 9)), (2, 3, 4, 5)),
])
def test_upsampling_modules(make, shape):
    ours, theirs = pair(make(nn), make(torch.nn))
    check(ours, theirs, [randn(*shape)])
    assert repr(ours) == repr(theirs)


def test_interpolate_second_order_against_pytorch():
    """Through create_graph: the gradient of a bicubic upsampling's squared-gradient norm."""
    x = randn(1, 2, 4, 5, dtype=np.float64)
    grads = []
    for lib, fn in ((minifm, F.interpolate), (torch, torch.nn.functional.interpolate)):
        t = lib.tensor(x, requires_grad=True)
        y = fn(t * t, size=(7, 6), mode="bicubic", align_corners=True)
        (g,) = lib.autograd.grad((y ** 2).sum(), t, create_graph=True)
        (g ** 2).sum().backward()
        grads.append(t.grad.numpy() if lib is torch else t.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- padding
@pytest.mark.parametrize("make,shape", [
    (lambda m: m.ReflectionPad1d(2), (2, 3, 5)),
    (lambda m: m.ReflectionPad2d((1, 0, 2, 1)), (2, 3, 4, 5)),
    (lambda m: m.ReflectionPad3d(1), (1, 2, 3, 4, 2)),
    (lambda m: m.ReplicationPad1d((3, 1)), (3, 4)),
    (lambda m: m.ReplicationPad2d(2), (3, 4, 2)),
    (lambda m: m.ReplicationPad3d((1, 2, 0, 1, 2, 0)), (1, 2, 3, 2, 2)),
    (lambda m: m.CircularPad1d(1), (2, 3, 4)),
    (lambda m: m.CircularPad2d((1, 2, 2, 0)), (2, 3, 4, 5)),
    (lambda m: m.CircularPad3d(1), (2, 2, 3, 2)),
    (lambda m: m.ZeroPad1d((1, 2)), (2, 3, 4)),
    (lambda m: m.ZeroPad2d(1), (2, 3, 4)),
    (lambda m: m.ZeroPad3d((1, 0, 0, 1, 2, 1)), (1, 2, 2, 3, 2)),
    (lambda m: m.ConstantPad1d(2, 3.5), (2, 4)),
    (lambda m: m.ConstantPad2d((1, -1, 0, 2), -1.0), (2, 3, 4)),
    (lambda m: m.ConstantPad3d(1, 0.5), (1, 2, 2, 2)),
])
def test_padding_modules(make, shape):
    ours, theirs = pair(make(nn), make(torch.nn))
    check(ours, theirs, [randn(*shape)])
    assert repr(ours) == repr(theirs)


def test_circular_pad_module_checks_dims():
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.CircularPad2d(1)(minifm.randn(3, 4))


# ----------------------------------------------------------------------------- distances
@pytest.mark.parametrize("make,shapes", [
    (lambda m: m.CosineSimilarity(), [(3, 4, 2), (3, 4, 2)]),
    (lambda m: m.CosineSimilarity(dim=-1, eps=0.5), [(3, 1, 4), (5, 4)]),
    (lambda m: m.PairwiseDistance(), [(3, 4), (3, 4)]),
    (lambda m: m.PairwiseDistance(p=1.0, eps=0.0, keepdim=True), [(2, 3, 4), (3, 4)]),
])
def test_distance_modules(make, shapes):
    ours, theirs = pair(make(nn), make(torch.nn))
    check(ours, theirs, [randn(*s, seed=i) for i, s in enumerate(shapes)])
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("fn", ["normalize", "cosine_similarity"])
def test_zero_vectors_have_pytorchs_gradients(fn):
    """A zero vector: its norm is raised to eps, and its gradient is finite, as PyTorch's."""
    x = randn(3, 4, dtype=np.float64)
    x[1] = 0
    args = (x,) if fn == "normalize" else (x, randn(3, 4, dtype=np.float64, seed=1))
    results = []
    for lib, functional in ((minifm, F), (torch, torch.nn.functional)):
        leaves = [lib.tensor(a, requires_grad=True) for a in args]
        out = getattr(functional, fn)(*leaves)
        out.backward(lib.tensor(randn(*out.shape, dtype=np.float64, seed=2)))
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in leaves])
    for a, b in zip(*results):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
