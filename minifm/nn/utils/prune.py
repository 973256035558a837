"""Pruning: zero out weights by a rule, and keep them zero while training
(PyTorch's torch.nn.utils.prune, with its functions, classes and semantics).

Pruning `name` ("weight") of a module does not overwrite the weight. It re-registers it:

    module.weight_orig    the Parameter, unchanged: optimizers keep training it
    module.weight_mask    a buffer of 0s and 1s (saved in the state_dict)
    module.weight         a plain attribute, weight_mask * weight_orig, recomputed by a
                          forward pre-hook (the pruning method itself) before every forward

so the gradient reaching weight_orig is masked too, and a pruned entry stays zero in
`module.weight` through any number of optimizer steps. `remove(module, name)` makes the
pruning permanent: weight = weight_orig * weight_mask becomes the Parameter again, and the
hook, the mask and weight_orig are gone. The state_dict keys (weight_orig, weight_mask)
are PyTorch's.

Pruning the same tensor again composes the masks as PyTorch's PruningContainer does: the
new method sees only what is still unpruned (the surviving entries, for an unstructured
method; the channels not yet wholly zero, for a structured one), so `amount=0.5` twice
leaves a quarter of the weights. `amount` is a fraction of those (a float in [0, 1],
rounded to a count with Python's round) or a count (an int).

Masks are computed on the tensors' arrays with no autograd: ranking and selecting are not
differentiable, and the mask is a constant of the forward.
"""
from __future__ import annotations

import abc
import numbers

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import rand_array
from ...tensor import Tensor
from .convert_parameters import parameters_to_vector


# ----------------------------------------------------------------------------- helpers
def _validate_amount_init(amount):
    """amount must be a count (int >= 0) or a fraction (float in [0, 1])."""
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if ((isinstance(amount, numbers.Integral) and amount < 0)
            or (not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or "
                         "a non-negative integer")


def _nparams_toprune(amount, tensor_size):
    """How many of `tensor_size` entries (or channels) `amount` prunes."""
    if isinstance(amount, numbers.Integral):
        if amount > tensor_size:
            raise ValueError(f"amount={amount} should be smaller than the number of "
                             f"parameters to prune={tensor_size}")
        return int(amount)
    return round(amount * tensor_size)


def _check_structured(t):
    if t.ndim <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. "
                         f"Found tensor of shape {tuple(t.shape)} with {t.ndim} dims")


def _smallest(xp, scores, k):
    """Indices of the k smallest entries of the 1-D array `scores` (torch.topk with
    largest=False, as a set)."""
    return xp.argpartition(scores, k - 1)[:k]


def _as_mask(array, like):
    """A mask Tensor holding `array`, on `like`'s device."""
    return Tensor._make(array, like.device)


def _ones_like(t):
    """The mask that prunes nothing."""
    return _as_mask(backend.array_module(t.device).ones_like(t._data), t)


def _channel_mask(t, dim, keep):
    """A mask of t's shape with 1 on the channels `keep` (indices or booleans) along dim."""
    xp = backend.array_module(t.device)
    mask = xp.zeros(t.shape, dtype=t.dtype)
    index = [slice(None)] * t.ndim
    index[dim] = keep
    mask[tuple(index)] = 1
    return mask


# ----------------------------------------------------------------------------- the base class
class BasePruningMethod(abc.ABC):
    """A rule that computes a mask for a tensor (`compute_mask`), and the forward pre-hook
    that applies it (`__call__`).

    PRUNING_TYPE says what an iterative application acts on: "unstructured" (single
    entries), "structured" (whole channels along `dim`) or "global" (the whole tensor).
    """

    PRUNING_TYPE: str
    _tensor_name: str | None = None

    def __call__(self, module, inputs):
        """The forward pre-hook: recompute module.<name> from <name>_orig and <name>_mask."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abc.abstractmethod
    def compute_mask(self, t, default_mask):
        """The mask for tensor t, given the mask already applied to it (default_mask):
        entries zero there stay zero."""

    def apply_mask(self, module):
        """<name>_mask * <name>_orig: the pruned tensor (differentiable in <name>_orig)."""
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune module.<name> with cls(*args, **kwargs), ranking entries by
        importance_scores (default: the tensor itself). A tensor pruned before gets a
        PruningContainer holding every method applied to it, and its masks compose. If
        the mask cannot be computed (a bad amount), the module is left as it was."""
        old_method = next((hook for hook, _ in module._forward_pre_hooks
                           if isinstance(hook, BasePruningMethod) and hook._tensor_name == name),
                          None)
        method = cls(*args, **kwargs)
        method._tensor_name = name
        orig = getattr(module, name)
        if importance_scores is None:
            importance_scores = orig
        elif tuple(importance_scores.shape) != tuple(orig.shape):
            raise ValueError(f"importance_scores should have the same shape as parameter "
                             f"{name} of {module}")
        with no_grad():
            if old_method is None:
                default_mask = _ones_like(orig)
            else:
                container = old_method if isinstance(old_method, PruningContainer) \
                    else PruningContainer(old_method)
                container.add_pruning_method(method)
                default_mask = getattr(module, name + "_mask").detach().clone()
            try:
                mask = (method if old_method is None else container).compute_mask(
                    importance_scores.detach(), default_mask=default_mask)
            except Exception:
                if old_method is not None:
                    container._pruning_methods = container._pruning_methods[:-1]
                raise
        if old_method is None:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
        else:
            _remove_hook(module, old_method)
            method = container
        module.register_buffer(name + "_mask", mask)
        setattr(module, name, method.apply_mask(module))
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """t with this method's mask applied, without touching any module."""
        scores = t if importance_scores is None else importance_scores
        with no_grad():
            mask = self.compute_mask(scores.detach(), default_mask if default_mask is not None
                                     else _ones_like(t))
        return t * mask

    def remove(self, module):
        """Make the pruning permanent: <name> = <name>_orig * <name>_mask as a Parameter
        (the same Parameter object as <name>_orig, so optimizers holding it still work)."""
        name = self._tensor_name
        with no_grad():
            weight = self.apply_mask(module)
        if name in module.__dict__:
            object.__delattr__(module, name)
        orig = module._parameters.pop(name + "_orig")
        orig._data = weight._data
        del module._buffers[name + "_mask"]
        setattr(module, name, orig)


def _remove_hook(module, method):
    """Take the pruning method `method` off module's forward pre-hooks."""
    module._forward_pre_hooks[:] = [entry for entry in module._forward_pre_hooks
                                    if entry[0] is not method]


# ----------------------------------------------------------------------------- iterative pruning
class PruningContainer(BasePruningMethod):
    """The methods applied, in turn, to one tensor; the last one's mask is computed on
    what the earlier ones left (PyTorch's _combine_masks)."""

    def __init__(self, *methods):
        self._pruning_methods = ()
        for method in methods:
            self.add_pruning_method(method)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name is None:
            self._tensor_name = method._tensor_name
        elif method is not None and self._tensor_name != method._tensor_name:
            raise ValueError("Can only add pruning methods acting on the parameter named "
                             f"'{self._tensor_name}' to PruningContainer. Found "
                             f"'{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        """Run the newest method on the part of t still unpruned and write its verdict
        into a copy of default_mask."""
        method = self._pruning_methods[-1]
        mask = default_mask._data
        if method.PRUNING_TYPE == "unstructured":
            index = mask == 1                          # the surviving entries, as a 1-D list
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to "
                                     "have the attribute `dim` defined.")
            dim = method.dim % t.ndim
            others = tuple(d for d in range(t.ndim) if d != dim)
            index = [slice(None)] * t.ndim
            index[dim] = mask.sum(axis=others) != 0    # the channels not wholly pruned
            index = tuple(index)
        elif method.PRUNING_TYPE == "global":
            index = (slice(None),) * t.ndim
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        partial = method.compute_mask(_as_mask(t._data[index], t),
                                      default_mask=_as_mask(mask[index], t))
        new_mask = mask.copy()
        new_mask[index] = partial._data.astype(new_mask.dtype, copy=False)
        return _as_mask(new_mask, t)


# ----------------------------------------------------------------------------- the methods
class Identity(BasePruningMethod):
    """Prunes nothing: the mask of ones (a way to get the weight_orig/weight_mask layout)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask



def _unstructured_mask(amount, t, default_mask, scores):
    """default_mask with the `amount` entries of lowest score() zeroed (scores are drawn
    only when something is pruned, so a zero amount leaves the generator untouched)."""
    n = _nparams_toprune(amount, t.numel())
    mask = default_mask._data.copy()
    if n:
        mask.reshape(-1)[_smallest(backend.array_module(t.device), scores(), n)] = 0
    return _as_mask(mask, t)


class RandomUnstructured(BasePruningMethod):
    """Prunes `amount` entries chosen uniformly at random (minifm's default generator, so
    minifm.manual_seed makes it repeatable; the draws are not PyTorch's)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _unstructured_mask(self.amount, t, default_mask,
                                  lambda: rand_array((t.numel(),), backend.float32, t.device))



class L1Unstructured(BasePruningMethod):
    """Prunes the `amount` entries of smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        xp = backend.array_module(t.device)
        return _unstructured_mask(self.amount, t, default_mask,
                                  lambda: xp.abs(t._data).reshape(-1))



class RandomStructured(BasePruningMethod):
    """Prunes `amount` whole channels along `dim`, chosen uniformly at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_amount_init(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        _check_structured(t)
        channels = t.shape[self.dim]
        n = _nparams_toprune(self.amount, channels)
        if n == 0:
            return default_mask
        xp = backend.array_module(t.device)
        keep = xp.ones(channels, dtype=bool)
        keep[_smallest(xp, rand_array((channels,), backend.float32, t.device), n)] = False
        return _as_mask(_channel_mask(t, self.dim, keep) * default_mask._data, t)



class LnStructured(BasePruningMethod):
    """Prunes the `amount` channels along `dim` of smallest L`n` norm (n: an int, inf,
    -inf, or "fro" for 2)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        _check_structured(t)
        channels = t.shape[self.dim]
        n = _nparams_toprune(self.amount, channels)
        if n == 0:
            return default_mask
        xp = backend.array_module(t.device)
        dim = self.dim % t.ndim
        flat = xp.moveaxis(t._data, dim, 0).reshape(channels, -1)
        norms = xp.linalg.norm(flat, ord=2 if self.n == "fro" else self.n, axis=1)
        keep = xp.ones(channels, dtype=bool)
        keep[_smallest(xp, norms, n)] = False
        return _as_mask(_channel_mask(t, dim, keep) * default_mask._data, t)



class CustomFromMask(BasePruningMethod):
    """Prunes where a given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise ValueError(f"custom mask of shape {tuple(self.mask.shape)} for a tensor of "
                             f"shape {tuple(default_mask.shape)}")
        mask = self.mask._data if isinstance(self.mask, Tensor) else np.asarray(self.mask)
        return _as_mask(default_mask._data * mask.astype(default_mask.dtype), t)



# ----------------------------------------------------------------------------- the functions
def identity(module, name):
    """Prune nothing, but give module.<name> the pruned layout (<name>_orig, <name>_mask)."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prune `amount` random entries of module.<name>."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the `amount` entries of module.<name> of smallest absolute value."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prune `amount` random channels of module.<name> along dim."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the `amount` channels of module.<name> along dim of smallest L`n` norm (for a
    Linear's weight, dim=0 removes output neurons, dim=1 inputs)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    """Prune module.<name> where `mask` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune the (module, name) pairs in `parameters` together: rank all their entries as
    one vector (with `pruning_method`, an unstructured class, e.g. L1Unstructured) and
    give each tensor its slice of the one mask, so layers lose different fractions.
    importance_scores: {(module, name): tensor}, defaulting to each tensor itself."""
    parameters = list(parameters)
    importance_scores = importance_scores or {}
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")
    method._tensor_name = "temp"
    container = PruningContainer(method)
    with no_grad():
        scores = parameters_to_vector([importance_scores.get((m, n), getattr(m, n))
                                       for m, n in parameters])
        default_mask = parameters_to_vector([getattr(m, n + "_mask") if hasattr(m, n + "_mask")
                                             else _ones_like(getattr(m, n))
                                             for m, n in parameters])
        final_mask = container.compute_mask(scores, default_mask)
    start = 0
    for module, name in parameters:
        param = getattr(module, name)
        mask = final_mask._data[start:start + param.numel()].reshape(param.shape)
        custom_from_mask(module, name, _as_mask(mask, param))
        start += param.numel()


def remove(module, name):
    """Make the pruning of module.<name> permanent; an error if it is not pruned."""
    for hook, _ in module._forward_pre_hooks:
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            _remove_hook(module, hook)
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning "
                     "can be removed")


def is_pruned(module):
    """Whether any module in module's tree has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for sub in module.modules() for hook, _ in sub._forward_pre_hooks)
