"""Argument checks shared by the ops' public functions."""
from __future__ import annotations

from ..tensor import Tensor


def check_tensor(op, value, name="input"):
    """Raise a TypeError naming the op unless `value` is a Tensor. Function.apply checks
    its inputs too, but an op that picks a kernel reads the input's device and dtype first."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: expected Tensor {name}, got {type(value).__name__}")
