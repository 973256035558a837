"""The contract between the Trainer and what it trains: the Task base class.

The Trainer (minifm/train/trainer.py) knows nothing about language models or GANs. It
asks a task for its optimizers, a batch, a loss per optimizer and an evaluation, and
one general loop serves a language model (one optimizer) and a GAN (discriminator, then
generator) alike. A new task subclasses Task, sets the class attributes and implements
the abstract methods; everything else has a working default.
"""
from __future__ import annotations

import abc
import dataclasses


class Task(abc.ABC):
    """Base of the training tasks.

    Class attributes a subclass sets:
        name            the task's name on the command line (`minifm train NAME`)
        config_class    its config dataclass (fields declared with settings.setting)
        train_defaults  TrainConfig values that suit the task ({"max_steps": 600, ...})
        val_metrics     the metrics of evaluate("val") where lower is better: the
                        choices of early stopping's metric
        item_name       what a training step processes, for throughput ("tokens")
        devices         the devices the task runs on (every task so far: both)
        sample_options  the keyword options its `sample` takes besides the seed

    A task is rebuilt from `config` (its settings plus `state()`, e.g. a trained
    tokenizer), so a checkpoint alone can recreate it (`from_config`).
    """

    name = ""
    config_class = None
    train_defaults: dict = {}
    val_metrics: tuple = ("loss",)
    item_name = "samples"
    devices: tuple = ("cpu", "cuda")
    sample_options: tuple = ()

    def __init__(self, cfg, out_dir, state=None, load_data=True, device="cpu"):
        """`state` is what `state()` returned when the task was saved (None for a new
        run); with load_data=False only the models are built (sampling)."""
        if device not in self.devices:
            raise ValueError(f"{self.name} task: runs on {' or '.join(self.devices)} only, "
                             f"not {device!r}")
        self.cfg, self.out_dir, self.device = cfg, out_dir, device

    # ---------------------------------------------------------------- what the Trainer asks
    @property
    @abc.abstractmethod
    def modules(self) -> dict:
        """{name: Module}: everything a checkpoint saves and restores."""

    @property
    @abc.abstractmethod
    def optimizers(self) -> dict:
        """{name: Optimizer}, stepped in this order every training step."""

    @abc.abstractmethod
    def next_batch(self):
        """The next training batch (`data_state()` records where the stream is)."""

    @abc.abstractmethod
    def loss(self, name, batch):
        """(loss Tensor, {metric: float}) of optimizer `name` on `batch`."""

    @abc.abstractmethod
    def evaluate(self, split) -> dict:
        """{metric: float} on "val" or "test" (the Trainer turns gradients off); {} when
        the task has no such split."""

    @abc.abstractmethod
    def sample(self, seed=0, **options) -> str:
        """Something to look at: a generated text, or the path of an image written."""

    @property
    def items_per_step(self) -> int:
        """How many `item_name`s one training step processes (for throughput)."""
        return 0

    def metric_label(self, name) -> str:
        """How to name the validation metric `name` in output now (a task whose "loss"
        changes meaning during a run says which loss it is)."""
        return name

    # ---------------------------------------------------------------- saving and rebuilding
    def state(self) -> dict:
        """What, beyond the config, rebuilds the task (stored in the checkpoint)."""
        return {}

    def data_state(self) -> dict:
        """Where the training batch stream is (generator states), for an exact resume."""
        return {}

    def load_data_state(self, state):
        """Return the batch stream to where `data_state()` recorded it."""

    @property
    def config(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self.cfg), "state": self.state()}

    @classmethod
    def from_config(cls, config, out_dir, load_data=True, device="cpu"):
        """The task `config` (a `config` property's value) describes."""
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        cfg = cls.config_class(**{k: v for k, v in config.items() if k in names})
        return cls(cfg, out_dir, state=config.get("state"), load_data=load_data, device=device)


class EpochCycle:
    """A DataLoader's batches epoch after epoch, for tasks that draw one batch per step:
    a new epoch starts (reshuffled) when one runs out. `reset()` after the loader's state was
    loaded, so the next batch comes from the restored position."""

    def __init__(self, loader):
        self.loader = loader
        self._epoch = None

    def next(self):
        if self._epoch is None:
            self._epoch = iter(self.loader)
        batch = next(self._epoch, None)
        if batch is None:  # the epoch is over: start the next one
            self._epoch = iter(self.loader)
            batch = next(self._epoch)
        return batch

    def reset(self):
        self._epoch = None
