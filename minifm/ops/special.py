"""The error function, its complement and its inverse (exact GELU, torch.erf/erfc/erfinv),
without SciPy.

NumPy has no erf, so minifm evaluates one of two published approximations on whole arrays:
- float64: W. J. Cody's rational Chebyshev approximation ("Rational Chebyshev
  approximations for the error function", Math. Comp. 23, 1969), the one behind SciPy and
  Cephes: about 1e-16 relative error, in three regions of |x|, each a ratio of polynomials;
- float32 (and float16, computed in float32): the Chebyshev fit of erfc from Numerical
  Recipes (2nd ed., section 6.2), fractional error below 1.2e-7, one polynomial and one
  exp for every x. It is about four times faster than Cody's in float32, where Cody's
  extra accuracy would be rounded away (measured max abs error 4e-7 against float64).
Both compute erfc(|x|) directly away from 0, so erfc keeps its relative accuracy in the
tail, where 1 - erf(x) would round to 0.

erfinv starts from M. Giles' single-precision polynomials ("Approximating the erfinv
function", GPU Computing Gems, 2011) and refines them with two Newton steps on erf in
float64, which take the 1e-7 start to float64 accuracy.
"""
from __future__ import annotations

import numpy as np

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1


def _ratio(num_coeffs, den_coeffs, t, last):
    """Cody's nested form: num = (((c[last]*t + c0)*t + c1)...)."""
    num = num_coeffs[last] * t
    den = t
    for a, b in zip(num_coeffs[:last - 1], den_coeffs[:last - 1]):
        num = (num + a) * t
        den = (den + b) * t
    return (num + num_coeffs[last - 1]) / (den + den_coeffs[last - 1])


_NR = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
       -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def erf(xp, x):
    """erf(x) elementwise, in x's floating dtype (float16 is computed in float32)."""
    if x.dtype == np.float64:
        small, erfc_abs = _cody(xp, x)
        return xp.where(xp.abs(x) <= 0.46875, small, xp.sign(x) * (1.0 - erfc_abs))
    x32 = x.astype(np.float32, copy=False)
    return xp.copysign(1.0 - _erfc_abs_float32(xp, x32), x32).astype(x.dtype, copy=False)


def erfc(xp, x):
    """1 - erf(x) elementwise, accurate in the tail; erfc(-x) = 2 - erfc(x)."""
    if x.dtype == np.float64:
        small, erfc_abs = _cody(xp, x)
        return xp.where(xp.abs(x) <= 0.46875, 1.0 - small,
                        xp.where(x < 0, 2.0 - erfc_abs, erfc_abs))
    x32 = x.astype(np.float32, copy=False)
    erfc_abs = _erfc_abs_float32(xp, x32)
    return xp.where(x32 < 0, 2.0 - erfc_abs, erfc_abs).astype(x.dtype, copy=False)


def _erfc_abs_float32(xp, x):
    """erfc(|x|) by the Numerical Recipes fit."""
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = xp.full_like(t, _NR[-1])
    for c in _NR[-2::-1]:  # Horner's rule, in place
        poly *= t
        poly += c
    poly -= z * z
    with np.errstate(under="ignore"):
        return t * xp.exp(poly)


def _cody(xp, work):
    """Cody's two results: erf(x) for |x| <= 0.46875, and erfc(|x|) for larger |x|."""
    y = xp.abs(work)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small = work * _ratio(_A, _B, y * y, 4)                       # |x| <= 0.46875
        mid = xp.exp(-y * y) * _ratio(_C, _D, y, 8)                   # erfc, |x| <= 4
        z = 1.0 / (y * y)
        tail = xp.exp(-y * y) * (_ONE_OVER_SQRT_PI - z * _ratio(_P, _Q, z, 5)) / y  # erfc
    return small, xp.where(y <= 4.0, mid, tail)


_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
               0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
_SQRT_PI_OVER_2 = 0.88622692545275801365


def _horner(coeffs, t):
    out = coeffs[0]
    for c in coeffs[1:]:
        out = out * t + c
    return out


def erfinv(xp, x):
    """The y with erf(y) = x, for x in [-1, 1] (+-inf at +-1, NaN outside), in x's dtype."""
    x64 = x.astype(np.float64, copy=False)
    inside = xp.abs(x64) < 1
    safe = xp.where(inside, x64, 0.0)
    w = -xp.log((1.0 - safe) * (1.0 + safe))
    central = _horner(_GILES_CENTRAL, w - 2.5)
    tail = _horner(_GILES_TAIL, xp.sqrt(w) - 3.0)
    y = xp.where(w < 5.0, central, tail) * safe
    for _ in range(2):  # Newton on erf(y) - x, whose derivative is 2/sqrt(pi) exp(-y^2)
        y = y - (erf(xp, y) - safe) * _SQRT_PI_OVER_2 * xp.exp(y * y)
    edge = xp.where(xp.abs(x64) == 1, xp.copysign(np.inf, x64), np.nan)
    return xp.where(inside, y, edge).astype(x.dtype, copy=False)
