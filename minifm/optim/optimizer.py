"""Optimizer: the base class of every optimizer (torch.optim.Optimizer).

An optimizer holds its parameters in `param_groups`, a list of dicts: each has 'params'
(a list of leaf Tensors) and one value per hyperparameter, taken from the optimizer's
`defaults` where the group does not set it, so groups can differ (a lower lr for the
embeddings, no weight decay for biases). `state` maps each parameter to its running
buffers (momentum, Adam's moments, the step count).

`step()` visits every parameter that has a gradient and hands it to the subclass's
`_update`, the optimizer's rule for one parameter. Updates work on the raw arrays in place:
they are not recorded by autograd, and a parameter keeps its array (views and tied weights
see the change). Temporaries come from `_scratch`, work arrays reused across parameters and
steps, so once the state exists a step of a large model allocates nothing.

Subclasses accept PyTorch's `foreach` argument (and `fused` where PyTorch has it) so ported
code runs, and ignore it: minifm has one implementation of each rule.

`state_dict()` has PyTorch's layout: {'state': {index: {name: value}}, 'param_groups':
[{..., 'params': [index, ...]}]}, parameters numbered in group order. Values are Tensors and
JSON scalars, so minifm.save / minifm.load round-trip it. As in PyTorch, the state Tensors
in it are the live buffers, not copies: save it before stepping again.
"""
from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from .. import backend
from ..autograd import enable_grad
from ..tensor import Tensor


class Optimizer:
    """Base class: subclasses pass their hyperparameter defaults and define `_update`."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._work = {}
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict):
        """Add a group of parameters, with its own hyperparameters (others from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got a parameter group with duplicate parameters")
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = {**param_group, "params": params}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True):
        """Drop every parameter's gradient (or fill it with zeros, set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad._data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient. `closure`, if given, re-evaluates the
        model and returns the loss (it runs with grad enabled); step returns that loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad._data, self.state[p], group)
        return loss

    def _update(self, param: Tensor, grad, state: dict, group: dict):
        """Apply this optimizer's rule to one parameter: `grad` is the raw gradient array,
        `state` this parameter's buffers (empty at the first step), `group` its hyperparameters."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for _update
    def _scratch(self, param: Tensor, slot: int):
        """A work array of param's shape and dtype, shared by all parameters (one per slot,
        device and dtype) and grown to the largest: an update allocates no temporaries."""
        key = (slot, param.device, param.dtype)
        n = param._data.size
        buffer = self._work.get(key)
        if buffer is None or buffer.size < n:
            buffer = self._work[key] = backend.array_module(param.device).empty(n, param.dtype)
        return buffer[:n].reshape(param._data.shape)

    def _signed_grad(self, param: Tensor, grad, maximize: bool, weight_decay: float = 0):
        """The gradient to descend: negated when maximizing, plus weight_decay * param (L2
        decay folded into the gradient). Written to scratch slot 0, never into `grad`."""
        if not maximize and not weight_decay:
            return grad
        xp = backend.array_module(param.device)
        out = self._scratch(param, 0)
        if weight_decay:
            xp.multiply(param._data, weight_decay, out=out)
            (xp.subtract if maximize else xp.add)(out, grad, out=out)
        else:
            xp.negative(grad, out=out)
        return out

    @staticmethod
    def _zeros_like(param: Tensor) -> Tensor:
        xp = backend.array_module(param.device)
        return Tensor._make(xp.zeros_like(param._data), param.device)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """{'state': {index: buffers}, 'param_groups': [{hyperparameters, 'params': [index]}]}."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(buffers) for p, buffers in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Restore buffers and hyperparameters saved by `state_dict` into this optimizer, whose
        groups must hold as many parameters as the saved ones. Buffers are copied, in each
        parameter's dtype and on its device."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"but the optimizer has {len(self.param_groups)}")
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has "
                                 f"{len(saved['params'])} parameters, but the optimizer's has "
                                 f"{len(group['params'])}")
        by_index = {index: p for group, saved in zip(self.param_groups, saved_groups)
                    for index, p in zip(saved["params"], group["params"])}
        state = defaultdict(dict)
        for index, buffers in state_dict["state"].items():
            if index not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {index}, which "
                                 "none of its parameter groups holds")
            p = by_index[index]
            state[p] = {name: _copy_to_param(value, p) for name, value in buffers.items()}
        self.param_groups = [{**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}),
                              "params": group["params"]}
                             for group, saved in zip(self.param_groups, saved_groups)]
        self.state = state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])


def lerp_(xp, start, end, weight, work):
    """start += weight * (end - start), in place, rounded as PyTorch's lerp_ (which switches
    to end - (1 - weight) (end - start) for weights of 0.5 and more)."""
    xp.subtract(end, start, out=work)
    if weight < 0.5:
        work *= weight
        start += work
    else:
        work *= 1 - weight
        xp.subtract(end, work, out=start)


def _copy_to_param(value, param: Tensor):
    """A saved buffer as a fresh Tensor on param's device, in param's dtype when floating;
    scalars (the step count) as they are."""
    if isinstance(value, Tensor):
        value = value._data
    if not (isinstance(value, np.ndarray) or backend.is_cuda_array(value)):
        return value
    xp = backend.array_module(param.device)
    array = backend.move_array(value, param.device)
    dtype = param.dtype if array.dtype.kind == "f" else array.dtype
    return Tensor._make(xp.array(array, dtype=dtype, copy=True), param.device)
