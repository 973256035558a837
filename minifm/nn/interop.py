"""Load PyTorch weights into a minifm module.

`load_torch_state_dict(module, state_dict)` takes a PyTorch state_dict as it comes: torch
tensors (anything with .numpy(); detached and moved to the host first when it has .detach()
and .cpu()), NumPy arrays or minifm Tensors. Since minifm modules use PyTorch's names,
the keys match when the module trees match; everything that does not is reported at once.
minifm never imports torch for this.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def _to_numpy(key, value):
    if isinstance(value, (np.ndarray, Tensor)):
        return value
    if not hasattr(value, "numpy"):
        raise TypeError(f"load_torch_state_dict: value of {key!r} is a {type(value).__name__}; "
                        "expected a torch tensor, a NumPy array or a minifm Tensor")
    for step in ("detach", "cpu"):
        if hasattr(value, step):
            value = getattr(value, step)()
    try:
        return np.asarray(value.numpy())
    except TypeError as err:  # e.g. torch.bfloat16, which NumPy has no dtype for
        raise TypeError(f"load_torch_state_dict: cannot convert {key!r} "
                        f"(dtype {getattr(value, 'dtype', '?')}) to NumPy: {err}. Convert it "
                        "first, e.g. with .float()") from None


def load_torch_state_dict(module, state_dict, strict=True):
    """Copy a PyTorch state_dict into `module` (values cast to each parameter's dtype and
    device). Returns (missing_keys, unexpected_keys) like Module.load_state_dict, and raises
    its RuntimeError naming every missing, unexpected or mis-shaped key."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"load_torch_state_dict: expected a dict-like state_dict, got "
                        f"{type(state_dict).__name__}")
    arrays = {key: _to_numpy(key, value) for key, value in state_dict.items()}
    return module.load_state_dict(arrays, strict=strict)
