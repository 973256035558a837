"""minifm.models' ResNets against torchvision's, rebuilt from torch.nn in
tests/torch_models.py: the same state_dict keys and shapes, a torch checkpoint saved as
safetensors loads into minifm, and then logits (train mode with batch statistics, eval
mode with running estimates), every gradient and the running statistics after a few SGD
steps agree. The CIFAR ResNets are checked against the paper's parameter counts and the
option A shortcut against its definition."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
import torch_models as tm  # noqa: E402
from conftest import to_numpy  # noqa: E402
from minifm.models import resnet as R  # noqa: E402
from minifm.serialization import load_file  # noqa: E402

# The checkpoint's float32 logits: 20-50 layers deep, the two engines sum in different orders
TOL32 = dict(rtol=1e-4, atol=1e-4)
# Training runs in float64. Batch norm over few values per channel is ill-conditioned:
# layer4's maps are 1x1 at 32x32, so its batch norms see 2 values for 2 images,
# x_hat = +-d / sqrt(d^2 + eps) for two values d apart, a gradient growing like 1 / d.
# In float32 rounding then parts the two engines by 1e-2 (the same network: 1e-4 at 64x64,
# but 10 times the time); in float64 to 1e-10 of the largest gradient, and any difference of formula
# (a biased variance, another momentum convention) would still show.
TOL64 = dict(rtol=1e-6, atol=1e-6)


def assert_close(actual, expected, msg="", **tol):
    """Equal dtypes and values within tol, through NumPy: torch.testing.assert_close
    takes seconds on resnet18's 11.7M parameters."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.dtype == expected.dtype, msg
    np.testing.assert_allclose(actual, expected, err_msg=msg, **tol)


def perturbed_torch_resnet(arch):
    """torchvision's network with its batch norms (weights and running estimates) moved
    away from their (1, 0) init, so that every one of them matters."""
    torch.manual_seed(0)
    torch_model = getattr(tm, arch)(num_classes=10)
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return torch_model


def torch_checkpoint_into_minifm(model, torch_model, path):
    """Save the torch model's state_dict with safetensors and load the file into `model`,
    as a user with a torchvision checkpoint would."""
    safetensors_torch.save_file(torch_model.state_dict(), str(path))
    arrays, _ = load_file(str(path))
    model.load_state_dict({k: minifm.tensor(v) for k, v in arrays.items()})
    return model


def images(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_eval_logits_close(model, torch_model, x, **tol):
    model.eval()
    torch_model.eval()
    with minifm.no_grad():
        logits = model(minifm.tensor(x))
    assert_close(logits, torch_model(torch.tensor(x)), **tol)


def assert_train_step_agrees(model, torch_model, side, lr=0.01):
    """One SGD step with momentum on both models in train mode (batch statistics), with
    the same batch of 2 images side x side and labels: the logits and the input's and every parameter's gradient
    agree."""
    opt = minifm.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=lr, momentum=0.9)
    model.train()
    torch_model.train()
    x = images((2, 3, side, side), seed=0).astype(np.float64)
    labels = np.array([3, 8])
    xm, xt = minifm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    logits, torch_logits = model(xm), torch_model(xt)
    assert_close(logits, torch_logits, **TOL64)
    minifm.nn.functional.cross_entropy(logits, minifm.tensor(labels)).backward()
    torch.nn.functional.cross_entropy(torch_logits, torch.tensor(labels)).backward()
    assert_close(xm.grad, xt.grad, **TOL64)
    torch_params = dict(torch_model.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype, name
        assert_close(p.grad, torch_params[name].grad, msg=name, **TOL64)
    opt.step()
    torch_opt.step()


def assert_states_equal(model, torch_model, **tol):
    """Every parameter and buffer (running mean and variance, num_batches_tracked), in
    the same order under the same keys."""
    theirs = torch_model.state_dict()
    ours = model.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        assert_close(value, theirs[key], msg=key, **tol)


@pytest.mark.parametrize("arch,side", [  # resnet50's 2048 channels need 2x2 maps in layer4
    ("resnet18", 32), pytest.param("resnet50", 64, marks=pytest.mark.slow)])
def test_torchvision_checkpoint_gives_the_same_logits_gradients_and_running_stats(
        arch, side, tmp_path):
    torch_model = perturbed_torch_resnet(arch)
    model = torch_checkpoint_into_minifm(getattr(R, arch)(num_classes=10), torch_model,
                                         tmp_path / "resnet.safetensors")
    assert_states_equal(model, torch_model, rtol=0, atol=0)
    x = images((1, 3, 32, 32), seed=7)
    assert_eval_logits_close(model, torch_model, x, **TOL32)  # the running estimates

    model.double()
    torch_model.double()

    assert_train_step_agrees(model, torch_model, side)
    assert_states_equal(model, torch_model, **TOL64)  # weights and running stats after it
    assert int(model.layer1[0].bn1.num_batches_tracked.item()) == 1
    assert_eval_logits_close(model, torch_model, x.astype(np.float64), **TOL64)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_state_dict_keys_and_shapes_are_torchvisions(arch):
    model, torch_model = getattr(R, arch)(), getattr(tm, arch)()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in torch_model.state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert "layer2.0.downsample.0.weight" in ours and "layer2.0.downsample.1.running_var" in ours


@pytest.mark.parametrize("arch,count", [
    ("resnet18", 11_689_512), ("resnet50", 25_557_032),
    pytest.param("resnet34", 21_797_672, marks=pytest.mark.slow),
    pytest.param("resnet101", 44_549_160, marks=pytest.mark.slow),
    pytest.param("resnet152", 60_192_808, marks=pytest.mark.slow)])
def test_parameter_counts_are_torchvisions(arch, count):
    assert sum(p.numel() for p in getattr(R, arch)().parameters()) == count


def test_initialization_is_torchvisions():
    minifm.manual_seed(0)
    model = R.resnet18(num_classes=10)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):  # kaiming_normal_, fan_out, relu: std sqrt(2 / fan_out)
            w = to_numpy(m.weight)
            fan_out = w.shape[0] * w.shape[2] * w.shape[3]
            assert abs(w.mean()) < 4 * np.sqrt(2 / fan_out / w.size), name
            assert w.std() == pytest.approx(np.sqrt(2 / fan_out), rel=0.05), name
        elif isinstance(m, nn.BatchNorm2d):
            assert np.all(to_numpy(m.weight) == 1) and np.all(to_numpy(m.bias) == 0), name
    assert to_numpy(model.layer1[0].bn2.weight).min() == 1  # zero_init_residual is off


def test_zero_init_residual_zeroes_each_blocks_last_batch_norm():
    for model, last in ((R.resnet18(zero_init_residual=True), "bn2"),
                        (R.resnet50(zero_init_residual=True), "bn3"),
                        (R.resnet20(zero_init_residual=True), "bn2")):
        blocks = [m for m in model.modules() if isinstance(m, (R.BasicBlock, R.Bottleneck))]
        assert blocks
        for block in blocks:
            assert np.all(to_numpy(getattr(block, last).weight) == 0)
            assert np.all(to_numpy(block.bn1.weight) == 1)


def test_zero_init_residual_blocks_start_as_the_identity():
    """With the last batch norm zeroed, a block without a downsample is relu(x)."""
    block = R.resnet18(zero_init_residual=True).layer1[1]
    x = minifm.randn(2, 64, 4, 4)
    assert np.array_equal(to_numpy(block(x)), np.maximum(x.numpy(), 0))


# ============================================================================ CIFAR-style
@pytest.mark.parametrize("arch,count", [  # He et al., Table 6: 0.27M, 0.46M, 0.66M, 0.85M
    ("resnet20", 269_722), ("resnet32", 464_154), ("resnet44", 658_586),
    ("resnet56", 853_018)])
def test_cifar_resnets_have_the_papers_depth_and_parameter_count(arch, count):
    model = getattr(R, arch)()
    assert sum(p.numel() for p in model.parameters()) == count
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == int(arch[len("resnet"):])  # 6n + 1 convolutions and fc
    assert round(count / 1e6, 2) == {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66,
                                     "resnet56": 0.85}[arch]


def test_cifar_resnet_maps_shrink_from_32_to_8_and_channels_grow_to_64():
    model = R.resnet20(num_classes=10)
    shapes = {}
    for name in ("layer1", "layer2", "layer3"):
        getattr(model, name).register_forward_hook(
            lambda m, args, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
    assert tuple(model(minifm.randn(2, 3, 32, 32)).shape) == (2, 10)
    assert shapes == {"layer1": (2, 16, 32, 32), "layer2": (2, 32, 16, 16),
                      "layer3": (2, 64, 8, 8)}
    assert R.resnet20(in_channels=1)(minifm.randn(2, 1, 8, 8)).shape == (2, 10)


def test_option_a_shortcut_subsamples_and_pads_channels_with_zeros():
    x = minifm.randn(2, 16, 8, 8, requires_grad=True)
    y = R.ZeroPadShortcut(16, stride=2)(x)
    assert tuple(y.shape) == (2, 32, 4, 4)
    assert np.array_equal(to_numpy(y)[:, :16], to_numpy(x)[:, :, ::2, ::2])
    assert not to_numpy(y)[:, 16:].any()
    y.sum().backward()  # the gradient reaches the kept pixels only
    expected = np.zeros((2, 16, 8, 8), np.float32)
    expected[:, :, ::2, ::2] = 1
    assert np.array_equal(x.grad.numpy(), expected)
    assert not list(R.resnet20().layer2[0].downsample.parameters())  # parameter-free


def test_cifar_resnet_refuses_a_depth_not_of_the_form_6n_plus_2():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        R.CifarResNet(21)
