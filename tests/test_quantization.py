"""minifm.quantization: the int8 kernel equals its NumPy reference exactly; quantized
layers stay within a stated error of the float model and beside PyTorch's dynamically
quantized Linear; quantized models save and load through minifm.save/load.

The stated error: a dynamically quantized Linear rounds each weight by at most half its
channel's scale s_w[n] and each input by at most half the batch's scale s_x, so
|y - y_float| <= sum_k (|x[m, k]| s_w[n] + |w_q[n, k] s_w[n]| s_x) / 2 per output (plus
float32 rounding). Tests check that bound, and on a small GPT that the logits move by
under 2% of their range.
"""
import numpy as np
import pytest

import minifm
import minifm.kernels as kernels
import minifm.nn as nn
from minifm.models.gpt import GPT, GPTConfig
from minifm.nn.utils import prune
from minifm.quantization import (
    DynamicQuantizedLinear, WeightOnlyInt8Linear, int8_matmul, int8_matmul_reference,
    quantize_activation, quantize_dynamic, quantize_weight, quantize_weight_only,
)


@pytest.fixture
def backend_for_int8():
    yield lambda name: kernels.set_backend("int8_matmul", name)
    kernels.set_backend("int8_matmul", None)


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (1, 128, 512), (7, 33, 5), (300, 96, 40),
                                     (64, 1024, 3)])
@pytest.mark.parametrize("zero_point", [0, 128, 255])
def test_int8_kernel_equals_reference_exactly(m, k, n, zero_point, backend_for_int8):
    pytest.importorskip("numba")
    rng = np.random.default_rng(m * k + n)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (n, k), dtype=np.int8)
    a[0, :], b[0, :] = 255, -128  # the extremes: the largest products
    expected = int8_matmul_reference(a, zero_point, b)
    backend_for_int8("numba")
    got = int8_matmul(a, zero_point, b)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
    # non-contiguous inputs too
    np.testing.assert_array_equal(int8_matmul(a[:, ::-1], zero_point, b[:, ::-1]),
                                  int8_matmul_reference(a[:, ::-1], zero_point, b[:, ::-1]))


def test_dispatch_picks_the_kernel_or_the_reference(backend_for_int8):
    pytest.importorskip("numba")
    assert kernels.select("int8_matmul", "cpu", dtype_a=np.uint8, dtype_b=np.int8,
                          k=8).__name__ == "minifm.kernels.int8_matmul_cpu"
    assert kernels.select("int8_matmul", "cpu", dtype_a=np.float32, dtype_b=np.int8,
                          k=8) is None
    backend_for_int8("reference")
    assert kernels.select("int8_matmul", "cpu", dtype_a=np.uint8, dtype_b=np.int8,
                          k=8) is None


def test_weight_quantization_is_per_channel_symmetric():
    w = np.random.default_rng(0).standard_normal((6, 20)).astype(np.float32)
    w[2] *= 100  # a channel of large weights must not coarsen the others
    q, scale = quantize_weight(w)
    assert q.dtype == np.int8 and scale.shape == (6,)
    np.testing.assert_allclose(scale, np.abs(w).max(axis=1) / 127, rtol=1e-6)
    assert np.abs(q).max() == 127
    assert np.all(np.abs(q * scale[:, None] - w) <= scale[:, None] / 2 * (1 + 1e-6))


def test_activation_quantization_is_affine_with_zero_exact():
    x = np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32) + 1.0
    x[0, 0] = 0.0
    q, scale, zero = quantize_activation(x)
    assert q.dtype == np.uint8 and 0 <= zero <= 255
    assert q[0, 0] == zero  # 0.0 maps to the zero point: exact
    assert np.abs((q.astype(np.float32) - zero) * scale - x).max() <= scale / 2 * (1 + 1e-5)


def _float_and_quantized(in_features=48, out_features=300, seed=0):
    minifm.manual_seed(seed)
    linear = nn.Linear(in_features, out_features)
    return linear, DynamicQuantizedLinear.from_float(linear)


def test_dynamic_linear_within_the_stated_bound():
    linear, qlinear = _float_and_quantized()
    x = minifm.randn(16, 48) * 3.0
    y = linear(x).detach().numpy()
    got = qlinear(x).numpy()
    _, s_x, _ = quantize_activation(x.numpy())
    s_w = qlinear.weight_scale.numpy()
    w_hat = qlinear.weight.numpy().astype(np.float32) * s_w[:, None]
    bound = (np.abs(x.numpy()).sum(axis=1, keepdims=True) * s_w
             + np.abs(w_hat).sum(axis=1) * s_x) / 2
    assert np.all(np.abs(got - y) <= bound + 1e-5)
    assert np.abs(got - y).max() < 0.02 * np.abs(y).max()


def test_dynamic_linear_keeps_leading_dimensions_and_bias_none():
    linear = nn.Linear(8, 4, bias=False)
    qlinear = DynamicQuantizedLinear.from_float(linear)
    assert qlinear.bias is None and "bias" not in qlinear.state_dict()
    assert qlinear(minifm.randn(2, 3, 8)).shape == (2, 3, 4)


def test_dynamic_linear_beside_pytorch():
    """PyTorch's per-channel dynamic Linear on the same weights: both are near the float
    output, and near each other (PyTorch quantizes activations to 7 bits on x86, minifm
    to 8, so minifm's error is the smaller)."""
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic
    linear, qlinear = _float_and_quantized(64, 32)
    tlinear = torch.nn.Linear(64, 32)
    tlinear.weight.data = torch.from_numpy(linear.weight.detach().numpy().copy())
    tlinear.bias.data = torch.from_numpy(linear.bias.detach().numpy().copy())
    tq = torch_quantize_dynamic(torch.nn.Sequential(tlinear),
                                {torch.nn.Linear: per_channel_dynamic_qconfig})
    x = np.random.default_rng(3).standard_normal((20, 64)).astype(np.float32)
    y = linear(minifm.tensor(x)).detach().numpy()
    ours = qlinear(minifm.tensor(x)).numpy()
    theirs = tq(torch.from_numpy(x)).detach().numpy()
    scale = np.abs(y).max()
    assert np.abs(ours - y).max() < 0.01 * scale
    assert np.abs(theirs - y).max() < 0.03 * scale
    assert np.abs(ours - theirs).max() < 0.03 * scale
    assert np.abs(ours - y).mean() <= np.abs(theirs - y).mean()


def test_weight_only_linear_equals_the_dequantized_float_product():
    linear = nn.Linear(40, 600)  # three tiles of 256 output channels
    wlinear = WeightOnlyInt8Linear.from_float(linear)
    x = minifm.randn(5, 40)
    w_hat = wlinear.weight.numpy().astype(np.float32) * wlinear.weight_scale.numpy()[:, None]
    expected = x.numpy() @ w_hat.T + linear.bias.detach().numpy()
    np.testing.assert_allclose(wlinear(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def _tiny_gpt():
    minifm.manual_seed(0)
    return GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32,
                         bias=True))


@pytest.mark.parametrize("quantize", [quantize_dynamic, quantize_weight_only])
def test_gpt_quantized_logits_within_two_percent(quantize):
    model = _tiny_gpt().eval()
    qmodel = quantize(model, {nn.Linear})
    assert not any(type(m) is nn.Linear for m in qmodel.modules())
    assert any(type(m) is nn.Linear for m in model.modules())  # the original is untouched
    idx = minifm.randint(0, 40, (2, 16))
    with minifm.no_grad():
        logits, _ = model(idx, idx)
        qlogits, _ = qmodel(idx, idx)
    y, q = logits.numpy(), qlogits.numpy()
    assert np.abs(q - y).max() < 0.02 * (y.max() - y.min())


def test_quantized_model_saves_and_loads(tmp_path):
    model = _tiny_gpt().eval()
    qmodel = quantize_dynamic(model, {nn.Linear}, dtype=minifm.qint8)
    path = tmp_path / "q.safetensors"
    minifm.save(qmodel.state_dict(), path)
    state = minifm.load(path)
    assert state["transformer.h.0.attn.c_attn.weight"].dtype == np.int8
    assert state["transformer.h.0.attn.c_attn.weight_scale"].dtype == np.float32
    fresh = quantize_dynamic(_tiny_gpt(), {nn.Linear}, inplace=True)
    for m in fresh.modules():  # scramble, so the load must restore every value
        if isinstance(m, DynamicQuantizedLinear):
            m.weight._data[...] = 0
    fresh.load_state_dict(state)
    idx = minifm.randint(0, 40, (1, 16))
    with minifm.no_grad():
        np.testing.assert_array_equal(fresh(idx)[0].numpy(), qmodel(idx)[0].numpy())


def test_pruned_zeros_stay_zero_when_quantized():
    linear = nn.Linear(16, 8)
    prune.l1_unstructured(linear, "weight", amount=0.5)
    qlinear = DynamicQuantizedLinear.from_float(linear)
    np.testing.assert_array_equal(qlinear.weight.numpy() == 0, linear.weight_mask.numpy() == 0)


def test_qconfig_spec_names_layers():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))
    named = quantize_dynamic(model, {"1.0"})
    assert [type(m).__name__ for m in named.modules()].count("DynamicQuantizedLinear") == 1
    assert type(named[1][0]) is DynamicQuantizedLinear
    assert quantize_dynamic(model, set()).state_dict().keys() == model.state_dict().keys()


def test_errors():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="qint8"):
        quantize_dynamic(model, {nn.Linear}, dtype=minifm.float16)
    with pytest.raises(ValueError, match="only Linear"):
        quantize_dynamic(model, {nn.Conv2d})
