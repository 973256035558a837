"""What every task shares: its config dataclass, and rebuilding itself from a checkpoint."""
from __future__ import annotations

import dataclasses


class Task:
    """Base of the training tasks. A subclass sets `name` and `config_class` and implements
    the Trainer interface (modules, optimizers, next_batch, loss, evaluate, data_state,
    load_data_state, sample). `state()` returns what, beyond the config, the task needs to
    be rebuilt (a trained tokenizer, say); it is stored in the checkpoint's config."""

    name = ""
    config_class = None

    def __init__(self, cfg, out_dir, state=None, load_data=True):
        self.cfg, self.out_dir = cfg, out_dir

    def state(self) -> dict:
        return {}

    @property
    def config(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self.cfg), "state": self.state()}

    @classmethod
    def from_config(cls, config, out_dir, load_data=True):
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        cfg = cls.config_class(**{k: v for k, v in config.items() if k in names})
        return cls(cfg, out_dir, state=config.get("state"), load_data=load_data)

    def data_state(self) -> dict:
        return {}

    def load_data_state(self, state):
        pass
