"""Reverse-mode automatic differentiation, one concept per file:

- grad_mode.py  whether ops record a graph (no_grad, enable_grad, set_grad_enabled)
- function.py   Function (an op's forward and backward on raw arrays) and Node (what a
                recorded op leaves in the graph), and the links from views to their base
- engine.py     the backward pass: a pure core (consumer counting, the chain rule) and the
                two ways into it, Tensor.backward and autograd.grad
- function_hooks.py  observers of every op's forward and backward (profiler, anomaly mode)
- anomaly_mode.py  detect_anomaly: which backward made a NaN, and where its op was called
- gradcheck.py  analytic gradients against central finite differences

Start with function.py, then engine.py's `backprop`.
"""
from .anomaly_mode import (
    detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly,
)
from .engine import grad, run_backward, unbroadcast
from .function import Function, Node, live_views, replay_view
from .function_hooks import FunctionHook
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["Function", "Node", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "grad", "run_backward", "unbroadcast", "gradcheck", "gradgradcheck", "GradcheckError",
           "live_views", "replay_view", "FunctionHook", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]
