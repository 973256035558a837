"""The class-conditional DCGAN: its networks against PyTorch twins with the same weights
(forward, backward, batch norm's running statistics), the `cgan` task's training with
bit-exact resume, its per-class evaluation (Frechet distance, GAN-test with a ResNet run),
the one-row-per-class sample grid, the few-shot subset, and the command line."""
import numpy as np
import pytest

import minifm
import torch_models as tm
from conftest import assert_close, to_numpy
from minifm.cli import main
from minifm.models import ConditionalDiscriminator, ConditionalGenerator
from minifm.train import Trainer
from minifm.train.tasks.cgan import (
    CGANTask, CGANTaskConfig, classifier_input, load_classifier, per_class_subset,
)
from minifm.train.tasks.resnet import ResNetTask, ResNetTaskConfig
from test_tasks import (
    assert_same_states, decode_png, parameters_after_resume, quiet, train_config,
)

torch = pytest.importorskip("torch")


def tiny_cgan_config(**overrides):
    return CGANTaskConfig(**{**dict(
        image_size=8, nz=4, ngf=4, ndf=4, embed_dim=3, batch_size=64, grid_size=20,
        classifier_epochs=1, classifier=None, gan_test_samples=5), **overrides})


@pytest.mark.parametrize("image_size, norm", [(8, "batch"), (16, "batch"), (16, "layer")])
def test_conditional_networks_match_pytorch(image_size, norm):
    minifm.manual_seed(0)
    G = ConditionalGenerator(nz=5, ngf=4, nc=1, image_size=image_size, embed_dim=3).double()
    D = ConditionalDiscriminator(nc=1, ndf=4, image_size=image_size, norm=norm).double()
    tG = tm.ConditionalGenerator(nz=5, ngf=4, nc=1, image_size=image_size, embed_dim=3)
    tD = tm.ConditionalDiscriminator(nc=1, ndf=4, image_size=image_size)
    if norm == "layer":  # the WGAN-GP critic: layer norm where DCGAN has batch norm
        side = image_size // 4
        tD.main[3] = torch.nn.LayerNorm((8, side, side))
    for net, twin in ((G, tG), (D, tD)):
        assert list(net.state_dict()) == list(twin.state_dict())
        twin.double().load_state_dict({k: torch.from_numpy(to_numpy(v).copy())
                                       for k, v in net.state_dict().items()})
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5, 1, 1))
    labels = np.array([0, 3, 9, 3, 1, 7])
    y, t_y = minifm.tensor(labels), torch.from_numpy(labels)

    fake, t_fake = G(minifm.tensor(z), y), tG(torch.from_numpy(z), t_y)  # train mode
    assert_close(fake, t_fake)
    logits, t_logits = D(fake, y), tD(t_fake, t_y)
    assert logits.shape == (6,)
    assert_close(logits, t_logits)
    weights = rng.standard_normal(6)
    (logits * minifm.tensor(weights)).sum().backward()
    (t_logits * torch.from_numpy(weights)).sum().backward()
    for net, twin in ((G, tG), (D, tD)):
        t_params = dict(twin.named_parameters())
        for name, p in net.named_parameters():
            assert_close(p.grad, t_params[name].grad, msg=name)
        t_state = twin.state_dict()
        for key, value in net.state_dict().items():  # running statistics after the step
            assert_close(value, t_state[key], msg=key)
    # only the embedding rows of the labels used receive a gradient
    unused = sorted(set(range(10)) - set(labels))
    assert not to_numpy(G.label_embedding.weight.grad)[unused].any()


def test_the_label_changes_the_digit():
    minifm.manual_seed(0)
    G = ConditionalGenerator(nz=4, ngf=4, image_size=8).eval()
    z = minifm.randn(1, 4, 1, 1).expand(2, 4, 1, 1)
    with minifm.no_grad():
        two = to_numpy(G(z, minifm.tensor([3, 5])))
    assert not np.allclose(two[0], two[1])


def test_per_class_subset():
    labels = np.repeat(np.arange(10), 7)[np.random.default_rng(0).permutation(70)]
    keep = per_class_subset(labels, 3, seed=5)
    assert np.array_equal(np.bincount(labels[keep]), np.full(10, 3))
    assert np.array_equal(keep, per_class_subset(labels, 3, seed=5))
    assert not np.array_equal(keep, per_class_subset(labels, 3, seed=6))
    assert np.array_equal(per_class_subset(labels, 0, seed=5), np.arange(70))
    with pytest.raises(ValueError, match="class 0 has only 7 training digits"):
        per_class_subset(labels, 8, seed=5)


def test_classifier_input_averages_down_to_8x8():
    small = np.random.default_rng(0).uniform(-1, 1, (2, 1, 8, 8))
    big = small.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(classifier_input(big), (small + 1) / 2, rtol=1e-6)
    np.testing.assert_allclose(classifier_input(small), (small + 1) / 2, rtol=1e-6)


def test_config_checks():
    with pytest.raises(ValueError, match="grid_size=25 must be a multiple of 10"):
        tiny_cgan_config(grid_size=25)
    with pytest.raises(ValueError, match="train_per_class=-1 must be >= 0"):
        tiny_cgan_config(train_per_class=-1)


@pytest.mark.slow
def test_cgan_trains_and_resumes_bit_exactly(tmp_path):
    cfg = tiny_cgan_config(train_per_class=10)  # 100 digits: one batch of 64 per epoch
    straight, rebuilt = parameters_after_resume(CGANTask, cfg, tmp_path, n=2, grad_clip=None)
    assert_same_states(straight, rebuilt)
    images, labels = straight.loader.dataset.tensors
    assert np.array_equal(np.bincount(to_numpy(labels)), np.full(10, 10))

    path = straight.sample(seed=0, path=str(tmp_path / "grid.png"))
    # one row per class, grid_size / 10 = 2 columns, 8x zoom of 8x8 digits with 2 px padding
    assert decode_png(path).shape == (8 * (10 * 8 + 11 * 2), 8 * (2 * 8 + 3 * 2))


def test_conditional_wgan_gp_step(tmp_path):
    task = CGANTask(tiny_cgan_config(loss="wgan-gp", n_critic=2), str(tmp_path))
    Trainer(task, train_config(tmp_path, 1, 1, None), log=quiet).fit()
    assert all(np.isfinite(to_numpy(p)).all() for p in task.netD.parameters())


@pytest.mark.slow
def test_cgan_evaluation_per_class_with_a_resnet_run(tmp_path):
    resnet = ResNetTask(ResNetTaskConfig(batch_size=32), str(tmp_path / "resnet"))
    Trainer(resnet, train_config(tmp_path / "resnet", 1, 1, None), log=quiet).fit()
    task = CGANTask(tiny_cgan_config(classifier=str(tmp_path / "resnet")), str(tmp_path / "c"))
    metrics = task.evaluate("test")
    for c in range(10):
        assert metrics[f"frechet_distance_class{c}"] > metrics[f"frechet_distance_real_class{c}"]
        assert 0 <= metrics[f"gan_test_accuracy_class{c}"] <= 1
    assert metrics["gan_test_accuracy"] == pytest.approx(
        np.mean([metrics[f"gan_test_accuracy_class{c}"] for c in range(10)]))
    assert 0 <= metrics["classifier_accuracy"] <= 1
    assert task.evaluate("test") == metrics  # the same noise every time
    # a classifier `minifm compress --quantize int8` made loads too (its int8 layers first)
    int8 = tmp_path / "resnet_int8.safetensors"
    assert main(["compress", "--checkpoint", str(tmp_path / "resnet" / "checkpoint.safetensors"),
                 "--out", str(int8), "--quantize", "int8"]) == 0
    assert load_classifier(str(int8)).name == "resnet"


def test_a_missing_classifier_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cgan", "--out-dir", str(out), "--classifier",
                 str(tmp_path / "nowhere"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "no checkpoint there; train one with `minifm train resnet" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_cli_trains_samples_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cgan", "--out-dir", str(out), "--classifier", "none",
                 "--image-size", "8", "--nz", "4", "--ngf", "4", "--ndf", "4",
                 "--classifier-epochs", "1", "--max-steps", "2", "--eval-interval", "2",
                 "--samples", "0"]) == 0
    assert main(["train", "cgan", "--out-dir", str(out), "--resume", "--max-steps", "3",
                 "--samples", "0"]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out / "checkpoint.safetensors"),
                 "--out", str(tmp_path / "g.png")]) == 0
    assert decode_png(tmp_path / "g.png").shape[0] == 8 * (10 * 8 + 11 * 2)
    assert main(["eval", "--checkpoint", str(out / "checkpoint.safetensors")]) == 0
    assert '"frechet_distance_class9"' in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cuda"])
def test_cli_on_cuda(device, tmp_path, capsys):
    """--device cuda (the CuPy stand-in without a GPU): train, resume, sample and eval."""
    out = tmp_path / "run"
    tiny = ["--classifier", "none", "--image-size", "8", "--nz", "4", "--ngf", "4", "--ndf",
            "4", "--classifier-epochs", "1", "--grid-size", "10", "--samples", "0"]
    assert main(["train", "cgan", "--out-dir", str(out), *tiny, "--max-steps", "1",
                 "--eval-interval", "1", "--device", device]) == 0, capsys.readouterr().err
    assert main(["train", "cgan", "--out-dir", str(out), "--resume", "--max-steps", "2",
                 "--device", device]) == 0, capsys.readouterr().err
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["sample", "--checkpoint", checkpoint, "--device", device]) == 0
    assert main(["eval", "--checkpoint", checkpoint, "--device", device]) == 0
    assert '"frechet_distance_class0"' in capsys.readouterr().out
