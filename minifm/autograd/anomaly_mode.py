"""Anomaly mode: find the op whose backward produced a NaN (torch.autograd.detect_anomaly).

A NaN in a gradient usually shows up far from where it was made: every later node passes it
on. Anomaly mode is a FunctionHook that, while on, stores on each recorded Node where it
was created (`node.trace`, the Python stack of the forward call) and checks every gradient
a backward returns. The first NaN raises PyTorch's RuntimeError, "Function 'SqrtBackward0'
returned nan values in its 0th output.", after a warning that shows the forward traceback
of that node. Like PyTorch it checks for NaN only (an inf may be legitimate, e.g. log(0)).

It costs a stack capture per op and a scan of every gradient, so it is for debugging only;
when off it costs nothing beyond the hook-list check every op already makes. Unlike
PyTorch's (thread-local), the mode is global, as every FunctionHook is.
"""
from __future__ import annotations

import os
import traceback
import warnings

from . import function_hooks
from .function_hooks import FunctionHook

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OP_MACHINERY = tuple(os.path.join(_PACKAGE, part) for part in
                      ("autograd" + os.sep, "ops" + os.sep, "tensor_api.py", "hooks.py"))
"""Frames in these files are how an op runs, not who called it: a trace ends before them."""


class AnomalyHook(FunctionHook):
    """Records each node's forward traceback and checks each backward's gradients."""

    check_nan = True

    def forward_postprocess(self, fn, inputs, output, node):
        if node is not None:
            node.trace = forward_trace()

    def backward_postprocess(self, node, grad, input_grads):
        if not self.check_nan:
            return
        for i, g in enumerate(input_grads):
            array = g.tensor._data if hasattr(g, "tensor") else g  # ArrayBox: create_graph
            if array is not None and node.xp.isnan(array).any():
                trace = "".join(traceback.format_list(getattr(node, "trace", [])))
                warnings.warn(f"Error detected in {node.name()}. Traceback of forward call "
                              f"that caused the error:\n{trace}", stacklevel=2)
                raise RuntimeError(f"Function '{node.name()}' returned nan values in its "
                                   f"{i}th output.")


def forward_trace():
    """The Python stack of the current op call, ending at the line that called the op."""
    frames = traceback.extract_stack()
    end = len(frames)
    while end > 0 and frames[end - 1].filename.startswith(_OP_MACHINERY):
        end -= 1
    return frames[:end]


_hook = AnomalyHook()


def is_anomaly_enabled() -> bool:
    return _hook in function_hooks.active


def is_anomaly_check_nan_enabled() -> bool:
    return is_anomaly_enabled() and _hook.check_nan


def _set(mode, check_nan):
    _hook.check_nan = check_nan
    if mode and not is_anomaly_enabled():
        function_hooks.add_hook(_hook)
    elif not mode:
        function_hooks.remove_hook(_hook)


class detect_anomaly:
    """Context manager that turns anomaly mode on inside its block (check_nan=False: record
    traces but do not check gradients)."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self.previous = None

    def __enter__(self):
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)
        self.previous = (is_anomaly_enabled(), _hook.check_nan)
        _set(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _set(*self.previous)


class set_detect_anomaly:
    """Turn anomaly mode on or off: as a call (`set_detect_anomaly(True)`) it stays so; as a
    context manager the previous mode comes back at the end of the block."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.previous = (is_anomaly_enabled(), _hook.check_nan)
        _set(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(*self.previous)
