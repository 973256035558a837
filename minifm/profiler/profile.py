"""The recorder: every op and every user range as one timed Event (torch.profiler.profile).

`profile` is a FunctionHook (autograd/function_hooks.py): while its `with` block runs, each
op's forward is timed from `forward_preprocess` to `forward_postprocess`, each node's
backward from `backward_preprocess` to `backward_postprocess`. Events nest (a
`record_function` range holds ops; under create_graph a backward runs ops): an open-event
stack gives each event its total time and its self time (total minus its children's), and
the same for bytes, the sizes of the arrays it made (an op's output, a backward's input
gradients; views of an input count nothing).
"""
from __future__ import annotations

import enum
import json
import os
import threading
from dataclasses import dataclass
from time import perf_counter_ns

from ..autograd.function_hooks import FunctionHook, add_hook, remove_hook
from .key_averages import EventList


class ProfilerActivity(enum.Enum):
    """What to profile. minifm times on the CPU (a GPU op is timed as its launch)."""

    CPU = "cpu"


@dataclass
class Event:
    """One timed call: an op's forward or backward, or a user range. `*_ns` fields count
    nanoseconds from the profile's start; the times PyTorch names are in microseconds, the
    memory in bytes."""

    name: str
    category: str          # "cpu_op" (forward), "backward", or "user_annotation"
    start_ns: int
    end_ns: int = 0
    children_ns: int = 0
    cpu_memory_usage: int = 0
    children_bytes: int = 0
    thread: int = 0

    @property
    def duration_ns(self):
        return self.end_ns - self.start_ns

    @property
    def cpu_time_total(self):
        return self.duration_ns / 1e3

    @property
    def self_cpu_time_total(self):
        return (self.duration_ns - self.children_ns) / 1e3

    @property
    def self_cpu_memory_usage(self):
        return self.cpu_memory_usage - self.children_bytes


_current = []
"""The profile now recording, if any (record_function adds its ranges to it)."""


class profile(FunctionHook):
    """Records every op run inside the `with` block. `activities` is accepted for
    torch.profiler's signature; minifm records CPU time only."""

    def __init__(self, activities=None):
        if activities is not None and set(activities) - {ProfilerActivity.CPU}:
            raise ValueError("minifm.profiler records ProfilerActivity.CPU only")
        self.events = []
        self._open = []
        self._origin = 0

    def __enter__(self):
        self._origin = perf_counter_ns()
        _current.append(self)
        add_hook(self)
        return self

    def __exit__(self, *exc):
        remove_hook(self)
        _current.remove(self)

    # ------------------------------------------------------------------ the event stack
    def begin(self, name, category):
        self._open.append(Event(name, category, perf_counter_ns() - self._origin,
                                thread=threading.get_ident()))

    def end(self, name, nbytes=0):
        """Close the innermost open event called `name` (and any left open inside it by an
        exception) and charge its time and bytes to its parent."""
        now = perf_counter_ns() - self._origin
        event = self._open.pop()
        while event.name != name and self._open:
            event = self._open.pop()
        event.end_ns = now
        event.cpu_memory_usage += nbytes
        self.events.append(event)
        if self._open:
            parent = self._open[-1]
            parent.children_ns += event.duration_ns
            parent.children_bytes += event.cpu_memory_usage
            parent.cpu_memory_usage += event.cpu_memory_usage

    # ------------------------------------------------------------------ FunctionHook
    def forward_preprocess(self, fn, inputs):
        self.begin(fn.__name__, "cpu_op")

    def forward_postprocess(self, fn, inputs, output, node):
        array = output._data
        self.end(fn.__name__, 0 if fn.view and array.base is not None else array.nbytes)

    def backward_preprocess(self, node, grad):
        self.begin(node.name(), "backward")

    def backward_postprocess(self, node, grad, input_grads):
        self.end(node.name(), sum(g.size * g.dtype.itemsize for g in input_grads
                                  if g is not None))

    # ------------------------------------------------------------------ results
    def key_averages(self) -> EventList:
        """The events grouped by name (see key_averages.py), ready for `.table()`."""
        return EventList(self.events).key_averages()

    def export_chrome_trace(self, path):
        """Write the events in the Chrome trace format (complete events, "ph": "X", times in
        microseconds), which chrome://tracing and https://ui.perfetto.dev open."""
        pid = os.getpid()
        trace = {"traceEvents": [
            {"name": e.name, "cat": e.category, "ph": "X", "ts": e.start_ns / 1e3,
             "dur": e.cpu_time_total, "pid": pid, "tid": e.thread,
             "args": {"bytes": e.cpu_memory_usage}}
            for e in sorted(self.events, key=lambda e: e.start_ns)],
            "displayTimeUnit": "ms"}
        with open(path, "w") as f:
            json.dump(trace, f)


class record_function:
    """A named range of your own code in the profile (`with record_function("forward"):`);
    the ops inside it are its children. Outside a profile it does nothing."""

    def __init__(self, name: str):
        self.name = name
        self.profile = None

    def __enter__(self):
        self.profile = _current[-1] if _current else None
        if self.profile is not None:
            self.profile.begin(self.name, "user_annotation")
        return self

    def __exit__(self, *exc):
        if self.profile is not None:
            self.profile.end(self.name)
