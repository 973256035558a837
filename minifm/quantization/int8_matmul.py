"""The integer product at the heart of a dynamically quantized Linear:

    int8_matmul(a, a_zero, b) = (a - a_zero) @ b.T    in int32

a (M, K) uint8 activations with zero point a_zero, b (N, K) int8 weights. The NumPy
reference widens both to int32 and multiplies (NumPy's integer matmul, which has no BLAS
behind it); the Numba kernel (kernels/int8_matmul_cpu.py) computes the same sums, so the
two are exactly equal, not merely close. `kernels.select` picks one, as for every op with
a kernel (MINIFM_INT8_MATMUL_BACKEND=reference|numba|auto).
"""
from __future__ import annotations

import numpy as np

from .. import kernels


def int8_matmul_reference(a, a_zero, b):
    """(a - a_zero) @ b.T with every term in int32."""
    return (a.astype(np.int32) - np.int32(a_zero)) @ b.astype(np.int32).T


def int8_matmul(a, a_zero, b):
    """(a - a_zero) @ b.T in int32, by the kernel `kernels.select` chooses."""
    kernel = kernels.select("int8_matmul", "cpu", dtype_a=a.dtype, dtype_b=b.dtype,
                            k=a.shape[1])
    if kernel is None:
        return int8_matmul_reference(a, a_zero, b)
    return kernel.int8_matmul(a, a_zero, b)
