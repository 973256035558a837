"""TrainConfig: the settings of the training loop (a task's own settings live in its
config dataclass, in tasks/)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .settings import (
    ConfigError, require_at_least, require_choices, require_finite, require_positive, setting,
)

NAN_POLICIES = ("stop", "skip")


@dataclass
class TrainConfig:
    max_steps: int = setting(2000, "training steps in all (a resumed run may raise it)")
    eval_interval: int = setting(250, "steps between evaluations and checkpoints")
    log_interval: int = setting(10, "steps between progress lines and metrics rows")
    warmup_steps: int = setting(100, "steps of linear learning-rate warmup")
    lr_decay_steps: int | None = setting(
        None, "step where the cosine decay reaches its floor (none: max_steps)")
    min_lr_ratio: float = setting(0.1, "final learning rate as a fraction of the peak")
    grad_clip: float | None = setting(
        1.0, "max global gradient norm per optimizer ('none' turns clipping off)")
    early_stopping_patience: int | None = setting(
        None, "stop after this many evaluations without improvement (none: never)")
    early_stopping_metric: str | None = setting(
        None, "the validation metric (lower is better) for early stopping and "
        "best.safetensors (default: the task's first choice)")
    nan_policy: str = setting("stop", "on a NaN/inf loss or gradient: stop the run, or "
                              "skip the step", choices=NAN_POLICIES)
    out_dir: str = setting("runs/run", "the run folder: checkpoints, metrics, plots")
    checkpoint_name: str = setting("checkpoint.safetensors", "file name of the latest checkpoint")
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        require_at_least(self, 0, "max_steps", "warmup_steps")
        require_at_least(self, 1, "eval_interval", "log_interval", "lr_decay_steps",
                         "early_stopping_patience")
        require_positive(self, "grad_clip")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("TrainConfig", f"min_lr_ratio={self.min_lr_ratio} must be in "
                              "[0, 1]", "min_lr_ratio")
