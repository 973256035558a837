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


@pytest.mark.parametrize("call", [
    lambda f, x: f.interpolate(x, size=(7, 6), mode="bicubic", align_corners=True),
    lambda f, x: f.interpolate(x, scale_factor=1.5, mode="bilinear"),
    lambda f, x: f.pad(x, (2, 1, 1, 3), mode="reflect"),
    lambda f, x: f.pad(x, (2, 1, 1, 3), mode="circular"),
])
def test_resampling_second_order_against_pytorch(call):
    """Through create_graph: the gradient of a resampling's squared-gradient norm."""
    x = randn(1, 2, 4, 5, dtype=np.float64)
    grads = []
    for lib, f in ((minifm, F), (torch, torch.nn.functional)):
        t = lib.tensor(x, requires_grad=True)
        y = call(f, t * t)
        (g,) = lib.autograd.grad((y ** 2).sum(), t, create_graph=True)
        (g ** 2).sum().backward()
        grads.append(t.grad.numpy())
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


# ----------------------------------------------------------------------------- normalization
def _randomize(module):
    """Non-trivial affine parameters in the torch module (they are copied to ours)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    return module


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,shape", [
    (lambda m: m.GroupNorm(3, 6), (2, 6, 4)),
    (lambda m: m.GroupNorm(2, 4, eps=0.1, affine=False), (3, 4, 2, 3)),
    (lambda m: m.GroupNorm(1, 4, bias=False), (2, 4)),
    (lambda m: m.RMSNorm(4), (2, 3, 4)),
    (lambda m: m.RMSNorm([3, 4], eps=1e-3, elementwise_affine=False), (2, 3, 4)),
    (lambda m: m.InstanceNorm1d(3), (2, 3, 5)),
    (lambda m: m.InstanceNorm1d(3, affine=True), (3, 5)),         # no batch dim
    (lambda m: m.InstanceNorm2d(3, affine=True, eps=0.01), (2, 3, 4, 2)),
    (lambda m: m.InstanceNorm3d(2, affine=True), (1, 2, 3, 2, 2)),
    (lambda m: m.LocalResponseNorm(3, alpha=0.2, k=2.0), (2, 5, 3, 2)),
])
def test_norm_modules(make, shape, dtype):
    ours, theirs = pair(make(nn), _randomize(make(torch.nn)), dtype)
    for train in (True, False):
        check(ours, theirs, [randn(*shape, dtype=dtype)], train=train)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_running_stats(momentum):
    """track_running_stats: training updates the running estimates (the examples' average
    mean and unbiased variance), eval normalizes with them; num_batches_tracked stays 0."""
    kw = dict(affine=True, track_running_stats=True, momentum=momentum)
    ours, theirs = pair(nn.InstanceNorm2d(3, **kw), _randomize(torch.nn.InstanceNorm2d(3, **kw)))
    for seed in range(3):
        check(ours, theirs, [randn(2, 3, 4, 5, seed=seed)], train=True)
    check(ours, theirs, [randn(2, 3, 4, 5, seed=9)], train=False)
    assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked) == 0


def test_norm_module_errors():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(3)(minifm.randn(3, 4))
    with pytest.raises(ValueError, match=r"size at dim=1 to match num_features \(5\)"):
        nn.InstanceNorm1d(5, affine=True)(minifm.randn(2, 6, 4))


def test_rms_norm_default_eps_is_the_dtypes():
    x = np.full((1, 3), 1e-4, np.float32)
    ours = F.rms_norm(minifm.tensor(x), (3,))
    theirs = torch.nn.functional.rms_norm(torch.tensor(x), (3,))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------- property tests
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from conftest import assert_close  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(data=st.data(), fn=st.sampled_from(["cosine_similarity", "pairwise_distance"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4,
                                                max_side=4))
def test_distances_broadcast_like_pytorch(data, fn, shapes):
    """Drawn broadcastable shapes and (for cosine_similarity) a drawn dim, negative too:
    values and both gradients as PyTorch's."""
    ndim = len(shapes.result_shape)
    kw = {}
    if fn == "cosine_similarity":
        kw["dim"] = data.draw(st.integers(-ndim, ndim - 1))
    arrays = [data.draw(hnp.arrays(np.float64, s, elements=st.floats(-3, 3, width=32)))
              for s in shapes.input_shapes]
    outs = []
    for lib, functional in ((minifm, F), (torch, torch.nn.functional)):
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = getattr(functional, fn)(*leaves, **kw)
        out.backward(lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape))))
        outs.append((out, leaves))
    (ours, our_leaves), (theirs, their_leaves) = outs
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert_close(ours, theirs)
    for a, b in zip(our_leaves, their_leaves):
        assert a.grad.shape == a.shape
        assert_close(a.grad, b.grad)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), mode=st.sampled_from(["nearest", "nearest-exact", "linear", "area"]),
       spatial=st.integers(1, 3))
def test_interpolate_any_rank_like_pytorch(data, mode, spatial):
    """Drawn input sizes and output sizes or scale factors, 1 to 3 spatial dims: the
    sizes, and the values, as PyTorch's (the gradients are the op table's)."""
    mode = {"linear": ("linear", "bilinear", "trilinear")[spatial - 1]}.get(mode, mode)
    shape = (2, 2) + tuple(data.draw(st.integers(1, 5)) for _ in range(spatial))
    x = np.random.default_rng(0).standard_normal(shape)
    if data.draw(st.booleans()):
        kw = {"size": tuple(data.draw(st.integers(1, 7)) for _ in range(spatial))}
    else:
        kw = {"scale_factor": data.draw(st.floats(0.6, 3.0)), "recompute_scale_factor":
              data.draw(st.sampled_from([None, True]))}
    if mode in ("linear", "bilinear", "trilinear"):
        kw["align_corners"] = data.draw(st.booleans())
    try:
        theirs = torch.nn.functional.interpolate(torch.tensor(x, requires_grad=True), mode=mode,
                                                 **kw)
    except RuntimeError:  # an output size of 0: both refuse
        with pytest.raises(RuntimeError, match="sizes should be greater than 0"):
            F.interpolate(minifm.tensor(x), mode=mode, **kw)
        return
    ours = F.interpolate(minifm.tensor(x), mode=mode, **kw)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert_close(ours, theirs)


@pytest.mark.parametrize("fn", [F.group_norm, F.instance_norm])
def test_norm_with_bias_and_no_weight(fn):
    """PyTorch's backward fails here (group_norm; instance_norm's second order): ours gives
    the first and second derivatives of a weight of ones."""
    x0, b0 = randn(2, 3, 4, dtype=np.float64), randn(3, dtype=np.float64, seed=1)
    results = []
    for weight in (None, minifm.ones(3, dtype=minifm.float64)):
        x, b = minifm.tensor(x0, requires_grad=True), minifm.tensor(b0, requires_grad=True)
        y = fn(x, 3, weight, b) if fn is F.group_norm else fn(x, weight=weight, bias=b)
        gx, gb = minifm.autograd.grad((y * y).sum(), (x, b), create_graph=True)
        (hx,) = minifm.autograd.grad((gx * gx).sum() + (gb * gb).sum(), x)
        results.append([t.detach().numpy() for t in (y, gx, gb, hx)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- names
NODES = [
    lambda f, x: f.interpolate(x, scale_factor=2, mode="bicubic"),
    lambda f, x: f.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
    lambda f, x: f.interpolate(x, size=(3, 5), mode="nearest"),
    lambda f, x: f.interpolate(x, size=(3, 5), mode="nearest-exact"),
    lambda f, x: f.interpolate(x[0], size=5, mode="linear"),
    lambda f, x: f.interpolate(x[None], size=5, mode="trilinear"),
    lambda f, x: f.pad(x, (1, 2, 2, 1), mode="reflect"),
    lambda f, x: f.pad(x[0], (1, 2), mode="replicate"),
    lambda f, x: f.pad(x[None], (1, 1, 1, 1, 1, 1), mode="reflect"),
    lambda f, x: f.pad(x, (1, 2)),
]


@pytest.mark.parametrize("op", NODES)
def test_grad_fn_names_follow_pytorch(op):
    x = randn(2, 3, 4, 4)
    ours = op(F, minifm.tensor(x, requires_grad=True)).grad_fn.name()
    theirs = type(op(torch.nn.functional, torch.tensor(x, requires_grad=True)).grad_fn).__name__
    assert ours == theirs


@pytest.mark.parametrize("name,kw", [("upsample", {"mode": "bicubic"}),
                                     ("upsample_nearest", {}), ("upsample_bilinear", {})])
def test_deprecated_upsample_functions(name, kw):
    x = randn(1, 2, 3, 4)
    ours = getattr(F, name)(minifm.tensor(x), scale_factor=2, **kw)
    with pytest.warns(UserWarning):
        theirs = getattr(torch.nn.functional, name)(torch.tensor(x), scale_factor=2, **kw)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["bicubic", "bilinear", "nearest", "area"])
def test_interpolate_float16_like_pytorch(mode):
    """float16 is resampled in float32 (PyTorch's opmath): within one float16 ulp."""
    x = randn(1, 2, 5, 7).astype(np.float16)
    ours, theirs = minifm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a = F.interpolate(ours, size=(9, 4), mode=mode)
    b = torch.nn.functional.interpolate(theirs, size=(9, 4), mode=mode)
    a.sum().backward()
    b.sum().backward()
    assert a.dtype == ours.grad.dtype == np.float16
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=2e-3, rtol=1e-3)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=2e-3, rtol=1e-3)


def test_batch_norm_3d():
    ours, theirs = pair(nn.BatchNorm3d(3), _randomize(torch.nn.BatchNorm3d(3)))
    for train in (True, False, True):
        check(ours, theirs, [randn(2, 3, 2, 3, 2)], train=train)
    assert repr(ours) == repr(theirs)
    with pytest.raises(ValueError, match=r"expected 5D input \(got 4D input\)"):
        ours(minifm.randn(2, 3, 2, 2))


def test_pdist_of_equal_rows_has_pytorchs_zero_gradient():
    x = np.repeat(randn(2, 3, dtype=np.float64), 2, axis=0)  # rows 0, 1 and 2, 3 equal
    grads = []
    for lib, functional in ((minifm, F), (torch, torch.nn.functional)):
        t = lib.tensor(x, requires_grad=True)
        functional.pdist(t).sum().backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
