"""Turning a float model into a quantized one by swapping its layers
(torch.ao.quantization.quantize_dynamic's module swap)."""
from __future__ import annotations

import copy

from ..nn.linear import Linear
from .modules import DynamicQuantizedLinear, WeightOnlyInt8Linear
from .qtypes import qint8


def _swap(model, qconfig_spec, quantized_cls, inplace):
    """The model with its Linear layers that qconfig_spec names replaced by
    quantized_cls.from_float(layer), at any depth. qconfig_spec is a set of module types
    and/or qualified module names ("transformer.h.0.mlp.c_fc"), as in PyTorch; the
    default (None) {Linear} takes every Linear, an empty set none."""
    spec = {Linear} if qconfig_spec is None else set(qconfig_spec)
    types = {t for t in spec if isinstance(t, type)}
    if types - {Linear}:
        raise ValueError(f"quantization: only Linear layers are quantized, not "
                         f"{', '.join(t.__name__ for t in types - {Linear})}")
    if not inplace:
        model = copy.deepcopy(model)
    for prefix, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            if type(child) is Linear and (Linear in types or path in spec):
                setattr(parent, name, quantized_cls.from_float(child))
    return model


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    """The model with its Linear layers (qconfig_spec: a set of types and/or module
    names, {Linear} by default) dynamically quantized to int8. As in PyTorch, the model's own class is
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
