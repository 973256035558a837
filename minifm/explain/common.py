"""The plumbing every attribution method shares, as Captum's `_utils.common` does it.

- Inputs are a Tensor or a tuple of Tensors, and results come back in the same form.
- `additional_forward_args` are passed to the forward function after the inputs.
- `target` picks, in each example's output, the one number to explain: None (the output
  is already one number per example), an int (a column), a tuple (an index into the
  dimensions after the batch), or one int or tuple per example (a list, or a 1-D Tensor).
- Methods that evaluate many variations of a batch at once (one per integration step,
  per noise sample, per occluded window) stack them along the batch dimension and repeat
  targets and tensor arguments to match: `repeat` puts copies of the whole batch one after
  another, `repeat_interleave` puts the copies of each example together.
"""
from __future__ import annotations

import numbers

from ..autograd import enable_grad, grad
from ..creation import full_like, tensor
from ..ops.index import gather
from ..ops.shape import cat, stack
from ..tensor import Tensor


def as_tuple(inputs):
    """inputs as a tuple of Tensors."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def same_form(was_tuple, values):
    """values (a tuple) as the caller gave the inputs: a tuple, or its one Tensor."""
    return tuple(values) if was_tuple else values[0]


def forward_args(additional_forward_args):
    """The extra positional arguments of the forward function, as a tuple."""
    if additional_forward_args is None:
        return ()
    return as_tuple(additional_forward_args)


def run_forward(forward_func, inputs, target=None, additional_forward_args=None):
    """forward_func(*inputs, *additional_forward_args), narrowed to the target."""
    output = forward_func(*as_tuple(inputs), *forward_args(additional_forward_args))
    return select_targets(output, target)


def select_targets(output, target):
    """The target's entry of each example's output (see the module docstring)."""
    if target is None:
        return output
    if isinstance(target, Tensor):
        if target.numel() == 1:
            target = int(target.item())
        else:
            target = target.tolist()
    if isinstance(target, (numbers.Integral, tuple)):
        index = (int(target),) if isinstance(target, numbers.Integral) else target
        if len(index) > output.dim() - 1:
            raise ValueError(f"target {target} cannot index the output of shape "
                             f"{tuple(output.shape)} (its first dimension is the batch)")
        return output[(slice(None), *index)]
    if not isinstance(target, list) or len(target) != output.shape[0]:
        raise ValueError(f"target must be None, an int, a tuple, or one per example "
                         f"({output.shape[0]}), got {target!r}")
    if isinstance(target[0], tuple):
        return stack([output[(i, *t)] for i, t in enumerate(target)])
    if output.dim() != 2:
        raise ValueError(f"one int target per example needs 2-D outputs, got shape "
                         f"{tuple(output.shape)}")
    index = tensor([[int(t)] for t in target], device=output.device)
    return gather(output, 1, index).squeeze(-1)


def gradients(forward_func, inputs, target=None, additional_forward_args=None):
    """The gradient, with respect to each input, of the targets' sum over the batch: each
    example's own gradient, since examples do not mix in the forward pass. The inputs
    are detached first, so the caller's tensors and graph are left alone."""
    inputs = tuple(x.detach().requires_grad_() for x in inputs)
    with enable_grad():
        outputs = run_forward(forward_func, inputs, target, additional_forward_args)
        if outputs.dim() == 0 or outputs[0].numel() != 1:
            raise ValueError(f"the forward function gives {tuple(outputs.shape)} outputs: "
                             "give a target that picks one number per example")
        return grad(outputs.sum(), inputs)


def format_baselines(baselines, inputs):
    """One baseline per input: a number, or a Tensor of the input's shape (or of one
    example, broadcast over the batch); None means zeros."""
    if baselines is None:
        return (0.0,) * len(inputs)
    baselines = as_tuple(baselines)
    if len(baselines) != len(inputs):
        raise ValueError(f"{len(baselines)} baselines for {len(inputs)} inputs")
    for b in baselines:
        if not isinstance(b, (Tensor, numbers.Real)):
            raise TypeError(f"a baseline must be a Tensor or a number, got {type(b).__name__}")
    return baselines


def baseline_tensors(baselines, inputs):
    """The baselines as Tensors of their inputs' shapes."""
    return tuple(full_like(x, b) if not isinstance(b, Tensor) else b.expand_as(x)
                 for x, b in zip(inputs, baselines))


def repeat(x, k):
    """k copies of the batch x one after another (torch.cat([x] * k))."""
    return cat([x] * k, dim=0)


def repeat_interleave(x, k):
    """Each example of x k times in a row (x.repeat_interleave(k, dim=0))."""
    shape = tuple(x.shape)
    return x.unsqueeze(1).expand(shape[0], k, *shape[1:]).reshape(shape[0] * k, *shape[1:])


def expand_target(target, k, interleave=False):
    """The target of a batch expanded k times (a single target serves every copy)."""
    if isinstance(target, Tensor) and target.numel() > 1:
        return repeat_interleave(target, k) if interleave else repeat(target, k)
    if isinstance(target, list):
        return [t for t in target for _ in range(k)] if interleave else target * k
    return target


def expand_args(additional_forward_args, k, interleave=False):
    """The extra forward arguments of a batch expanded k times: Tensors with a batch
    dimension are repeated, everything else is passed as is."""
    if additional_forward_args is None:
        return None
    expand = repeat_interleave if interleave else repeat
    return tuple(expand(a, k) if isinstance(a, Tensor) and a.dim() > 0 else a
                 for a in forward_args(additional_forward_args))
