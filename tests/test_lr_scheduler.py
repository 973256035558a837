"""Learning-rate schedulers (minifm/optim/lr_scheduler.py) against PyTorch: each schedule's
lrs (and OneCycleLR's momentum / beta1) over 30 steps, on an optimizer with two param
groups, must equal PyTorch's exactly; state_dict resumes through minifm.save/load; bad
arguments raise PyTorch's errors."""
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm import optim  # noqa: E402

STEPS = 30


def make_optimizer(lib, kind="sgd"):
    new = torch.tensor if lib is torch else minifm.tensor
    a, b = new(np.ones(2, np.float32), requires_grad=True), new(np.ones(3, np.float32), requires_grad=True)
    groups = [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.05}]
    if kind == "adam":
        return lib.optim.Adam(groups)
    return lib.optim.SGD(groups, momentum=0.9)


class Scale:
    """A callable object as lr_lambda: its attributes go into LambdaLR's state_dict."""

    def __init__(self, base):
        self.base = base

    def __call__(self, epoch):
        return self.base ** epoch


SCHEDULES = {
    "step": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda s, o: s.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.3),
    "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "cosine": lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "cosine_default": lambda s, o: s.CosineAnnealingLR(o, T_max=7),
    "lambda": lambda s, o: s.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e),
    "lambda_per_group": lambda s, o: s.LambdaLR(o, lr_lambda=[lambda e: 1 / (e + 1), Scale(0.9)]),
    "linear": lambda s, o: s.LinearLR(o),
    "linear_decay": lambda s, o: s.LinearLR(o, start_factor=0.5, end_factor=0.1, total_iters=8),
    "onecycle": lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS + 1),
    "onecycle_linear_three_phase": lambda s, o: s.OneCycleLR(
        o, max_lr=0.8, epochs=4, steps_per_epoch=8, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0),
    "onecycle_no_momentum": lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=40,
                                                      cycle_momentum=False),
    "sequential_warmup_cosine": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.1, total_iters=5), s.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "sequential_three": lambda s, o: s.SequentialLR(
        o, [s.ExponentialLR(o, gamma=0.8), s.StepLR(o, step_size=2), s.LinearLR(o)],
        milestones=[4, 12]),
}


def lr_sequence(lib, name, kind="sgd"):
    """[(group lrs, group momentum or beta1)] at creation and after each step."""
    opt = make_optimizer(lib, kind)
    sched = SCHEDULES[name](lib.optim.lr_scheduler, opt)
    key = "betas" if kind == "adam" else "momentum"

    def snapshot():
        momenta = [g[key][0] if key == "betas" else g[key] for g in opt.param_groups]
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        return [g["lr"] for g in opt.param_groups], momenta

    seq = [snapshot()]
    for _ in range(STEPS):
        opt.step()
        sched.step()
        seq.append(snapshot())
    return seq, opt, sched


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_equals_pytorch(name):
    ours, _, _ = lr_sequence(minifm, name)
    theirs, _, _ = lr_sequence(torch, name)
    assert ours == theirs


@pytest.mark.parametrize("name", ["onecycle", "onecycle_linear_three_phase"])
def test_onecycle_cycles_adam_beta1(name):
    ours, opt, _ = lr_sequence(minifm, name, kind="adam")
    theirs, _, _ = lr_sequence(torch, name, kind="adam")
    assert ours == theirs
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_scheduler_records_initial_lr_and_base_lrs():
    opt = make_optimizer(minifm)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.05]
    assert sched.base_lrs == [0.1, 0.05] and sched.last_epoch == 0


def test_onecycle_refuses_to_step_past_total_steps():
    opt = make_optimizer(minifm)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        sched.step()


@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine", "linear_decay"])
def test_deprecated_step_with_epoch_uses_the_closed_form(name):
    results = []
    for lib in (minifm, torch):
        opt = make_optimizer(lib)
        sched = SCHEDULES[name](lib.optim.lr_scheduler, opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in (4, 9, 13):
                sched.step(epoch)
        results.append(sched.get_last_lr())
    assert results[0] == results[1]


# ----------------------------------------------------------------------------- state_dict
@pytest.mark.parametrize("name", ["cosine", "multistep", "lambda_per_group", "onecycle",
                                  "sequential_warmup_cosine"])
def test_resume_from_saved_state_equals_uninterrupted_run(name, tmp_path):
    expected, _, _ = lr_sequence(minifm, name)
    opt = make_optimizer(minifm)
    sched = SCHEDULES[name](optim.lr_scheduler, opt)
    for _ in range(10):
        opt.step()
        sched.step()
    if name == "lambda_per_group":
        sched.lr_lambdas[1].base = 0.9  # what the file must restore into the new Scale object
    minifm.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
                tmp_path / "ckpt.safetensors")

    checkpoint = minifm.load(tmp_path / "ckpt.safetensors")
    opt = make_optimizer(minifm)
    sched = SCHEDULES[name](optim.lr_scheduler, opt)
    if name == "lambda_per_group":
        sched.lr_lambdas[1].base = 0.5
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    got = []
    for _ in range(10, STEPS):
        opt.step()
        sched.step()
        got.append([g["lr"] for g in opt.param_groups])
    assert got == [lrs for lrs, _ in expected[11:]]


def test_state_dict_matches_pytorch_and_omits_the_optimizer():
    ours = SCHEDULES["lambda_per_group"](optim.lr_scheduler, make_optimizer(minifm))
    theirs = SCHEDULES["lambda_per_group"](torch.optim.lr_scheduler, make_optimizer(torch))
    sd_m, sd_t = ours.state_dict(), theirs.state_dict()
    assert "optimizer" not in sd_m
    assert sd_m["lr_lambdas"] == sd_t["lr_lambdas"] == [None, {"base": 0.9}]
    for key in ("base_lrs", "last_epoch", "_step_count", "_last_lr"):
        assert sd_m[key] == sd_t[key]


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        optim.lr_scheduler.StepLR(make_optimizer(minifm), step_size=2, last_epoch=5)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make,exc,match", [
    (lambda s, o: s.StepLR(object(), 2), TypeError, "object is not an Optimizer"),
    (lambda s, o: s.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
    (lambda s, o: s.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative factor"),
    (lambda s, o: s.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda s, o: s.OneCycleLR(o, max_lr=0.1), ValueError, "either total_steps OR"),
    (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError, "positive integer total_steps"),
    (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1), ValueError, "pct_start"),
    (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be one of 'cos' or 'linear'"),
    (lambda s, o: s.OneCycleLR(o, max_lr=[0.1], total_steps=5), ValueError,
     "max_lr must have the same length as optimizer.param_groups"),
    (lambda s, o: s.SequentialLR(o, [s.StepLR(o, 2)], milestones=[3]), ValueError,
     "number of schedulers provided to be one more"),
    (lambda s, o: s.SequentialLR(o, [], milestones=[]), ValueError, "at least one scheduler"),
])
def test_scheduler_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(optim.lr_scheduler, make_optimizer(minifm))
    with pytest.raises(exc, match=match):  # PyTorch raises the same
        make(torch.optim.lr_scheduler, make_optimizer(torch))


def test_cosine_reaches_eta_min_at_t_max():
    opt = make_optimizer(minifm)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    for _ in range(8):
        sched.step()
    assert all(math.isclose(lr, 0.01, rel_tol=1e-12) for lr in sched.get_last_lr())
