"""Dimension and size arguments as PyTorch accepts them, normalized in one place.

`normalize_dims` turns a `dim` argument (None, an int or a sequence, negative allowed)
into sorted non-negative axes; `size_args` accepts both f(2, 3) and f((2, 3)).
"""
from __future__ import annotations

import numpy as np

_ALL_AXES = [tuple(range(ndim)) for ndim in range(33)]  # dim=None, made once per ndim


def normalize_dims(op, dim, ndim):
    """dim (None, int or sequence) as a sorted tuple of non-negative axes; `op` names the
    caller in errors. A 0-d tensor accepts dim 0 and -1, as in PyTorch."""
    if dim is None:
        return _ALL_AXES[ndim] if ndim < 33 else tuple(range(ndim))
    if dim.__class__ is int and -ndim <= dim < ndim:  # the common case, checked inline
        return (dim % ndim,)
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    bound = max(ndim, 1)
    out = []
    for d in dims:
        if not -bound <= d < bound:
            raise IndexError(f"{op}: dimension {d} is out of range for a tensor of {ndim} dimensions")
        out.append(d % bound)
    if len(set(out)) != len(out):  # a RuntimeError, as PyTorch's
        d = next(d for d in out if out.count(d) > 1)
        raise RuntimeError(f"{op}: dim {d} appears multiple times in the list of dims {dim}")
    return tuple(sorted(out)) if ndim else ()


def size_args(args):
    """The sizes of f(2, 3) or f((2, 3)) or f([2, 3]) as a tuple."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)
