"""The dtype an op computes in: float16 is computed in float32.

Half precision has an 11-bit significand and tops out at 65504, so a sum over a few
thousand elements, an exp, or a variance in float16 loses most of its digits or
overflows. Reductions, norms, softmax-like ops and losses therefore compute float16
inputs in float32 and cast the result back, as PyTorch does (its CPU kernels accumulate
in float, its `acc_type` of Half). Every other dtype computes in itself.
"""
from __future__ import annotations

import numpy as np


def compute_dtype(dtype):
    """The dtype to compute in for inputs of `dtype`: float32 for float16, else dtype."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype
