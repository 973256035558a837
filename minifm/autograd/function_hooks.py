"""Function hooks: observers of every op's forward and backward (Chainer's FunctionHook).

The profiler and anomaly mode are built on them. While no hook is active, an op pays one
check of an empty list, so they cost nothing when unused. A hook is active inside its
`with` block (or between `add_hook` and `remove_hook`); hooks are global, not per thread.
"""
from __future__ import annotations

active = []
"""The hooks now observing ops, in the order they were added (read on every op)."""


class FunctionHook:
    """Subclass and override what you need. `fn` is the Function class, `inputs` the input
    Tensors, `output` the output Tensor, `node` the recorded Node (None when nothing was
    recorded), `grad` the gradient arriving at a node and `input_grads` the gradients its
    backward returned (raw arrays, or Tensors under create_graph)."""

    def forward_preprocess(self, fn, inputs):
        pass

    def forward_postprocess(self, fn, inputs, output, node):
        pass

    def backward_preprocess(self, node, grad):
        pass

    def backward_postprocess(self, node, grad, input_grads):
        pass

    def __enter__(self):
        add_hook(self)
        return self

    def __exit__(self, *exc):
        remove_hook(self)


def add_hook(hook: FunctionHook):
    active.append(hook)


def remove_hook(hook: FunctionHook):
    if hook in active:
        active.remove(hook)
