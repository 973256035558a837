"""cupy.cuda.runtime in the stand-in: one device, index 0, that says it is a stand-in."""
from __future__ import annotations

_current = 0


class CUDARuntimeError(RuntimeError):
    """CuPy's error for a failed CUDA runtime call."""


def getDeviceCount():
    return 1


def getDevice():
    return _current


def setDevice(device):
    global _current
    if not 0 <= device < getDeviceCount():
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    _current = device


def getDeviceProperties(device):
    if not 0 <= device < getDeviceCount():
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    return {"name": b"CuPy stand-in (NumPy on the CPU, no GPU)", "totalGlobalMem": 0,
            "major": 0, "minor": 0, "multiProcessorCount": 0}


def runtimeGetVersion():
    return 0


def driverGetVersion():
    return 0
