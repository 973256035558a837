"""exp for the Numba CPU kernels, as arithmetic that LLVM vectorizes.

Numba compiles math.exp / np.exp on a scalar to a call into libm per element, which stops
the loop around it from being vectorized. The kernels (attention, softmax, GELU) instead
fill a row with exponents and call exp_inplace on it:

    exp(x) = 2^n exp(r),  n = round(x / ln 2),  |r| <= ln(2) / 2

exp(r) is a Taylor polynomial, of degree 13 in float64 and 7 in float32: on that interval
their relative truncation errors are below 6e-18 and 7.3e-9, under each type's rounding
(degree 6 would give 1.2e-7 in float32, about one ulp). ln 2 is split into a short high
part and a low part (Cody and Waite) so that r = x - n ln 2 is computed without
cancellation. 2^n is built directly as a float's bits, n + bias in the exponent field, and
reinterpreted as a float by float_from_bits, a bitcast that LLVM vectorizes like any other
lane operation. (Before that, 2^n was added to the result's exponent field through an
integer view of the array, in a second pass over it and a scratch row of exponents: with
one pass, softmax, log_softmax and GELU forward + backward take 0.74-0.88x the time they
took, `python benchmarks/compare_kernels.py 24a5aaa`.)
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440054690583e-4
_POLY = [1.0 / math.factorial(i) for i in range(13, -1, -1)]  # Horner order
# Below these exp leaves the normal range: the result is taken as exactly 0.
_EXP_MIN = {np.dtype(np.float32): -87.0, np.dtype(np.float64): -708.0}

DTYPES = tuple(_EXP_MIN)  # the float dtypes exp_inplace computes in

# The integer type of each float's width, to reach its bits through a view.
INT_VIEW = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def exp_constants(dtype):
    """The constants of exp_inplace in the working dtype, so a float32 kernel stays in
    float32 arithmetic (a float64 literal would promote every lane to float64)."""
    return np.array([_LOG2E, _LN2_HI, _LN2_LO, _EXP_MIN[dtype], 0.5] + _POLY, dtype=dtype)


@intrinsic
def float_from_bits(typingctx, bits):
    """The float whose bit pattern is the integer `bits`: int32 -> float32, int64 ->
    float64 (C++'s std::bit_cast). NumPy can only do this to a whole array, by a view."""
    floats = {types.int32: (types.float32, ir.FloatType()),
              types.int64: (types.float64, ir.DoubleType())}
    if bits not in floats:
        return None
    result, llvm_type = floats[bits]

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)
    return result(bits), codegen


@njit(cache=True, fastmath={"contract"})
def exp_inplace(x, c):
    """x[i] = exp(x[i]) in place, for x up to 1 (the kernels pass x <= 0: scores minus
    their max or their log-sum-exp, and GELU's arguments, at most a few 1e-8); 0 where the
    result would leave the normal range, so exp(-inf) = 0; NaN for NaN.
    c = exp_constants(x.dtype)."""
    # Constants in locals: read from c inside the loop, they could alias x for all LLVM
    # knows, and the loop would not be vectorized.
    log2e, ln2_hi, ln2_lo, lowest, half = c[0], c[1], c[2], c[3], c[4]
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = c[5:]
    zero = half - half  # 0 in x's dtype
    for i in range(x.shape[0]):
        y = max(x[i], lowest)
        t = np.floor(y * log2e + half)
        r = (y - t * ln2_hi) - t * ln2_lo
        normal = y > lowest           # False for NaN: p is NaN then, and left as it is
        # 2^n as a float: n + bias in the exponent field (n >= -125 / -1021 above lowest,
        # so the field stays normal). The integers keep x's width: int64 lanes would halve
        # the float32 loop's vector.
        if x.itemsize == 4:
            p = ((((((c7 * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
            n = np.int32(t) if normal else np.int32(0)
            scale = float_from_bits(np.int32((n + 127) << 23))
        else:
            p = ((((((((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7)
                       * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
            n = np.int64(t) if normal else np.int64(0)
            scale = float_from_bits(np.int64((n + 1023) << 52))
        x[i] = p * scale if normal or y != y else zero
