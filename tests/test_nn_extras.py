"""The everyday nn surface beyond the op table (tests/optable.py's "nn extras" section covers
the deterministic functions): in-place activations on views and through modules, the
dropout family and rrelu by their statistics, gradients and seeds, and the new modules
against torch.nn's."""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from conftest import assert_close  # noqa: E402

TF = torch.nn.functional


def _x(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)


# ----------------------------------------------------------------------------- in place
INPLACE = [("relu_", (), {}), ("elu_", (0.5,), {}), ("leaky_relu_", (0.2,), {}),
           ("hardtanh_", (-0.5, 1.5), {}), ("selu_", (), {}), ("celu_", (0.7,), {}),
           ("threshold_", (0.5, -1.0), {})]


@pytest.mark.parametrize("name, args, kwargs", INPLACE)
def test_inplace_on_a_view_updates_the_base_and_its_gradient(name, args, kwargs):
    a, w = _x(3, 4), _x(3, 4, seed=1)
    grads = []
    for lib, fn in ((minifm, getattr(F, name)), (torch, getattr(TF, name))):
        x = lib.tensor(a, requires_grad=True)
        base = x * 2
        other = base[0]                       # a second view sees the write
        out = fn(base[:, 1:3], *args, **kwargs)
        assert out.shape == (3, 2)
        ((base * lib.tensor(w)).sum() + other.sum()).backward()
        grads.append((base.detach().numpy(), other.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(*grads):
        assert_close(ours, theirs)


@pytest.mark.parametrize("name", [n for n, _, _ in INPLACE])
def test_inplace_refuses_a_leaf_that_requires_grad(name):
    x = minifm.tensor(_x(3), requires_grad=True)
    args = (0.5, -1.0) if name == "threshold_" else ()
    with pytest.raises(RuntimeError, match=f"{name}.*leaf Variable that requires grad"):
        getattr(F, name)(x, *args)


def test_inplace_returns_its_input_and_writes_its_memory_without_grad():
    x = minifm.tensor(_x(3, 4))
    view = x[1]
    assert F.relu_(x) is x
    assert (view.numpy() >= 0).all() and (x.numpy() >= 0).all()


MODULES = [("ReLU", ()), ("LeakyReLU", (0.2,)), ("ELU", (0.5,)), ("Hardtanh", (-0.5, 1.5)),
           ("ReLU6", ()), ("SELU", ()), ("CELU", (0.7,)), ("SiLU", ()), ("Mish", ()),
           ("Hardswish", ()), ("Hardsigmoid", ()), ("Threshold", (0.5, -1.0)),
           ("RReLU", (0.1, 0.3))]


@pytest.mark.parametrize("name, args", MODULES)
def test_module_inplace_overwrites_its_input_like_torch(name, args):
    a, w = _x(2, 3, 4), _x(2, 3, 4, seed=1)
    results = []
    for lib, mod in ((minifm, nn), (torch, torch.nn)):
        m = getattr(mod, name)(*args, inplace=True)
        m.eval()  # RReLU's fixed slope
        x = lib.tensor(a, requires_grad=True)
        h = x * 1
        y = m(h)
        assert y is h
        (y * lib.tensor(w)).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), repr(m)))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_dropout_inplace_writes_its_input():
    minifm.manual_seed(0)
    x = minifm.ones(50, 40)
    y = nn.Dropout(0.5, inplace=True)(x)
    assert y is x and set(np.unique(x.numpy())) == {0.0, 2.0}


# ----------------------------------------------------------------------------- dropout family
CHANNEL = [(F.dropout1d, nn.Dropout1d, (8, 64, 5)), (F.dropout1d, nn.Dropout1d, (64, 5)),
           (F.dropout2d, nn.Dropout2d, (8, 64, 3, 4)), (F.dropout3d, nn.Dropout3d, (8, 64, 2, 2, 3)),
           (F.dropout3d, nn.Dropout3d, (64, 2, 2, 3))]


@pytest.mark.parametrize("fn, module, shape", CHANNEL)
def test_channel_dropout_zeros_whole_channels_scaled(fn, module, shape):
    minifm.manual_seed(3)
    x = minifm.tensor(np.random.default_rng(0).uniform(1, 2, shape), requires_grad=True)
    y = fn(x, 0.3)
    batched = len(shape) == {F.dropout1d: 3, F.dropout2d: 4, F.dropout3d: 5}[fn]
    per_channel = y.detach().numpy() / x.detach().numpy()
    channels = per_channel.reshape((*shape[:2], -1) if batched else (shape[0], -1))
    assert np.allclose(channels, channels[..., :1])          # one factor per channel
    assert set(np.round(np.unique(channels), 5)) == {0.0, round(1 / 0.7, 5)}
    kept = (channels[..., 0] != 0).mean()
    assert 0.55 < kept < 0.85
    y.sum().backward()
    assert_close(x.grad.numpy(), per_channel)                # the gradient is the mask
    minifm.manual_seed(3)
    assert np.array_equal(fn(x, 0.3).detach().numpy(), y.detach().numpy())
    m = module(0.3)
    m.eval()
    assert np.array_equal(m(x).detach().numpy(), x.detach().numpy())
    assert np.array_equal(fn(x, 0.3, training=False).detach().numpy(), x.detach().numpy())
    assert repr(m) == repr(getattr(torch.nn, module.__name__)(0.3))


def test_channel_dropout_errors_and_warnings_like_torch():
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D"):
        F.dropout1d(minifm.ones(1, 2, 3, 4))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout2d(minifm.ones(1, 2, 3, 4), 1.5)
    with pytest.warns(UserWarning, match="dropout2d: Received a 2-D input"):
        F.dropout2d(minifm.ones(2, 3))
    with pytest.warns(UserWarning, match="dropout2d: Received a 3D input"):
        F.dropout2d(minifm.ones(2, 3, 4))
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input"):
        F.dropout3d(minifm.ones(2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.dropout2d(minifm.ones(2, 3, 4, 5))
    assert (F.dropout2d(minifm.ones(2, 3, 4, 5), 1.0).numpy() == 0).all()


@pytest.mark.parametrize("fn, feature", [(F.alpha_dropout, False), (F.feature_alpha_dropout, True)])
def test_alpha_dropout_keeps_mean_and_variance_of_selu_outputs(fn, feature):
    minifm.manual_seed(1)
    shape = (400, 500) if not feature else (400, 500, 1)
    x = F.selu(minifm.randn(*shape))
    x.requires_grad_(True)
    y = fn(x, 0.2, training=True)
    out = y.detach().numpy()
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02
    # the values are a * x + b with PyTorch's a and b
    alpha = 1.7580993408473766
    a = 1 / np.sqrt((alpha ** 2 * 0.2 + 1) * 0.8)
    dropped = np.isclose(out, -alpha * a + alpha * a * 0.2, atol=1e-6)
    assert abs(dropped.mean() - 0.2) < 0.01
    xs = x.detach().numpy()
    assert_close(out[~dropped], (xs[~dropped] * a + alpha * a * 0.2).astype(np.float32), atol=1e-5, rtol=1e-5)
    y.sum().backward()
    assert_close(x.grad.numpy(), np.where(dropped, 0, a).astype(np.float32))
    assert fn(x, 0.2) is x  # training defaults to False
    module = nn.AlphaDropout(0.2) if not feature else nn.FeatureAlphaDropout(0.2)
    module.eval()
    assert module(x) is x


# ----------------------------------------------------------------------------- rrelu
def test_rrelu_training_draws_slopes_in_range_reproducibly():
    x = minifm.tensor(-np.random.default_rng(0).uniform(0.5, 1, (100, 100)), requires_grad=True)
    minifm.manual_seed(5)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = y.detach().numpy() / x.detach().numpy()
    assert slopes.min() >= 0.1 and slopes.max() < 0.3 and abs(slopes.mean() - 0.2) < 0.005
    y.sum().backward()
    assert_close(x.grad.numpy(), slopes)
    minifm.manual_seed(5)
    assert np.array_equal(nn.RReLU(0.1, 0.3)(x).detach().numpy(), y.detach().numpy())
    pos = minifm.tensor([1.0, 2.0])
    assert np.array_equal(F.rrelu(pos, training=True).numpy(), [1.0, 2.0])


# ----------------------------------------------------------------------------- modules
@pytest.mark.parametrize("name, args", [("Hardshrink", (0.3,)), ("Softshrink", (0.3,)),
                                        ("Tanhshrink", ()), ("Softmax2d", ())])
def test_modules_like_torch(name, args):
    a, w = _x(2, 3, 4, 5), _x(2, 3, 4, 5, seed=1)
    results = []
    for lib, mod in ((minifm, nn), (torch, torch.nn)):
        m = getattr(mod, name)(*args)
        x = lib.tensor(a, requires_grad=True)
        y = m(x)
        (y * lib.tensor(w)).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), repr(m)))
    for ours, theirs in zip(results[0][:2], results[1][:2]):
        assert_close(ours, theirs)
    assert results[0][2] == results[1][2]


def test_softmax2d_refuses_other_ranks():
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(minifm.ones(2, 3))


@pytest.mark.parametrize("name, args", [("max_pool1d_with_indices", (_x(2, 3, 8), 2)),
                                        ("max_pool2d_with_indices", (_x(2, 3, 6, 6), 3, 2)),
                                        ("max_pool3d_with_indices", (_x(1, 2, 4, 4, 4), 2)),
                                        ("adaptive_max_pool1d_with_indices", (_x(2, 3, 9), 4)),
                                        ("adaptive_max_pool2d_with_indices", (_x(2, 3, 7, 7), 3))])
def test_with_indices_return_the_indices_like_torch(name, args):
    ours = getattr(F, name)(minifm.tensor(args[0]), *args[1:])
    theirs = getattr(TF, name)(torch.tensor(args[0]), *args[1:])
    assert isinstance(ours, tuple) and len(ours) == 2
    assert_close(ours[0].numpy(), theirs[0].numpy())
    assert np.array_equal(ours[1].numpy(), theirs[1].numpy())


# ----------------------------------------------------------------------------- loss modules
def _signs(*shape):
    return np.where(np.random.default_rng(7).random(shape) < 0.5, 1.0, -1.0).astype(np.float32)


LOSSES = [("HuberLoss", {"delta": 0.5}, (_x(4, 5), _x(4, 5, seed=1))),
          ("MarginRankingLoss", {"margin": 0.2}, (_x(6), _x(6, seed=1), _signs(6))),
          ("HingeEmbeddingLoss", {"margin": 0.5}, (_x(4, 5), _signs(4, 5))),
          ("SoftMarginLoss", {}, (_x(4, 5), _signs(4, 5))),
          ("CosineEmbeddingLoss", {"margin": 0.1}, (_x(4, 5), _x(4, 5, seed=1), _signs(4))),
          ("TripletMarginLoss", {"margin": 0.5, "swap": True},
           (_x(4, 5), _x(4, 5, seed=1), _x(4, 5, seed=2))),
          ("PoissonNLLLoss", {"full": True}, (_x(4, 5), np.abs(_x(4, 5, seed=1)) * 2)),
          ("GaussianNLLLoss", {"full": True}, (_x(4, 5), _x(4, 5, seed=1),
                                               np.abs(_x(4, 1, seed=2)) + 0.1)),
          ("MultiLabelSoftMarginLoss", {}, (_x(4, 5), (_signs(4, 5) > 0).astype(np.float32)))]


@pytest.mark.parametrize("name, kwargs, arrays", LOSSES, ids=[n for n, _, _ in LOSSES])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_loss_modules_like_torch(name, kwargs, arrays, reduction):
    results = []
    for lib, mod in ((minifm, nn), (torch, torch.nn)):
        m = getattr(mod, name)(reduction=reduction, **kwargs)
        first = lib.tensor(arrays[0], requires_grad=True)
        out = m(first, *(lib.tensor(a) for a in arrays[1:]))
        out.sum().backward()
        results.append((out.detach().numpy(), first.grad.numpy(), repr(m)))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_loss_modules_refuse_like_torch():
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.HuberLoss(reduction="avg")(minifm.ones(2), minifm.ones(2))
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0"):
        nn.TripletMarginLoss(margin=0)
    with pytest.raises(TypeError, match="size_average and reduce are deprecated"):
        nn.SoftMarginLoss(size_average=True)


# ----------------------------------------------------------------------------- containers
def _with_containers(lib):
    mod = lib.nn if lib is torch else nn

    class Net(mod.Module):
        def __init__(self):
            super().__init__()
            self.first = mod.Parameter(lib.ones(2))
            self.plist = mod.ParameterList([mod.Parameter(lib.ones(2, 3)), lib.zeros(3)])
            self.plist.append(mod.Parameter(lib.ones(1)))
            self.pdict = mod.ParameterDict({"zeta": lib.ones(4), "alpha": lib.ones(5)})
            self.pdict["mid"] = mod.Parameter(lib.zeros(2, 2))
            self.pdict.update(OrderedDict([("y", lib.ones(1)), ("b", lib.ones(1))]))
            self.linear = mod.Linear(3, 2)

        def forward(self, x):
            return self.linear(x * self.plist[1]) + self.pdict["mid"].sum()

    return Net()


def test_parameter_containers_order_and_keys_like_torch():
    ours, theirs = _with_containers(minifm), _with_containers(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == \
        [tuple(p.shape) for p in theirs.parameters()]
    assert all(isinstance(p, nn.Parameter) for p in ours.plist)
    assert len(ours.plist) == 3 and ours.plist[-1] is ours.plist[2]
    assert list(ours.pdict) == list(theirs.pdict) and "mid" in ours.pdict
    x = minifm.ones(4, 3)
    ours(x).sum().backward()
    assert ours.plist[1].grad is not None and ours.pdict["mid"].grad is not None
    del ours.pdict["mid"]
    assert "pdict.mid" not in ours.state_dict()


def test_parameter_list_indexing_and_repr():
    plist = nn.ParameterList([minifm.ones(2, 3)])
    plist += [minifm.zeros(3)]
    plist[0] = minifm.zeros(1)
    assert [tuple(p.shape) for p in plist] == [(1,), (3,)]
    assert [tuple(p.shape) for p in plist[1:]] == [(3,)]
    with pytest.raises(IndexError, match="out of range"):
        plist[2]
    with pytest.raises(TypeError, match="cannot store a 'int'"):
        plist.append(3)
    assert repr(plist) == ("ParameterList(\n    (0): Parameter containing: [minifm.float32 of "
                           "size 1]\n    (1): Parameter containing: [minifm.float32 of size 3]\n)")


@pytest.mark.parametrize("fn, shape", [(F.dropout1d, (6, 40)), (F.dropout2d, (2, 40, 3, 2)),
                                       (F.dropout3d, (40, 2, 2, 2))])
def test_channel_dropout_inplace_writes_its_input_and_views(fn, shape):
    minifm.manual_seed(2)
    leaf = minifm.ones(*shape, requires_grad=True)
    x = leaf * 1
    view = x[0]
    assert fn(x, 0.5, inplace=True) is x
    assert set(np.unique(x.detach().numpy())) == {0.0, 2.0}
    assert np.array_equal(view.detach().numpy(), x.detach().numpy()[0])
    x.sum().backward()
    assert_close(leaf.grad.numpy(), x.detach().numpy())


def test_gaussian_nll_loss_takes_a_float_variance_like_torch():
    a, b = _x(3, 4), _x(3, 4, seed=1)
    ours = F.gaussian_nll_loss(minifm.tensor(a), minifm.tensor(b), 0.5, full=True)
    theirs = TF.gaussian_nll_loss(torch.tensor(a), torch.tensor(b), 0.5, full=True)
    assert_close(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(minifm.tensor(a), minifm.tensor(b), -1.0)
