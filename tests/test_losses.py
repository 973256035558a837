"""Losses (minifm/ops/loss.py, minifm/nn/loss.py) against PyTorch: values and gradients of
every loss for each reduction, in float32 and float64, with class weights, ignore_index,
label smoothing, probability targets, extreme logits, and the errors bad input must raise."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from minifm.ops.loss import CrossEntropy  # noqa: E402

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]


def _close(actual, expected, dtype):
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    actual = torch.from_numpy(np.array(actual))
    torch.testing.assert_close(actual, expected.detach(), equal_nan=True, **tol)


def check(fn, ref, arrays, dtype, kwargs_m=None, kwargs_t=None, grad_of=None, seed=0):
    """Run fn(*minifm tensors) and ref(*torch tensors) on copies of `arrays`; compare the
    loss, then the gradients (for a random upstream gradient) of the positions in grad_of."""
    grad_of = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if grad_of is None else grad_of
    ms = [minifm.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    ts = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    out_m = fn(*ms, **(kwargs_m or {}))
    out_t = ref(*ts, **(kwargs_t or kwargs_m or {}))
    assert out_m.dtype == dtype and tuple(out_m.shape) == tuple(out_t.shape)
    _close(out_m.detach().numpy(), out_t, dtype)
    upstream = np.random.default_rng(seed).uniform(0.5, 1.5, tuple(out_t.shape)).astype(dtype)
    out_m.backward(minifm.tensor(upstream))
    out_t.backward(torch.tensor(upstream))
    for i in grad_of:
        assert ms[i].grad.dtype == ms[i].dtype and ms[i].grad.shape == ms[i].shape
        _close(ms[i].grad.numpy(), ts[i].grad, dtype)
    return out_m, ms


def logits(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ----------------------------------------------------------------------------- cross_entropy
CLASS_SHAPES = [((6, 5), (6,)), ((3, 5, 4, 2), (3, 4, 2)), ((5,), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", CLASS_SHAPES, ids=["2d", "4d", "unbatched"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cross_entropy_class_indices(dtype, reduction, shapes, weighted, label_smoothing):
    rng = np.random.default_rng(1)
    x_shape, y_shape = shapes
    x = logits(rng, x_shape, dtype)
    y = rng.integers(0, 5, y_shape)
    if y.ndim:
        y.reshape(-1)[:2] = -100  # two ignored targets
    w = rng.uniform(0.2, 2.0, 5).astype(dtype)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    extra = [w] if weighted else []

    def run(fn):
        return lambda x, y, *w: fn(x, y, weight=w[0] if w else None, **kwargs)

    check(run(F.cross_entropy), run(TF.cross_entropy), [x, y] + extra, dtype, grad_of=[0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_custom_ignore_index(reduction):
    rng = np.random.default_rng(2)
    x = logits(rng, (8, 4), np.float32)
    y = np.array([0, 1, 2, 3, 2, 2, 1, 0])
    check(lambda x, y: F.cross_entropy(x, y, ignore_index=2, reduction=reduction),
          lambda x, y: TF.cross_entropy(x, y, ignore_index=2, reduction=reduction),
          [x, y], np.float32)


def test_cross_entropy_all_targets_ignored_is_nan_with_zero_gradient():
    x = logits(np.random.default_rng(3), (3, 4), np.float32)
    y = np.full(3, -100)
    out, (xm, _) = check(F.cross_entropy, TF.cross_entropy, [x, y], np.float32)
    assert np.isnan(out.item())
    assert np.all(xm.grad.numpy() == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4), (5,)], ids=["2d", "3d", "unbatched"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_class_probabilities(dtype, reduction, shape, weighted, label_smoothing):
    rng = np.random.default_rng(4)
    x = logits(rng, shape, dtype)
    t = rng.uniform(0, 1, shape)
    t = (t / t.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)).astype(dtype)
    w = rng.uniform(0.2, 2.0, 5).astype(dtype)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    extra = [w] if weighted else []

    def run(fn):
        return lambda x, t, *w: fn(x, t, weight=w[0] if w else None, **kwargs)

    check(run(F.cross_entropy), run(TF.cross_entropy), [x, t] + extra, dtype, grad_of=[0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_cross_entropy_extreme_logits_are_finite_and_match(dtype, label_smoothing, targets):
    rng = np.random.default_rng(5)
    x = np.where(rng.random((6, 7)) < 0.5, -1e4, 1e4).astype(dtype)
    x[0] = 1e4                                   # a row of ties at the top
    x[1, 3] += 1.0                               # a clear winner among huge logits
    if targets == "indices":
        y = rng.integers(0, 7, 6)
    else:
        y = rng.dirichlet(np.ones(7), 6).astype(dtype)
    for reduction in REDUCTIONS:
        out, (xm, *_) = check(lambda x, y: F.cross_entropy(x, y, reduction=reduction,
                                                           label_smoothing=label_smoothing),
                              lambda x, y: TF.cross_entropy(x, y, reduction=reduction,
                                                            label_smoothing=label_smoothing),
                              [x, y], dtype, grad_of=[0])
        assert np.all(np.isfinite(out.detach().numpy()))
        assert np.all(np.isfinite(xm.grad.numpy()))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_cross_entropy_of_an_empty_batch(reduction, targets):
    x = np.zeros((0, 4), np.float32)
    y = np.zeros(0, np.int64) if targets == "indices" else np.zeros((0, 4), np.float32)
    check(lambda x, y: F.cross_entropy(x, y, reduction=reduction),
          lambda x, y: TF.cross_entropy(x, y, reduction=reduction), [x, y], np.float32,
          grad_of=[0])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = logits(np.random.default_rng(6), (4, 3), np.float64)
    y = np.array([0, 2, 1, 2])
    xm = minifm.tensor(x, requires_grad=True)
    F.cross_entropy(xm, minifm.tensor(y), reduction="sum").backward()
    softmax = np.exp(x - x.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(xm.grad.numpy(), softmax - np.eye(3)[y], rtol=1e-12, atol=1e-14)


def test_cross_entropy_is_one_recorded_op():
    xm = minifm.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    out = F.cross_entropy(xm, minifm.tensor([0, 1]))
    assert out.grad_fn.fn is CrossEntropy
    assert all(p is xm or p is None for p in out.grad_fn.parents)


# ----------------------------------------------------------------------------- nll_loss
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", CLASS_SHAPES, ids=["2d", "4d", "unbatched"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(dtype, reduction, shapes, weighted):
    rng = np.random.default_rng(7)
    x_shape, y_shape = shapes
    x = logits(rng, x_shape, dtype)
    y = rng.integers(0, 5, y_shape)
    if y.ndim:
        y.reshape(-1)[0] = -100
    w = rng.uniform(0.2, 2.0, 5).astype(dtype)
    extra = [w] if weighted else []

    def run(fn):
        return lambda x, y, *w: fn(x, y, weight=w[0] if w else None, reduction=reduction)

    check(run(F.nll_loss), run(TF.nll_loss), [x, y] + extra, dtype, grad_of=[0])


def test_cross_entropy_equals_nll_of_log_softmax():
    rng = np.random.default_rng(8)
    x = minifm.tensor(logits(rng, (5, 4), np.float64))
    y = minifm.tensor(rng.integers(0, 4, 5))
    w = minifm.tensor(rng.uniform(0.5, 2, 4))
    np.testing.assert_allclose(F.cross_entropy(x, y, weight=w).item(),
                               F.nll_loss(F.log_softmax(x, 1), y, weight=w).item(), rtol=1e-12)


# ----------------------------------------------------------------------------- regression
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kwargs", [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.3}),
    ("smooth_l1_loss", {"beta": 0.0}),
])
def test_regression_losses(dtype, reduction, name, kwargs):
    rng = np.random.default_rng(9)
    x = rng.uniform(-2, 2, (4, 6)).astype(dtype)
    t = rng.uniform(-2, 2, (4, 6)).astype(dtype)
    check(lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kwargs),
          lambda a, b: getattr(TF, name)(a, b, reduction=reduction, **kwargs), [x, t], dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_weighted_regression_losses(reduction, name):
    rng = np.random.default_rng(10)
    x, t = rng.uniform(-2, 2, (2, 3, 4)), rng.uniform(-2, 2, (2, 3, 4))
    w = rng.uniform(0, 3, (2, 3, 4))
    check(lambda a, b, w: getattr(F, name)(a, b, reduction=reduction, weight=w),
          lambda a, b, w: getattr(TF, name)(a, b, reduction=reduction, weight=w),
          [x, t, w], np.float64, grad_of=[0, 1])


def test_regression_target_broadcast_warns_like_pytorch():
    x = minifm.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="different from the input size"):
        F.mse_loss(x, minifm.tensor(np.zeros((2,), np.float32)))


# ----------------------------------------------------------------------------- binary
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(dtype, reduction, weighted):
    rng = np.random.default_rng(11)
    p = rng.uniform(0.02, 0.98, (5, 3)).astype(dtype)
    t = rng.uniform(0, 1, (5, 3)).astype(dtype)
    w = rng.uniform(0.5, 2, (3,)).astype(dtype)
    extra = [w] if weighted else []

    def run(fn):
        return lambda p, t, *w: fn(p, t, weight=w[0] if w else None, reduction=reduction)

    check(run(F.binary_cross_entropy), run(TF.binary_cross_entropy), [p, t] + extra, dtype,
          grad_of=[0, 1])


def test_binary_cross_entropy_clamps_log_at_probabilities_0_and_1():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float32)
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0], np.float32)
    out, (pm, _) = check(lambda p, t: F.binary_cross_entropy(p, t, reduction="none"),
                         lambda p, t: TF.binary_cross_entropy(p, t, reduction="none"),
                         [p, t], np.float32, grad_of=[0])
    np.testing.assert_allclose(out.detach().numpy()[:2], 100.0)
    assert np.all(np.isfinite(pm.grad.numpy()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_binary_cross_entropy_with_logits(dtype, reduction, weighted, pos_weighted):
    rng = np.random.default_rng(12)
    x = logits(rng, (5, 3), dtype)
    x[0] = [1e4, -1e4, 0.0]                    # saturated logits stay finite
    t = rng.uniform(0, 1, (5, 3)).astype(dtype)
    w = rng.uniform(0.5, 2, (5, 1)).astype(dtype)
    pw = rng.uniform(0.5, 3, (3,)).astype(dtype)
    arrays = [x, t] + ([w] if weighted else []) + ([pw] if pos_weighted else [])

    def run(fn):
        def call(x, t, *rest):
            rest = list(rest)
            w_ = rest.pop(0) if weighted else None
            pw_ = rest.pop(0) if pos_weighted else None
            return fn(x, t, weight=w_, pos_weight=pw_, reduction=reduction)
        return call

    out, (xm, *_) = check(run(F.binary_cross_entropy_with_logits),
                          run(TF.binary_cross_entropy_with_logits), arrays, dtype, grad_of=[0, 1])
    assert np.all(np.isfinite(out.detach().numpy())) and np.all(np.isfinite(xm.grad.numpy()))


# ----------------------------------------------------------------------------- kl_div
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(dtype, reduction, log_target):
    rng = np.random.default_rng(13)
    x = np.log(rng.dirichlet(np.ones(4), 5)).astype(dtype)
    t = rng.dirichlet(np.ones(4), 5)
    t[0, 1] = 0.0                                     # 0 log 0 = 0
    t = (np.log(t + 1e-3) if log_target else t).astype(dtype)
    kwargs = dict(reduction=reduction, log_target=log_target)
    with pytest.warns(UserWarning) if reduction == "mean" else _no_warning():
        check(lambda a, b: F.kl_div(a, b, **kwargs), lambda a, b: TF.kl_div(a, b, **kwargs),
              [x, t], dtype, grad_of=[0, 1] if log_target else [0])


class _no_warning:
    def __enter__(self):
        pass

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------- modules
@pytest.mark.parametrize("name,kwargs,make", [
    ("CrossEntropyLoss", {"weight": [1.0, 2.0, 0.5], "ignore_index": 1, "label_smoothing": 0.1}, "class"),
    ("NLLLoss", {"weight": [1.0, 2.0, 0.5], "reduction": "sum"}, "class"),
    ("MSELoss", {"reduction": "none"}, "pair"),
    ("L1Loss", {}, "pair"),
    ("SmoothL1Loss", {"beta": 0.5}, "pair"),
    ("BCELoss", {"weight": [1.0, 2.0, 0.5]}, "prob"),
    ("BCEWithLogitsLoss", {"weight": [1.0, 2.0, 0.5], "pos_weight": [2.0, 1.0, 3.0]}, "pair"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, "pair"),
])
def test_loss_modules_match_pytorch(name, kwargs, make):
    rng = np.random.default_rng(14)
    x = rng.uniform(0.05, 0.95, (4, 3)) if make == "prob" else rng.standard_normal((4, 3))
    t = rng.integers(0, 3, 4) if make == "class" else rng.uniform(0, 1, (4, 3))
    tensor_args = {"weight", "pos_weight"}
    mod_m = getattr(nn, name)(**{k: minifm.tensor(v, dtype=minifm.float64) if k in tensor_args
                                 else v for k, v in kwargs.items()})
    mod_t = getattr(torch.nn, name)(**{k: torch.tensor(v, dtype=torch.float64) if k in tensor_args
                                       else v for k, v in kwargs.items()})
    assert list(mod_m.state_dict()) == list(mod_t.state_dict())
    for key, value in mod_t.state_dict().items():
        np.testing.assert_array_equal(mod_m.state_dict()[key].numpy(), value.numpy())
    check(mod_m, mod_t, [x, t], np.float64, grad_of=[0])


def test_loss_module_weight_is_a_buffer_that_moves_with_to():
    loss = nn.CrossEntropyLoss(weight=minifm.tensor([1.0, 2.0]))
    assert [name for name, _ in loss.named_buffers()] == ["weight"]
    assert loss.to(minifm.float64).weight.dtype == minifm.float64


# ----------------------------------------------------------------------------- errors
def _f32(*shape):
    return minifm.tensor(np.zeros(shape, np.float32))


def _i64(values):
    return minifm.tensor(np.array(values, np.int64))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.cross_entropy(_f32(2, 3), _i64([0, 3])), IndexError,
     r"cross_entropy: target 3 is out of bounds for 3 classes"),
    (lambda: F.cross_entropy(_f32(2, 3), _i64([-1, 0])), IndexError, r"target -1 is out of bounds"),
    (lambda: F.nll_loss(_f32(2, 3), _i64([0, 5])), IndexError, r"nll_loss: target 5"),
    (lambda: F.cross_entropy(_f32(2, 3), _i64([0, 1, 2])), ValueError,
     r"cross_entropy: expected target of shape \(2,\) for input of shape \(2, 3\), got target "
     r"of shape \(3,\)"),
    (lambda: F.cross_entropy(_f32(2, 3), _f32(2, 4)), ValueError,
     r"cross_entropy \(class probabilities\): target of shape \(2, 4\) must have the same shape "
     r"as the input of shape \(2, 3\)"),
    (lambda: F.cross_entropy(_i64([[1, 2]]), _i64([0])), TypeError,
     r"cross_entropy: input must be a floating-point Tensor, got minifm.int64"),
    (lambda: F.cross_entropy(_f32(2, 3), minifm.tensor([True, False])), TypeError,
     r"cross_entropy: target must hold class indices"),
    (lambda: F.cross_entropy(_f32(2, 3), _i64([0, 1]), weight=_f32(4)), ValueError,
     r"cross_entropy: weight of shape \(4,\) must have one entry per class"),
    (lambda: F.cross_entropy(_f32(2, 3), _i64([0, 1]), reduction="avg"), ValueError,
     r"cross_entropy: reduction must be one of 'none', 'mean', 'sum', got 'avg'"),
    (lambda: F.cross_entropy(_f32(2, 3), _i64([0, 1]), label_smoothing=1.5), ValueError,
     r"label_smoothing must be in \[0, 1\]"),
    (lambda: F.mse_loss(_f32(2, 3), _f32(4)), ValueError,
     r"mse_loss: target of shape \(4,\) does not broadcast to the input of shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy(_f32(2, 3) + 2, _f32(2, 3)), ValueError,
     r"binary_cross_entropy: all elements of input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy_with_logits(_f32(2, 3), _f32(3, 2)), ValueError,
     r"binary_cross_entropy_with_logits: target of shape \(3, 2\) must have the same shape"),
    (lambda: F.kl_div(_f32(2, 3), _f32(2, 3), reduction="batch"), ValueError,
     r"kl_div: reduction must be one of .*'batchmean'"),
    (lambda: F.l1_loss(_f32(2), _f32(2), weight=_f32(3)), ValueError,
     r"l1_loss: weight of shape \(3,\) must have the input's shape \(2,\)"),
    (lambda: nn.MSELoss(size_average=True), TypeError, r"MSELoss: size_average and reduce"),
])
def test_loss_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
