"""exp for the Numba CPU kernels, as arithmetic that LLVM vectorizes.

Numba compiles math.exp / np.exp on a scalar to a call into libm per element, which stops
the loop around it from being vectorized. The kernels (attention, softmax, GELU) instead
fill a row with exponents and call exp_inplace on it:

    exp(x) = 2^n exp(r),  n = round(x / ln 2),  |r| <= ln(2) / 2

exp(r) is a Taylor polynomial, of degree 13 in float64 and 7 in float32: on that interval
their relative truncation errors are below 6e-18 and 7.3e-9, under each type's rounding
(degree 6 would give 1.2e-7 in float32, about one ulp). ln 2 is split into a short high
part and a low part (Cody and Waite) so that r = x - n ln 2 is computed without
cancellation, and 2^n is added directly to the exponent field of the result.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440054690583e-4
_POLY = [1.0 / math.factorial(i) for i in range(13, -1, -1)]  # Horner order
# Below these exp leaves the normal range: the result is taken as exactly 0.
_EXP_MIN = {np.dtype(np.float32): -87.0, np.dtype(np.float64): -708.0}

# The integer type of each float's width, to reach its exponent bits through a view.
INT_VIEW = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def exp_constants(dtype):
    """The constants of exp_inplace in the working dtype, so a float32 kernel stays in
    float32 arithmetic (a float64 literal would promote every lane to float64)."""
    return np.array([_LOG2E, _LN2_HI, _LN2_LO, _EXP_MIN[dtype], 0.5] + _POLY, dtype=dtype)


@njit(cache=True, fastmath={"contract"})
def exp_inplace(x, x_bits, exponent, c):
    """x[i] = exp(x[i]) in place, for x up to 1 (the kernels pass x <= 0: scores minus
    their max or their log-sum-exp, and GELU's arguments, at most a few 1e-8); 0 where the
    result would leave the normal range, so exp(-inf) = 0; NaN for NaN. x_bits is x viewed
    as integers of the same width (INT_VIEW), exponent an integer scratch row as long as x,
    c = exp_constants(x.dtype)."""
    # Constants in locals: read from c inside the loop, they could alias x for all LLVM
    # knows, and the loop would not be vectorized.
    log2e, ln2_hi, ln2_lo, lowest, half = c[0], c[1], c[2], c[3], c[4]
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = c[5:]
    mantissa_bits = 23 if x.itemsize == 4 else 52
    zero = half - half  # 0 in x's dtype
    for i in range(x.shape[0]):
        y = max(x[i], lowest)
        t = np.floor(y * log2e + half)
        r = (y - t * ln2_hi) - t * ln2_lo
        if x.itemsize == 4:
            p = ((((((c7 * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
        else:
            p = ((((((((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7)
                       * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
        normal = y > lowest           # False for NaN: p is NaN then, and left as it is
        x[i] = p if normal or y != y else 0
        # n, converted by the store to exponent's integer type: with float32 the lanes stay
        # 32 bits wide (an int64 here halved them; float32 exp 16384 values 9.7 -> 7.8 us)
        exponent[i] = t if normal else zero
    # Multiplying p (in [0.7, 1.5)) by 2^n is adding n to its exponent field.
    for i in range(x.shape[0]):
        x_bits[i] += exponent[i] << mantissa_bits
