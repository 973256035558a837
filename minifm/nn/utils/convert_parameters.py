"""All parameters as one vector and back (torch.nn.utils.convert_parameters): optimizers
that think in vectors, and global pruning, which ranks every weight of a model at once."""
from __future__ import annotations

from ... import backend
from ...ops.shape import cat
from ...tensor import Tensor
from .clip_grad import _as_list


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one 1-D Tensor (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D `vec` into the parameters' arrays, in place."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D Tensor, got "
                        f"{getattr(vec, 'shape', type(vec).__name__)}")
    parameters = _as_list(parameters)
    needed = sum(p.numel() for p in parameters)
    if vec.numel() != needed:
        raise ValueError(f"vector_to_parameters: vector of {vec.numel()} elements for "
                         f"parameters of {needed} elements")
    offset = 0
    for p in parameters:
        n = p.numel()
        chunk = backend.move_array(vec._data[offset:offset + n], p.device)
        p._data[...] = chunk.reshape(p.shape)
        offset += n
