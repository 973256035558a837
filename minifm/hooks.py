"""Hook machinery shared by tensors and modules (PyTorch's torch/utils/hooks.py).

- `RemovableHandle`: what every `register_*hook` returns; `.remove()` takes the hook off.
- `BackwardHook`: how a Module's full backward hooks see the gradients of its inputs and
  outputs. Like PyTorch, it passes the module's inputs and outputs through identity
  Functions (`BackwardHookFunction`) whose backward calls the hooks: the outputs' node runs
  first in backward and sees grad_output, the inputs' node runs last and sees grad_input.

A minifm Function has one output, so "one node for several tensors" is built by packing
them: `BackwardHookFunction` concatenates the group into one flat array, and one
`BackwardHookUnpack` per tensor cuts its piece out again. The engine runs a node once with
the sum of its consumers' gradients, so the packed node's backward sees the gradients of
the whole group at once, as PyTorch's multi-output BackwardHookFunction does.
"""
from __future__ import annotations

import math
import warnings

from .autograd import Function, is_grad_enabled
from .ops.array_box import ArrayBox, box, unbox
from .tensor import Tensor


class RemovableHandle:
    """What register_*hook returns: `.remove()` takes the hook off again (a second remove
    does nothing); `with handle:` removes it at the end of the block."""

    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(hooks: list, hook, prepend=False) -> RemovableHandle:
    """Put `hook` last in `hooks` (first when prepend) and return its handle."""
    hooks.insert(0, hook) if prepend else hooks.append(hook)
    return RemovableHandle(hooks, hook)


# ----------------------------------------------------------------------------- identity nodes
class BackwardHookFunction(Function):
    """Identity on a group of tensors, packed into one flat array. Its backward cuts the
    incoming gradient into one gradient per tensor and hands them, as Tensors, to
    `on_grads(grads) -> grads`, which may replace them (None: no gradient). Under
    create_graph the gradient comes boxed (ops/array_box.py) and goes back boxed."""

    node_name = "BackwardHookFunctionBackward"

    @staticmethod
    def forward(ctx, *arrays, on_grads):
        ctx.metas = [(a.shape, a.dtype) for a in arrays]
        ctx.on_grads = on_grads
        return ctx.xp.concatenate([a.ravel() for a in arrays])

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for shape, _ in ctx.metas:
            size = math.prod(shape)
            grads.append(unbox(grad[start:start + size].reshape(shape), ctx.device))
            start += size
        boxed = isinstance(grad, ArrayBox)
        return tuple(None if g is None else box(g) if boxed else g._data
                     for g in ctx.on_grads(tuple(grads)))


class BackwardHookUnpack(Function):
    """One tensor's piece of a packed group (a copy, so that in-place ops on it stay
    local)."""

    @staticmethod
    def forward(ctx, packed, start, shape, dtype):
        size = math.prod(shape)
        ctx.span, ctx.packed_size = (start, start + size), packed.size
        return packed[start:start + size].reshape(shape).astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        packed = ctx.xp.zeros(ctx.packed_size, grad.dtype)
        packed[ctx.span[0]:ctx.span[1]] = grad.reshape(-1)
        return packed


def _through_identity(values, on_grads):
    """`values` with every Tensor that requires grad replaced by an identity copy whose
    gradients go to `on_grads`; also the positions replaced (None when there is none)."""
    index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    if not (index and is_grad_enabled()):
        return values, None
    tensors = [values[i] for i in index]
    packed = BackwardHookFunction.apply(*tensors, on_grads=on_grads)
    out, start = list(values), 0
    for i, t in zip(index, tensors):
        out[i] = BackwardHookUnpack.apply(packed, start=start, shape=t.shape, dtype=t.dtype)
        start += t.numel()
    return tuple(out), index


# ----------------------------------------------------------------------------- the module side
class BackwardHook:
    """A module's full backward hooks and backward pre-hooks for one forward call.

    `setup_input_hook(args)` wraps the positional Tensor inputs, `setup_output_hook(result)`
    the outputs. In backward: grad_output arrives first (the pre-hooks may replace it), then
    grad_input (the full hooks see it with grad_output and may replace it). Both are tuples
    with one entry per positional argument / output, None where no gradient flows.
    """

    def __init__(self, module, user_hooks, user_pre_hooks):
        self.module = module
        self.user_hooks, self.user_pre_hooks = user_hooks, user_pre_hooks
        self.grad_outputs = None
        self.n_inputs = self.n_outputs = 0
        self.input_index = self.output_index = None

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        args, self.input_index = _through_identity(args, self._on_grad_input)
        return args

    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        outputs = result if is_tuple else (result,)
        self.n_outputs = len(outputs)
        outputs, self.output_index = _through_identity(outputs, self._on_grad_output)
        return outputs if is_tuple else outputs[0]

    def _on_grad_output(self, grads):
        self.grad_outputs = _with_none(self.output_index, grads, self.n_outputs)
        for hook in self.user_pre_hooks:
            result = hook(self.module, self.grad_outputs)
            if result is None:
                continue
            if len(result) != len(self.grad_outputs):
                raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                   f"grad_output, got {len(result)}, but expected "
                                   f"{len(self.grad_outputs)}")
            self.grad_outputs = tuple(result)
        grad_outputs = self.grad_outputs
        if self.input_index is None:  # no input needs a gradient: the full hooks run now
            warnings.warn("Full backward hook is firing when gradients are computed with "
                          "respect to module outputs since no inputs require gradients. See "
                          "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                          "#torch.nn.Module.register_full_backward_hook for more details.",
                          stacklevel=2)
            for hook in self.user_hooks:
                result = hook(self.module, (None,) * self.n_inputs, grad_outputs)
                if result is not None and any(g is not None for g in result):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
            self.grad_outputs = None
        return [grad_outputs[i] for i in self.output_index]

    def _on_grad_input(self, grads):
        if self.grad_outputs is None:  # the gradient did not pass through the outputs
            return grads
        grad_input = _with_none(self.input_index, grads, self.n_inputs)
        for hook in self.user_hooks:
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is None:
                continue
            if len(result) != len(grad_input):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(result)}, but expected {len(grad_input)}")
            grad_input = tuple(result)
        self.grad_outputs = None
        return [grad_input[i] for i in self.input_index]


def _with_none(index, values, size):
    """A tuple of `size` entries: `values` at the positions `index`, None everywhere else."""
    out = [None] * size
    for i, value in zip(index, values):
        out[i] = value
    return tuple(out)
