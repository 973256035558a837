"""cupy.random in the stand-in: the Generator API as CuPy has it, drawing with NumPy.

CuPy's Generator (cupy.random.default_rng) has fewer methods than NumPy's: random,
standard_normal, integers, uniform and poisson are the ones minifm can use, and they are
all the stand-in offers; permutation, choice, shuffle and normal are missing from CuPy's
Generator, so they are missing here too. Draws come from NumPy's PCG64 (CuPy's default
bit generator is cuRAND's XORWOW), so the numbers differ from a real GPU's for a seed.
"""
from __future__ import annotations

import numpy


class Generator:
    def __init__(self, seed=None):
        self._rng = numpy.random.default_rng(seed)
        self.bit_generator = self._rng.bit_generator

    def _device(self, host):
        import cupy
        return cupy._from_host(numpy.asarray(host), count=False)  # CuPy draws on the device

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._rng.random(size, dtype=dtype), out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._rng.standard_normal(size, dtype=dtype), out)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return self._device(self._rng.integers(low, high, size=size, dtype=dtype,
                                               endpoint=endpoint))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        return self._device(self._rng.uniform(low, high, size).astype(dtype, copy=False))

    def poisson(self, lam=1.0, size=None):
        import cupy
        lam = lam.get() if isinstance(lam, cupy.ndarray) else lam
        return self._device(self._rng.poisson(lam, size))

    def _fill(self, host, out):
        if out is None:
            return self._device(host)
        out._a[...] = host  # drawn in place, on the device in CuPy
        return out


def default_rng(seed=None):
    """A Generator seeded with `seed` (cupy.random.default_rng)."""
    return Generator(seed)
