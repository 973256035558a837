"""Every op of the table in optable.py against PyTorch: forward values and dtypes, gradients
(values, shape and dtype), float64 central finite differences, and the errors bad inputs
raise. Dropout, whose output is random, is tested on its own at the end."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from conftest import assert_close, call_op, convert, flat, to_numpy  # noqa: E402
from optable import F64, OPS, Make  # noqa: E402


def cases(select):
    return [pytest.param(info, dtype, id=f"{info.name}-{dtype.name}")
            for info in OPS for dtype in info.dtypes if select(info, dtype)]


@pytest.mark.parametrize("info,dtype", cases(lambda info, dtype: True))
def test_forward(info, dtype):
    for sample in info.samples(Make(dtype)):
        ours, theirs = call_op(info, sample, "minifm"), call_op(info, sample, "torch")
        assert len(ours) == len(theirs), sample
        for a, b in zip(ours, theirs):
            assert isinstance(a, minifm.Tensor), (sample, type(a))
            assert tuple(a.shape) == tuple(b.shape), sample
            assert_close(a, b, msg=lambda m: f"{sample}: {m}")


def _grads(info, sample, lib, cotangents=None):
    """(leaves, their gradients, the cotangents used) for one sample."""
    leaves = []
    outs = [o for o in call_op(info, sample, lib, leaves)
            if o.is_floating_point() and o.requires_grad]
    if cotangents is None:
        rng = np.random.default_rng(1)
        cotangents = [rng.standard_normal(tuple(o.shape)).astype(to_numpy(o).dtype) for o in outs]
    if lib == "torch":
        grads = torch.autograd.grad(outs, leaves, [torch.from_numpy(c) for c in cotangents],
                                    allow_unused=True)
    else:
        grads = minifm.autograd.grad(outs, leaves, [minifm.Tensor(c) for c in cotangents],
                                     allow_unused=True)
    return leaves, grads, cotangents


@pytest.mark.parametrize("info,dtype", cases(lambda info, dtype: info.differentiable and dtype.kind == "f"))
def test_backward(info, dtype):
    for sample in info.samples(Make(dtype)):
        t_leaves, t_grads, cot = _grads(info, sample, "torch")
        leaves, grads, _ = _grads(info, sample, "minifm", cot)
        assert len(grads) == len(t_grads)
        for leaf, g, tg in zip(leaves, grads, t_grads):
            if tg is None:
                assert g is None or not g._data.any(), sample
                continue
            assert g is not None, sample
            assert g.shape == leaf.shape and g.dtype == leaf.dtype, (sample, g.shape, g.dtype)
            assert_close(g, tg, msg=lambda m: f"{sample}: {m}")


def _second_order(info, sample, lib):
    """Gradients of <w, grad <v, f(x)>> with respect to the leaves x: second derivatives,
    through the first-order gradients built with create_graph=True."""
    leaves = []
    outs = [o for o in call_op(info, sample, lib, leaves)
            if o.is_floating_point() and o.requires_grad]
    rng = np.random.default_rng(2)
    wrap = (lambda a: torch.from_numpy(a)) if lib == "torch" else minifm.Tensor
    autograd = torch.autograd if lib == "torch" else minifm.autograd
    v = [wrap(rng.standard_normal(tuple(o.shape))) for o in outs]
    firsts = autograd.grad(outs, leaves, v, create_graph=True, allow_unused=True)
    pairs = [(g, wrap(rng.standard_normal(tuple(g.shape)))) for g in firsts
             if g is not None and g.requires_grad]
    if not pairs:  # the first derivatives are constant (a linear op): no second order
        return [None] * len(leaves)
    total = sum((g * w).sum() for g, w in pairs)
    return autograd.grad(total, leaves, allow_unused=True)


@pytest.mark.parametrize("info,dtype", cases(
    lambda info, dtype: info.differentiable and info.second_order and dtype == F64))
def test_second_order_matches_pytorch(info, dtype):
    """Gradients of gradients (create_graph=True) equal PyTorch's, for every op."""
    for sample in info.samples(Make(dtype)):
        ours, theirs = _second_order(info, sample, "minifm"), _second_order(info, sample, "torch")
        for g, tg in zip(ours, theirs):
            if tg is None or g is None:
                assert (g is None or not g._data.any()) and (tg is None or not tg.detach().numpy().any()), sample
                continue
            assert_close(g, tg, msg=lambda m: f"{sample}: {m}")


@pytest.mark.parametrize("info,dtype", cases(lambda info, dtype: info.differentiable and dtype == F64))
def test_finite_differences(info, dtype):
    """minifm.autograd.gradcheck: central differences in float64 agree with the analytic
    gradient, element by element (samples are drawn away from kinks)."""
    for sample in info.samples(Make(dtype)):
        if not sample.fd:
            continue
        leaves = []
        args = convert(sample.args, "minifm", leaves)
        kwargs = {k: convert(v, "minifm", leaves) for k, v in sample.kwargs.items()}
        # the leaves are perturbed in place, so the function closes over args and kwargs
        assert minifm.autograd.gradcheck(lambda *_: tuple(flat(info.op(*args, **kwargs))),
                                         leaves, rtol=1e-5, atol=1e-6), sample


@pytest.mark.parametrize("info", [pytest.param(i, id=i.name) for i in OPS if i.errors])
def test_errors(info):
    for case in info.errors(Make(np.float32)):
        args = convert(case.args, "minifm")
        with pytest.raises(case.exc, match=case.match):
            info.op(*args, **case.kwargs)


REQUIRED = """__add__ __sub__ __mul__ __truediv__ __pow__ neg abs exp log log1p sqrt rsqrt sin cos
tanh sigmoid relu leaky_relu gelu gelu_tanh silu softplus clamp maximum minimum where masked_fill
matmul __matmul__ sum mean var std max min amax amin logsumexp prod softmax log_softmax cumsum
reshape view permute transpose unsqueeze squeeze expand flatten contiguous getitem setitem gather
scatter_add index_select cat stack split chunk pad tril triu repeat flip roll one_hot eq ne lt le
gt ge argmax argmin isnan isfinite all any sort topk""".split()


def test_table_covers_the_required_ops():
    names = {info.name for info in OPS}
    assert not set(REQUIRED) - names


# ----------------------------------------------------------------------------- dropout
def test_dropout_statistics_and_scaling():
    minifm.manual_seed(0)
    x = minifm.ones(200, 500)
    y = F.dropout(x, p=0.3)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01                           # ~Binomial(1e5, 0.7)
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.numpy().mean() - 1.0) < 0.02                      # unbiased in expectation
    assert F.dropout(x, p=0.3, training=False) is x
    assert F.dropout(x, p=0.0) is x
    assert not F.dropout(x, p=1.0).numpy().any()


def test_dropout_is_deterministic_under_manual_seed():
    x = minifm.randn(50, 40)
    minifm.manual_seed(123)
    a = F.dropout(x, p=0.5).numpy()
    b = F.dropout(x, p=0.5).numpy()
    minifm.manual_seed(123)
    np.testing.assert_array_equal(F.dropout(x, p=0.5).numpy(), a)
    assert not np.array_equal(a, b)
    gen = minifm.Generator().manual_seed(7)
    c = F.dropout(x, p=0.5, generator=gen).numpy()
    gen.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, p=0.5, generator=gen).numpy(), c)


@pytest.mark.parametrize("dtype", [minifm.float32, minifm.float64])
def test_dropout_gradient_is_mask_times_scale(dtype):
    x = minifm.randn(30, 20, dtype=dtype, requires_grad=True)
    y = F.dropout(x, p=0.25)
    g = minifm.randn(30, 20, dtype=dtype)
    y.backward(g)
    mask = (y.detach().numpy() != 0)
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    np.testing.assert_allclose(x.grad.numpy(), g.numpy() * mask / 0.75, rtol=1e-6)


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="dropout.*between 0 and 1.*1.5"):
        F.dropout(minifm.ones(3), p=1.5)


# ----------------------------------------------------------------------------- erf (exact GELU)
def test_erf_against_the_standard_library():
    import math
    from minifm.ops.special import erf
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 0.46875, -0.46875, 4.0, -4.0, 30.0, -30.0]])
    exact = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(np, x), exact, rtol=1e-15, atol=1e-16)           # Cody
    np.testing.assert_allclose(erf(np, x.astype(np.float32)), exact, rtol=0, atol=5e-7)
    assert erf(np, x.astype(np.float32)).dtype == np.float32
    assert erf(np, x.astype(np.float16)).dtype == np.float16
    special = erf(np, np.array([np.inf, -np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(special[:2], [1.0, -1.0])
    assert np.isnan(special[2])
