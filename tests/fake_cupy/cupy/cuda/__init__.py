"""cupy.cuda in the stand-in: one device, streams and events that order host work.

Emulated: Device (a context manager that makes itself current, use(), synchronize(), id),
runtime.getDeviceCount/getDevice/setDevice/getDeviceProperties, Stream and
get_current_stream (a stack of current streams; the null stream's ptr is 0), Event and
get_elapsed_time (host clock times: the stand-in's work is synchronous, so the time between
two events is the host time of the work between them), set_allocator and the default memory
pool (cupy.cuda.memory). Not emulated: more than one device, asynchrony, real pointers.
"""
from __future__ import annotations

import time

from . import memory, runtime  # noqa: F401
from .memory import MemoryPool, get_allocator, set_allocator  # noqa: F401


class Device:
    """A CUDA device by index; `with Device(i):` makes it current for the block."""

    def __init__(self, device=None):
        self.id = runtime.getDevice() if device is None else int(device)

    def _check(self):
        if not 0 <= self.id < runtime.getDeviceCount():
            raise runtime.CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self):
        self._check()
        runtime.setDevice(self.id)

    def __enter__(self):
        self._check()
        self._previous = runtime.getDevice()
        runtime.setDevice(self.id)
        return self

    def __exit__(self, *exc_info):
        runtime.setDevice(self._previous)
        return False

    def synchronize(self):
        """Nothing to wait for: the stand-in's work has finished when its call returns."""

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Stream:
    """A stream; `with Stream():` makes it current. Work on it runs at once, on the host."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else (ptr or id(self))

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc_info):
        _streams.pop()
        return False

    def use(self):
        _streams[0] = self
        return self

    def synchronize(self):
        """Nothing to wait for (see Device.synchronize)."""

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event


Stream.null = Stream(null=True)
_streams = [Stream.null]


def get_current_stream(device_id=None):
    return _streams[-1]


class Event:
    """A point in a stream's work; its time is the host clock when it was recorded."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        """Nothing to wait for (see Device.synchronize)."""

    @property
    def done(self):
        return self.time is not None


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events."""
    if start_event.time is None or end_event.time is None:
        raise RuntimeError("get_elapsed_time: both events must be recorded")
    return (end_event.time - start_event.time) * 1e3
