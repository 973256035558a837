"""The profile's events grouped by name, and PyTorch's table of them.

`EventList.key_averages()` sums the events of each name into a `FunctionEventAvg` (count,
self and total time in microseconds, self and total bytes); `table(sort_by, row_limit)`
prints them in torch.profiler's layout: one row per name, the largest first, percentages
of the summed self time, and that sum at the bottom.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FunctionEventAvg:
    """The events of one name, summed (torch.autograd.profiler_util.FunctionEventAvg)."""

    key: str
    count: int = 0
    cpu_time_total: float = 0.0       # microseconds, children included
    self_cpu_time_total: float = 0.0  # microseconds, children excluded
    cpu_memory_usage: int = 0         # bytes, children included
    self_cpu_memory_usage: int = 0

    @property
    def cpu_time(self):
        """Average time per call, microseconds."""
        return self.cpu_time_total / self.count if self.count else 0.0

    def add(self, event):
        self.count += 1
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        self.cpu_memory_usage += event.cpu_memory_usage
        self.self_cpu_memory_usage += event.self_cpu_memory_usage


class EventList(list):
    """A list of events (or of their averages) that can group and print itself."""

    def key_averages(self) -> "EventList":
        groups = {}
        for event in self:
            groups.setdefault(event.name, FunctionEventAvg(event.name)).add(event)
        return EventList(groups.values())

    def table(self, sort_by="self_cpu_time_total", row_limit=100) -> str:
        """PyTorch's table: sort_by names an attribute ("self_cpu_time_total",
        "cpu_time_total", "cpu_time", "count", "cpu_memory_usage", ...), largest first."""
        rows = sorted(self, key=lambda e: getattr(e, sort_by), reverse=True)[:row_limit]
        total_self = sum(e.self_cpu_time_total for e in self) or 1.0
        headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total",
                   "CPU time avg", "CPU Mem", "Self CPU Mem", "# of Calls"]
        name_width = max([len(h) for h in headers[:1]] + [len(_key(e)) for e in rows]) + 4
        widths = [name_width] + [12] * (len(headers) - 1)
        rule = "  ".join("-" * w for w in widths) + "  "

        def line(cells):
            return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + "  "

        out = [rule, line(headers), rule]
        for e in rows:
            out.append(line([_key(e), f"{100 * e.self_cpu_time_total / total_self:.2f}%",
                             _format_time(e.self_cpu_time_total),
                             f"{100 * e.cpu_time_total / total_self:.2f}%",
                             _format_time(e.cpu_time_total), _format_time(e.cpu_time),
                             _format_memory(e.cpu_memory_usage),
                             _format_memory(e.self_cpu_memory_usage), e.count]))
        out += [rule, f"Self CPU time total: {_format_time(total_self)}"]
        return "\n".join(out) + "\n"


def _key(event):
    return getattr(event, "key", None) or event.name


def _format_time(us):
    """PyTorch's time format: us below a millisecond, then ms, then s."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_memory(nbytes):
    """PyTorch's memory format: b, Kb, Mb, Gb (powers of 1024)."""
    for unit, size in (("Gb", 1024 ** 3), ("Mb", 1024 ** 2), ("Kb", 1024)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} b"
