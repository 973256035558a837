"""Settings: a config field that documents itself, and the checks every config runs.

The task configs and TrainConfig are dataclasses whose fields are declared with
`setting(default, help, choices)`: the help text and the allowed values live beside the
field, and the command line (minifm/cli.py) reads them from there, so `--help` and the
code never drift apart.

Each config checks its values in `__post_init__` with the `require_*` functions below.
They raise ConfigError, a ValueError that knows which fields it is about: the Python API
shows "GPTTaskConfig: n_embd=100 must be divisible by n_head=3", and the command line
shows the same sentence with the fields written as options ("--n-embd=100 ...").
"""
from __future__ import annotations

import dataclasses
import math


def setting(default, help, choices=None):
    """A dataclass field with a help text and, optionally, its allowed values."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)


class ConfigError(ValueError):
    """A setting out of range. `owner` is the config class's name, `detail` the sentence
    about it, `fields` the names of the settings involved."""

    def __init__(self, owner, detail, *fields):
        super().__init__(f"{owner}: {detail}")
        self.owner, self.detail, self.fields = owner, detail, fields


def _fail(cfg, detail, *fields):
    raise ConfigError(type(cfg).__name__, detail, *fields)


def require_at_least(cfg, minimum, *names):
    """Each of the integer settings `names` is >= minimum (None, where allowed, passes)."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not value >= minimum:
            _fail(cfg, f"{name}={value} must be >= {minimum}", name)


def require_fraction(cfg, *names):
    """Each of the settings `names` is in [0, 1)."""
    for name in names:
        value = getattr(cfg, name)
        if not 0 <= value < 1:
            _fail(cfg, f"{name}={value} must be in [0, 1)", name)


def require_positive(cfg, *names):
    """Each of the settings `names` is finite and > 0 (None, where allowed, passes)."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            _fail(cfg, f"{name}={value} must be a finite number > 0", name)


def require_divisible(cfg, name, divisor_name):
    value, divisor = getattr(cfg, name), getattr(cfg, divisor_name)
    if value % divisor:
        _fail(cfg, f"{name}={value} must be divisible by {divisor_name}={divisor}",
              name, divisor_name)


def require_choices(cfg):
    """Every field declared with choices holds one of them."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if choices is not None and value not in choices:
            _fail(cfg, f"{f.name}={value!r} must be one of {', '.join(map(repr, choices))}",
                  f.name)


def require_finite(cfg):
    """No float setting is NaN or infinite."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            _fail(cfg, f"{f.name}={value} must be a finite number", f.name)
