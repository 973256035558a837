"""Parameter: a Tensor that a Module registers as one of its learnable weights.

A Parameter is an ordinary leaf Tensor (it shares the array it is given) whose type tells
`Module.__setattr__` to register it, so `module.parameters()` finds it and `state_dict()`
saves it. Ops on a Parameter return plain Tensors.
"""
from __future__ import annotations

from ..creation import empty
from ..tensor import Tensor


class Parameter(Tensor):
    """Parameter(data=None, requires_grad=True): wrap `data` (a Tensor) without copying."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        super().__init__(data._data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        # copy.deepcopy and pickle rebuild a Parameter from its array and flag.
        return (_rebuild_parameter, (self._data, self.requires_grad))


def _rebuild_parameter(array, requires_grad):
    return Parameter(Tensor(array), requires_grad=requires_grad)
