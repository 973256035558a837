"""Quantized Linear layers for inference (no autograd; CPU arrays).

DynamicQuantizedLinear is PyTorch's torch.ao.nn.quantized.dynamic.Linear: int8 weights
(per output channel, symmetric), and at every call the input batch is quantized to uint8
(per tensor, affine: its own scale and zero point), multiplied in integers with int32
sums (int8_matmul), and the sums are scaled back to float32:

    y[m, n] = s_x * s_w[n] * sum_k (q_x[m, k] - z_x) q_w[n, k] + bias[n]

WeightOnlyInt8Linear keeps the int8 weights and their scales but computes in float32: it
dequantizes the weight a tile of output channels at a time and multiplies each tile with
BLAS, so a model's weights take a quarter of the memory while only one tile of float32
weight exists at once (what LLM inference libraries call weight-only int8).

Both keep their state in buffers, so state_dict holds "weight" (int8), "weight_scale"
(float32, one per output channel) and "bias" (float32), and minifm.save/load store them
in safetensors as they are.
"""
from __future__ import annotations

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor
from .int8_matmul import int8_matmul
from .qtypes import quantize_activation, quantize_weight


class _Int8WeightLinear(Module):
    """The state both layers share, made from a float Linear (`from_float`)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", Tensor(np.zeros((out_features, in_features), np.int8)))
        self.register_buffer("weight_scale", Tensor(np.ones(out_features, np.float32)))
        self.register_buffer("bias", Tensor(np.zeros(out_features, np.float32)) if bias
                             else None)

    @classmethod
    def from_float(cls, linear):
        """The quantized twin of a float Linear (a pruned one's zeros stay zero)."""
        if linear.weight.device.type != "cpu":
            raise ValueError(f"{cls.__name__}: quantized layers run on the CPU; move the "
                             f"model there first (got {linear.weight.device})")
        module = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = quantize_weight(linear.weight.detach().numpy().astype(np.float32))
        module.weight._data[...] = q
        module.weight_scale._data[...] = scale
        if linear.bias is not None:
            module.bias._data[...] = linear.bias.detach().numpy()
        return module

    def _apply_rows(self, input, rows_fn):
        """Run rows_fn on the input flattened to (rows, in_features); add the bias and
        restore the leading dimensions."""
        x = input._data.reshape(-1, self.in_features).astype(np.float32, copy=False)
        y = rows_fn(x)
        if self.bias is not None:
            y += self.bias._data
        return Tensor._make(y.reshape(*input.shape[:-1], self.out_features), input.device)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype=minifm.qint8, qscheme=per_channel_symmetric")


class DynamicQuantizedLinear(_Int8WeightLinear):
    """Linear with int8 weights and activations quantized per batch at run time."""

    def forward(self, input):
        def rows(x):
            q, scale, zero_point = quantize_activation(x)
            acc = int8_matmul(q, zero_point, self.weight._data)
            return acc.astype(np.float32) * (np.float32(scale) * self.weight_scale._data)
        return self._apply_rows(input, rows)


class WeightOnlyInt8Linear(_Int8WeightLinear):
    """Linear with int8 weights dequantized TILE output channels at a time."""

    TILE = 256

    def forward(self, input):
        def rows(x):
            out = np.empty((x.shape[0], self.out_features), np.float32)
            q, scale = self.weight._data, self.weight_scale._data
            for start in range(0, self.out_features, self.TILE):
                stop = start + self.TILE
                tile = q[start:stop].astype(np.float32) * scale[start:stop, None]
                np.matmul(x, tile.T, out=out[:, start:stop])
            return out
        return self._apply_rows(input, rows)
