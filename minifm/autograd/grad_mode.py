"""Grad mode: whether ops record a graph, per thread (no_grad, enable_grad, set_grad_enabled,
inference_mode).

`no_grad()`, `enable_grad()` and `inference_mode()` work as context managers and as
decorators, written with or without the parentheses, as in PyTorch.
"""
from __future__ import annotations

import functools
import threading


class _GradMode(threading.local):
    enabled = True  # the class attributes are each thread's starting values
    inference = False


current = _GradMode()
"""This thread's grad mode: `current.enabled` (read directly on the hot path of every op)."""


def is_grad_enabled() -> bool:
    return current.enabled


def is_inference_mode_enabled() -> bool:
    return current.inference


def _set_grad_enabled(mode: bool):
    current.enabled = bool(mode)


class _GradModeContext:
    """Base of no_grad / enable_grad: a context manager that is also a decorator, written
    `@no_grad()` or, as PyTorch allows too, `@no_grad`."""

    mode = True

    def __new__(cls, *args):
        self = super().__new__(cls)
        if len(args) == 1 and callable(args[0]):  # the bare decorator: no_grad(func)
            return self(args[0])
        return self

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev)

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_grad_enabled(mode)
            try:
                return func(*args, **kwargs)
            finally:
                _set_grad_enabled(prev)
        return wrapper


class no_grad(_GradModeContext):
    """Ops run inside record no graph (inference, optimizer updates, init)."""
    mode = False


class enable_grad(_GradModeContext):
    """Re-enable recording inside a no_grad region."""
    mode = True


class set_grad_enabled(_GradModeContext):
    """set_grad_enabled(False) switches recording off now; as a context manager it restores
    the previous mode on exit (torch.set_grad_enabled semantics)."""

    def __init__(self, mode: bool):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_grad_enabled(self.mode)

    def __enter__(self):
        pass


class inference_mode(_GradModeContext):
    """inference_mode(True) (the default): no graph is recorded, as under no_grad, and
    is_inference_mode_enabled() says so; inference_mode(False) leaves it and re-enables
    recording (PyTorch's rule). PyTorch also marks the tensors made inside as inference
    tensors that autograd refuses later; minifm has no such mark: its inference mode is
    no_grad under another name, which is all that the speed of a NumPy engine gains from."""

    inference = True  # the bare decorator's mode: @inference_mode

    def __init__(self, mode=True):
        self.inference = bool(mode)

    def __enter__(self):
        self.prev = (current.enabled, current.inference)
        current.enabled, current.inference = not self.inference, self.inference

    def __exit__(self, *exc):
        current.enabled, current.inference = self.prev

    def __call__(self, func):
        mode = self.inference

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return func(*args, **kwargs)
        return wrapper
