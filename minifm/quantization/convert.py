"""Turning a float model into a quantized one by swapping its layers
(torch.ao.quantization.quantize_dynamic's module swap)."""
from __future__ import annotations

import copy

from ..nn.linear import Linear
from .modules import DynamicQuantizedLinear, WeightOnlyInt8Linear
from .qtypes import qint8


def _swap(model, types, quantized_cls, inplace):
    """The model with every child module of one of `types` replaced by
    quantized_cls.from_float(child), at any depth."""
    types = set(types or {Linear})
    unsupported = types - {Linear}
    if unsupported:
        raise ValueError(f"quantization: only Linear layers are quantized, not "
                         f"{', '.join(t.__name__ for t in unsupported)}")
    if not inplace:
        model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in types:
                setattr(parent, name, quantized_cls.from_float(child))
    return model


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    """The model with its Linear layers (qconfig_spec: a set of types, {Linear} by
    default) dynamically quantized to int8. As in PyTorch, the model's own class is
    never swapped, only its descendants; the copy is a new model unless inplace."""
    if dtype is not qint8:
        raise ValueError(f"quantize_dynamic: only dtype=minifm.qint8 is supported, got {dtype}")
    if mapping is not None:
        raise ValueError("quantize_dynamic: a custom mapping is not supported")
    return _swap(model, qconfig_spec, DynamicQuantizedLinear, inplace)


def quantize_weight_only(model, qconfig_spec=None, inplace=False):
    """The model with its Linear layers storing int8 weights, computing in float32
    (weight-only int8: a quarter of the weight memory, for generation)."""
    return _swap(model, qconfig_spec, WeightOnlyInt8Linear, inplace)
