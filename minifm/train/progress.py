"""Progress reporting: a one-line bar on a terminal, plain log lines otherwise (CI, files).

Each report gives the time per step, the throughput (tokens/s, images/s: whatever the
task counts) and the time left. The first steps of a process are left out of both: they
include compiling the kernels and warming caches, and would make the estimate far too
long for the rest of the run.
"""
from __future__ import annotations

import sys
import time

WARMUP_STEPS = 2  # steps left out of the timing


class Progress:
    def __init__(self, total, start=0, stream=None, log_every=10, items_per_step=0,
                 item_name="samples"):
        self.stream = stream or sys.stderr
        self.total, self.log_every = total, log_every
        self.items_per_step, self.item_name = items_per_step, item_name
        self.is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.timed_from = start + WARMUP_STEPS  # the step the clock starts at
        self.t0 = None

    def seconds_per_step(self, step):
        """The mean time of the steps after the warm-up ones, or None before there are any."""
        if step <= self.timed_from or self.t0 is None:
            return None
        return (time.perf_counter() - self.t0) / (step - self.timed_from)

    def update(self, step, message):
        """Called after each step; `step` counts completed steps."""
        if step == self.timed_from:
            self.t0 = time.perf_counter()
        speed = self.speed(step)
        if self.is_tty:
            width = 24
            filled = int(width * step / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {step}/{self.total} {message} | {speed} ")
            self.stream.flush()
        elif step % self.log_every == 0 or step == self.total:
            self.write(f"step {step}/{self.total} | {message} | {speed}")

    def speed(self, step):
        """"52 ms/step, 14700 tokens/s, 1m05s left", or what is known of it so far."""
        seconds = self.seconds_per_step(step)
        if seconds is None:
            return "timing after the first steps"
        parts = [f"{1000 * seconds:.0f} ms/step"]
        if self.items_per_step:
            parts.append(f"{self.items_per_step / seconds:,.0f} {self.item_name}/s")
        left = round(seconds * (self.total - step))
        parts.append(f"{left // 60}m{left % 60:02d}s left")
        return ", ".join(parts)

    def write(self, line):
        """A line that must stay on screen (evaluations, warnings)."""
        if self.is_tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.is_tty:
            self.stream.write("\n")
            self.stream.flush()
