"""Quantized dtypes and the two ways of mapping floats to 8-bit integers that dynamic
quantization uses (PyTorch's qint8/quint8 and its observers' formulas).

    weights      int8, symmetric, one scale per output channel:
                 q = round(w / s_c),  s_c = max|w[c, :]| / 127,  q in [-127, 127]
    activations  uint8, affine, one scale and zero point per tensor (per batch, at run time):
                 q = round(x / s) + z,  s = (max(x, 0) - min(x, 0)) / 255,  q in [0, 255]

Symmetric weights need no zero point, so the integer product needs only the activation's
(kernels/int8_matmul_cpu.py takes it out of the loop). The range [-127, 127] keeps the
weights symmetric about 0; PyTorch's per-channel observer uses [-128, 127]. Including 0
in the activation range makes 0 exact, so zero padding stays zero. PyTorch's fbgemm
backend quantizes activations to 7 bits (reduce_range, for its VPMADDUBSW instruction);
minifm's kernel sums in int32 with no such limit and keeps all 8.
"""
from __future__ import annotations

import numpy as np


class QuantizedDtype:
    """A quantized dtype: its name and the integer dtype its values are stored in."""

    __slots__ = ("name", "storage")

    def __init__(self, name, storage):
        self.name, self.storage = name, np.dtype(storage)

    def __repr__(self):
        return f"minifm.{self.name}"


qint8 = QuantizedDtype("qint8", np.int8)
quint8 = QuantizedDtype("quint8", np.uint8)


def quantize_weight(w):
    """(int8 array, float32 scales of shape (out,)) of a 2-D float weight (out, in)."""
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_activation(x):
    """(uint8 array, scale, zero point) of a float array, per tensor."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero_point = int(np.clip(round(-low / scale), 0, 255))
    q = np.clip(np.rint(x / np.float32(scale)) + zero_point, 0, 255).astype(np.uint8)
    return q, scale, zero_point
