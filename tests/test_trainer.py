"""The Trainer: its schedule, exact resume, NaN policy, early stopping, Ctrl-C, refusal of
damaged checkpoints, metrics files and their truncation on resume, the Task contract and
the settings' checks. (The command line: tests/test_cli.py.)"""
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

import minifm
from minifm import nn
from minifm.optim import SGD
from minifm.train import TrainConfig, Trainer, WarmupCosine
from minifm.train.tasks.base import Task


def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT's train.py get_lr, verbatim in spirit: the reference for WarmupCosine."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def test_warmup_cosine_matches_nanogpt():
    schedule = WarmupCosine(100, 2000, min_ratio=0.1)
    for it in [0, 1, 50, 99, 100, 101, 500, 1999, 2000, 2001, 5000]:
        assert schedule(it) * 1e-3 == pytest.approx(nanogpt_get_lr(it, 1e-3, 100, 2000, 1e-4))


@dataclass
class RegressionConfig:
    steps_until_nan: int = -1
    interrupt_at: int = -1
    val_trend: float = 0.0   # > 0 makes the val loss rise each evaluation
    seed: int = 0


class RegressionTask(Task):
    """y = x @ w_true + noise, fitted by a Linear layer: small, fast, deterministic."""

    name = "regression"
    config_class = RegressionConfig

    def __init__(self, cfg, out_dir, state=None, load_data=True):
        super().__init__(cfg, out_dir)
        minifm.manual_seed(cfg.seed)
        self.model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 1))
        self.opt = SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.gen = minifm.Generator(seed=cfg.seed + 1)
        self.w_true = minifm.randn(4, 1, generator=minifm.Generator(seed=99))
        self.calls, self.evals = 0, 0

    modules = property(lambda self: {"model": self.model})
    optimizers = property(lambda self: {"model": self.opt})

    def next_batch(self):
        x = minifm.randn(16, 4, generator=self.gen)
        return x, x @ self.w_true

    def loss(self, name, batch):
        self.calls += 1
        if self.calls == self.cfg.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        loss = ((self.model(x) - y) ** 2).mean()
        if self.cfg.steps_until_nan >= 0 and self.calls > self.cfg.steps_until_nan:
            loss = loss * float("nan")
        return loss, {"loss": loss.item()}

    def evaluate(self, split):
        self.evals += 1
        self.model.eval()
        x = minifm.randn(64, 4, generator=minifm.Generator(seed=7))
        value = ((self.model(x) - x @ self.w_true) ** 2).mean().item()
        self.model.train()
        return {"loss": value + self.cfg.val_trend * self.evals}

    def data_state(self):
        return {"gen": self.gen.get_state()}

    def load_data_state(self, state):
        self.gen.set_state(state["gen"])

    def sample(self, seed=0):
        return "regression: nothing to sample"


def _params(task):
    return {k: v.numpy().copy() for k, v in task.model.state_dict().items()}


def _train(tmp_path, steps, name, cfg=None, resume_from=None, **train_kw):
    task = RegressionTask(cfg or RegressionConfig(), str(tmp_path / name))
    trainer = Trainer(task, TrainConfig(max_steps=steps, eval_interval=5, log_interval=1,
                                        warmup_steps=2, out_dir=str(tmp_path / name), **train_kw),
                      log=lambda *a: None)
    if resume_from:
        trainer.resume(resume_from)
    return task, trainer, trainer.fit()


def test_resume_is_bit_exact(tmp_path):
    # The first half stops at step 10 of the same 20-step schedule (lr_decay_steps fixed).
    full, _, _ = _train(tmp_path, 20, "full", lr_decay_steps=20)
    _, first, _ = _train(tmp_path, 10, "half", lr_decay_steps=20)
    resumed, _, summary = _train(tmp_path, 20, "resumed", resume_from=first.checkpoint_path,
                                 lr_decay_steps=20)
    assert summary["outcome"] == "finished" and summary["steps"] == 20
    a, b = _params(full), _params(resumed)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    sa, sb = full.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    assert all(np.array_equal(sa[i]["momentum_buffer"].numpy(), sb[i]["momentum_buffer"].numpy())
               for i in sa)


def test_nan_stop_and_skip(tmp_path):
    _, trainer, summary = _train(tmp_path, 20, "stop", RegressionConfig(steps_until_nan=6))
    assert summary["outcome"] == "stopped-non-finite" and trainer.step == 6
    task, trainer, summary = _train(tmp_path, 10, "skip", RegressionConfig(steps_until_nan=6),
                                    nan_policy="skip")
    assert summary["outcome"] == "finished" and summary["skipped_steps"] == 4
    assert all(np.isfinite(v).all() for v in _params(task).values())


def test_early_stopping(tmp_path):
    task, trainer, summary = _train(tmp_path, 100, "early", RegressionConfig(val_trend=10.0),
                                    early_stopping_patience=2)
    assert summary["outcome"] == "early-stopped"
    assert trainer.step == 10  # evaluations at 0 (best), 5 and 10 (no improvement twice)


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    _, trainer, summary = _train(tmp_path, 20, "interrupt", RegressionConfig(interrupt_at=8))
    assert summary["outcome"] == "interrupted"
    ckpt = minifm.train.read_checkpoint(trainer.checkpoint_path)
    assert ckpt["trainer"]["step"] == 7


def test_damaged_checkpoint_is_refused_and_nothing_loads(tmp_path):
    _, trainer, _ = _train(tmp_path, 5, "damaged")
    path = trainer.checkpoint_path
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) - 7])
    task = RegressionTask(RegressionConfig(seed=3), str(tmp_path / "fresh"))
    before = _params(task)
    fresh = Trainer(task, TrainConfig(out_dir=str(tmp_path / "fresh")))
    with pytest.raises(ValueError):
        fresh.resume(path)
    after = _params(task)
    assert all(np.array_equal(before[k], after[k]) for k in before) and fresh.step == 0


def test_metrics_files_and_plot(tmp_path):
    _train(tmp_path, 10, "metrics")
    out = tmp_path / "metrics"
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {r["split"] for r in rows} == {"train", "val"}
    assert sum(r["split"] == "train" for r in rows) == 10
    summary = json.load(open(out / "summary.json"))
    assert summary["test"]["loss"] >= 0
    if summary["loss_plot"]:
        assert open(summary["loss_plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_resume_drops_metric_rows_logged_after_the_checkpoint(tmp_path):
    _, first, _ = _train(tmp_path, 10, "rows")  # checkpoint at step 10
    out = tmp_path / "rows"
    with open(out / "metrics.csv", "a") as f:  # a run killed after step 12, mid-line
        f.write("11,train,loss,0.5\n12,train,loss,0.4\n13,tra")
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "split": "train", "loss": 0.5}\n{"step": 12, "spl')
    _train(tmp_path, 15, "rows", resume_from=first.checkpoint_path)
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    train_steps = [r["step"] for r in rows if r["split"] == "train"]
    assert train_steps == list(range(1, 16))
    lines = open(out / "metrics.csv").read().splitlines()
    assert lines[0] == "step,split,metric,value"
    keys = [tuple(line.split(",")[:3]) for line in lines[1:]]
    assert len(keys) == len(set(keys)) and ("15", "train", "loss") in keys


def test_a_task_must_implement_the_contract():
    class Incomplete(Task):
        name = "incomplete"

        def next_batch(self):
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(None, "unused")


def test_settings_are_checked_by_the_configs_themselves():
    from minifm.train import ConfigError
    from minifm.train.tasks.gpt import GPTTaskConfig
    cases = [(dict(n_layer=0), "GPTTaskConfig: n_layer=0 must be >= 1"),
             (dict(n_embd=10, n_head=3), "n_embd=10 must be divisible by n_head=3"),
             (dict(val_frac=1.0), r"val_frac=1.0 must be in \[0, 1\)"),
             (dict(val_frac=0.6, test_frac=0.5), "leaves no training text"),
             (dict(learning_rate=float("inf")), "learning_rate=inf must be a finite number"),
             (dict(tokenizer="word"), "tokenizer='word' must be one of 'char', 'bpe'"),
             (dict(encoding="klingon"), "not a known text encoding")]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            GPTTaskConfig(**kwargs)
    for kwargs, message in [(dict(grad_clip=0.0), "grad_clip=0.0 must be a finite number > 0"),
                            (dict(log_interval=0), "log_interval=0 must be >= 1"),
                            (dict(nan_policy="ignore"), "nan_policy='ignore' must be one of"),
                            (dict(min_lr_ratio=float("nan")), "must be a finite number")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**kwargs)
    assert TrainConfig(grad_clip=None).grad_clip is None


def test_early_stopping_metric_must_be_one_the_task_reports(tmp_path):
    task = RegressionTask(RegressionConfig(), str(tmp_path))
    with pytest.raises(ValueError, match="early_stopping_metric='accuracy' must be one of 'loss'"):
        Trainer(task, TrainConfig(early_stopping_metric="accuracy", out_dir=str(tmp_path)))
