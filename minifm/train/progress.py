"""Progress reporting: a one-line bar on a terminal, plain log lines otherwise (CI, files)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total, start=0, stream=None, log_every=10):
        self.stream = stream or sys.stderr
        self.total, self.start, self.log_every = total, start, log_every
        self.is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, step, message):
        """Called after each step; `step` counts completed steps."""
        done = step - self.start
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        if self.is_tty:
            width = 24
            filled = int(width * step / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {step}/{self.total} {message} | {eta:5.0f}s left ")
            self.stream.flush()
        elif step % self.log_every == 0 or step == self.total:
            self.write(f"step {step}/{self.total} | {message} | {1000 / max(rate, 1e-9):.0f} ms/step")

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
