"""nn.init and the layers' default initializations: gains and fans equal PyTorch's; the
distributions are checked statistically (bounds exactly, mean and std within several
standard errors of the sample), and every draw comes from a seedable minifm Generator."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from minifm.nn import init  # noqa: E402

N = 200_000  # samples per distribution: the std of a sample mean is 0.0022 * std


def sample(shape=(400, 500)):
    return minifm.empty(*shape)


def assert_moments(t, mean, std, low=None, high=None):
    """Sample mean within 5 standard errors; sample std within 1.5%; bounds exact."""
    a = t.detach().numpy().astype(np.float64).ravel()
    if low is not None:  # a bound is only as exact as the tensor's dtype can hold it
        low, high = (float(np.asarray(b, dtype=t.dtype)) for b in (low, high))
    assert abs(a.mean() - mean) < 5 * std / math.sqrt(a.size), (a.mean(), mean)
    assert abs(a.std() - std) < 0.015 * std, (a.std(), std)
    if low is not None:
        assert a.min() >= low and a.max() <= high, (a.min(), a.max(), low, high)
        # the range is actually used: samples come within 1% of both ends
        assert a.min() < low + 0.01 * (high - low) and a.max() > high - 0.01 * (high - low)


@pytest.mark.parametrize("name,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv_transpose2d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-12)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "x")


@pytest.mark.parametrize("shape", [(3, 4), (8, 4, 3, 3), (5, 2, 7), (6, 1, 2, 2, 2), (1, 9)])
def test_fans_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(minifm.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(minifm.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(minifm.empty(3, 3), mode="fan_avg")


def test_uniform_normal_constant():
    assert_moments(init.uniform_(sample(), -2.0, 3.0), 0.5, 5 / math.sqrt(12), -2.0, 3.0)
    assert_moments(init.normal_(sample(), 1.5, 0.3), 1.5, 0.3)
    assert np.all(init.constant_(sample((3, 2)), 0.25).numpy() == 0.25)
    assert np.all(init.ones_(sample((3, 2))).numpy() == 1)
    assert np.all(init.zeros_(sample((3, 2))).numpy() == 0)


def test_trunc_normal():
    t = init.trunc_normal_(sample(), mean=1.0, std=2.0, a=0.0, b=3.0)
    # [0, 3] is mean -0.5 std .. mean +1 std: the truncated moments in closed form
    alpha, beta = -0.5, 1.0
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    mean = 1.0 + 2.0 * (pdf(alpha) - pdf(beta)) / mass
    var = 4.0 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass
                 - ((pdf(alpha) - pdf(beta)) / mass) ** 2)
    assert_moments(t, mean, math.sqrt(var), 0.0, 3.0)
    # the common use: std 0.02 within +-2 std
    assert_moments(init.trunc_normal_(sample(), std=0.02, a=-0.04, b=0.04), 0.0,
                   0.02 * math.sqrt(1 - 2 * 2 * pdf(2) / (2 * cdf(2) - 1)), -0.04, 0.04)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(sample((2, 2)), a=1.0, b=1.0)


@pytest.mark.parametrize("shape", [(400, 500), (50, 40, 10, 10)])
def test_xavier(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(minifm.empty(*shape))
    std = 0.5 * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    assert_moments(init.xavier_uniform_(sample(shape), gain=0.5), 0.0, std, -bound, bound)
    assert_moments(init.xavier_normal_(sample(shape), gain=0.5), 0.0, std)


@pytest.mark.parametrize("a,mode,nonlinearity", [
    (0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
    (0, "fan_out", "relu"), (0.1, "fan_out", "leaky_relu"), (0, "fan_in", "tanh"),
])
def test_kaiming(a, mode, nonlinearity):
    shape = (40, 50, 10, 10)
    fan = 50 * 100 if mode == "fan_in" else 40 * 100
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    assert_moments(init.kaiming_uniform_(sample(shape), a, mode, nonlinearity), 0.0, std,
                   -bound, bound)
    assert_moments(init.kaiming_normal_(sample(shape), a, mode, nonlinearity), 0.0, std)


def test_init_runs_without_recording_and_returns_its_argument():
    p = nn.Parameter(minifm.empty(30, 20))
    assert init.kaiming_uniform_(p) is p
    assert p.requires_grad and p.grad_fn is None
    assert init.zeros_(minifm.empty(0, 3)).shape == (0, 3)
    assert init.kaiming_normal_(minifm.empty(0, 3)).shape == (0, 3)


def test_generator_makes_draws_reproducible():
    gen = minifm.Generator().manual_seed(3)
    first = init.normal_(sample((4, 4)), generator=gen).numpy().copy()
    gen.manual_seed(3)
    assert np.array_equal(init.normal_(sample((4, 4)), generator=gen).numpy(), first)
    minifm.manual_seed(5)
    a = nn.Linear(6, 4)
    minifm.manual_seed(5)
    b = nn.Linear(6, 4)
    assert np.array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    assert np.array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
    state = minifm.get_rng_state()
    c = nn.Embedding(5, 3)
    minifm.set_rng_state(state)
    assert np.array_equal(nn.Embedding(5, 3).weight.detach().numpy(), c.weight.detach().numpy())


# ----------------------------------------------------------------------------- layer defaults
def test_linear_default_init():
    lin = nn.Linear(400, 500)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) works out to 1/sqrt(fan_in)
    assert_moments(lin.weight, 0.0, bound / math.sqrt(3), -bound, bound)
    b = lin.bias.detach().numpy()  # 500 samples: a loose check of the spread
    assert b.min() >= -bound and b.max() <= bound
    assert abs(b.std() - bound / math.sqrt(3)) < 0.15 * bound


def test_embedding_layernorm_batchnorm_defaults():
    emb = nn.Embedding(1000, 200, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert np.all(w[3] == 0)
    assert_moments(minifm.tensor(np.delete(w, 3, axis=0)), 0.0, 1.0)
    ln = nn.LayerNorm(7)
    assert np.all(ln.weight.detach().numpy() == 1) and np.all(ln.bias.detach().numpy() == 0)
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight.detach().numpy() == 1) and np.all(bn.bias.detach().numpy() == 0)
    assert np.all(bn.running_mean.numpy() == 0) and np.all(bn.running_var.numpy() == 1)
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.dtype == minifm.int64


def test_multihead_attention_default_init():
    mha = nn.MultiheadAttention(200, 4)
    bound = math.sqrt(6.0 / (200 + 600))  # xavier_uniform_ on the packed (3E, E) weight
    assert_moments(mha.in_proj_weight, 0.0, bound / math.sqrt(3), -bound, bound)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0)
    assert np.all(mha.out_proj.bias.detach().numpy() == 0)
    out_bound = 1 / math.sqrt(200)
    assert np.abs(mha.out_proj.weight.detach().numpy()).max() <= out_bound
    kv = nn.MultiheadAttention(200, 4, add_bias_kv=True, kdim=100, vdim=50)
    kb = math.sqrt(6.0 / (100 + 200))
    assert np.abs(kv.k_proj_weight.detach().numpy()).max() <= kb
    assert kv.bias_k.shape == (1, 1, 200)
