"""The DCGAN task's WGAN-GP loss (Gulrajani et al., 2017): the critic's gradients, whose
gradient penalty needs second derivatives, against PyTorch's on the same weights and
batch (float64); n_critic critic updates per generator update through the Trainer, with
bit-exact resume; the optimizer settings each loss defaults to; and a tiny
`minifm train dcgan --loss wgan-gp` run."""
import json

import numpy as np
import pytest

import minifm
from conftest import assert_close, to_torch
from minifm.cli import main
from minifm.train import Trainer
from minifm.train.tasks.dcgan import DCGANTask, DCGANTaskConfig, gradient_penalty
from test_tasks import (
    assert_same_states, parameters_after_resume, quiet, tiny_dcgan_config, train_config,
)

torch = pytest.importorskip("torch")


def torch_critic(ndf, image_size, norm):
    """PyTorch's twin of minifm's Discriminator(1, ndf, image_size, norm) for norm "layer"
    or "none": the same layer stack, so the same state_dict keys."""
    layers = [torch.nn.Conv2d(1, ndf, 4, 2, 1, bias=False), torch.nn.LeakyReLU(0.2)]
    ch, side = ndf, image_size // 2
    while side > 4:
        ch, side = ch * 2, side // 2
        layers += [torch.nn.Conv2d(ch // 2, ch, 4, 2, 1, bias=False),
                   torch.nn.LayerNorm((ch, side, side)) if norm == "layer" else torch.nn.Identity(),
                   torch.nn.LeakyReLU(0.2)]
    layers += [torch.nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
    critic = torch.nn.Sequential(*layers)
    return torch.nn.ModuleDict({"main": critic}).double()


def torch_critic_loss(critic, real, fake, eps, gp_weight):
    """Algorithm 1's critic loss, written out in PyTorch."""
    score = lambda x: critic["main"](x).view(-1)  # noqa: E731
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (gradient,) = torch.autograd.grad(score(x_hat).sum(), x_hat, create_graph=True)
    penalty = ((gradient.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return score(fake).mean() - score(real).mean() + gp_weight * penalty, penalty


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_critic_gradients_match_pytorch(tmp_path, norm):
    cfg = DCGANTaskConfig(image_size=16, nz=4, ngf=4, ndf=4, batch_size=6, loss="wgan-gp",
                          n_critic=1, critic_norm=norm)
    task = DCGANTask(cfg, str(tmp_path), load_data=False)
    task.netG.double()
    task.netD.double()
    rng = np.random.default_rng(0)
    real = minifm.tensor(rng.uniform(-1, 1, (6, 1, 16, 16)))
    z = minifm.tensor(rng.standard_normal((6, 4, 1, 1)))
    eps = minifm.tensor(rng.uniform(size=(6, 1, 1, 1)))

    loss, metrics = task.loss("D", [(real, z, eps)])
    loss.backward()

    twin = torch_critic(4, 16, norm)
    twin.load_state_dict({k: to_torch(v) for k, v in task.netD.state_dict().items()})
    fake = to_torch(task.netG(z))  # the same fake batch: G's batch norm sees the same z
    expected, penalty = torch_critic_loss(twin, to_torch(real), fake, to_torch(eps),
                                          cfg.gp_weight)
    expected.backward()
    assert loss.dtype == minifm.float64
    assert metrics["loss_D"] == pytest.approx(expected.item(), rel=1e-12)
    assert metrics["gradient_penalty"] == pytest.approx(penalty.item(), rel=1e-12)
    assert metrics["gradient_penalty"] > 0.1  # the penalty's own gradient matters here
    torch_params = dict(twin.named_parameters())
    for name, p in task.netD.named_parameters():
        assert_close(p.grad, torch_params[name].grad, msg=name)


def test_gradient_penalty_vanishes_for_a_unit_gradient_critic():
    # critic(x) = <w, x> with ||w|| = 1 has gradient norm 1 everywhere
    w = minifm.tensor(np.full((1, 2, 2), 0.5), requires_grad=True)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = minifm.randn(3, 1, 2, 2, dtype=minifm.float64), minifm.zeros(3, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake, minifm.rand(3, 1, 1, 1))
    assert penalty.item() == pytest.approx(0.0, abs=1e-12)
    penalty.backward()  # a second derivative, 0 at the minimum of (||w|| - 1)^2
    np.testing.assert_allclose(w.grad.numpy(), 0.0, atol=1e-12)


def test_a_training_step_updates_the_critic_n_critic_times(tmp_path):
    task = DCGANTask(tiny_dcgan_config(loss="wgan-gp", n_critic=3), str(tmp_path))
    metrics = Trainer(task, train_config(tmp_path, 1, 1, None), log=quiet).train_step()
    assert set(metrics) == {"loss_D", "wasserstein_estimate", "gradient_penalty", "loss_G"}
    steps = lambda opt: {s["step"] for s in opt.state.values()}  # noqa: E731
    assert steps(task.optimizerD) == {3} and steps(task.optimizerG) == {1}


def test_wgan_gp_trains_and_resumes_bit_exactly(tmp_path):
    cfg = tiny_dcgan_config(loss="wgan-gp", n_critic=2)
    straight, rebuilt = parameters_after_resume(DCGANTask, cfg, tmp_path, n=2, grad_clip=None)
    assert_same_states(straight, rebuilt)
    assert rebuilt.cfg == cfg  # the checkpoint holds the resolved Adam settings


def test_each_loss_has_its_papers_adam_settings_unless_given():
    standard, wgan = DCGANTaskConfig(), DCGANTaskConfig(loss="wgan-gp")
    assert (standard.learning_rate, standard.beta1, standard.beta2) == (2e-4, 0.5, 0.999)
    assert (wgan.learning_rate, wgan.beta1, wgan.beta2) == (1e-4, 0.0, 0.9)
    assert (wgan.gp_weight, wgan.n_critic, wgan.critic_norm) == (10.0, 5, "layer")
    assert DCGANTaskConfig(loss="wgan-gp", beta2=0.99).beta2 == 0.99
    with pytest.raises(ValueError, match="DCGANTaskConfig: n_critic=0 must be >= 1"):
        DCGANTaskConfig(n_critic=0)
    with pytest.raises(ValueError, match="DCGANTaskConfig: gp_weight=-1.0 must be a finite"):
        DCGANTaskConfig(gp_weight=-1.0)
    with pytest.raises(ValueError, match="loss='wgan' must be one of 'standard', 'wgan-gp'"):
        DCGANTaskConfig(loss="wgan")


def test_cli_trains_a_tiny_wgan_gp(tmp_path, capsys):
    out = tmp_path / "wgan"
    assert main(["train", "dcgan", "--loss", "wgan-gp", "--max-steps", "3",
                 "--out-dir", str(out), "--image-size", "8", "--nz", "4", "--ngf", "4",
                 "--ndf", "4", "--batch-size", "16", "--grid-size", "4",
                 "--classifier-epochs", "1", "--eval-interval", "3", "--log-interval", "1",
                 "--samples", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "finished" and summary["steps"] == 3
    assert summary["test"]["frechet_distance"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [row for row in rows if row["split"] == "train"]
    assert len(train) == 3 and all(np.isfinite(row["gradient_penalty"]) for row in train)
