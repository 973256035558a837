"""Where a run's numbers go: metrics.csv (one row per value, easy to load anywhere),
metrics.jsonl (one record per event) and a PNG of the loss curves."""
from __future__ import annotations

import csv
import json
import math
import os

from .run_folder import write_atomically

CSV_HEADER = "step,split,metric,value\n"


class MetricsLog:
    """Appends rows to a run's metrics.csv and metrics.jsonl, flushed after each event.

    keep_until=None starts both files afresh. A resumed run passes the checkpoint's step:
    rows after it (logged by the earlier run after its last checkpoint, and about to be
    logged again) are dropped, as is a line cut short by a kill, so no step appears twice.
    """

    def __init__(self, out_dir, keep_until=None):
        os.makedirs(out_dir, exist_ok=True)
        self.out_dir = out_dir
        self.csv_path = os.path.join(out_dir, "metrics.csv")
        self.jsonl_path = os.path.join(out_dir, "metrics.jsonl")
        if keep_until is None:
            write_atomically(self.csv_path, CSV_HEADER)
            write_atomically(self.jsonl_path, "")
        else:
            write_atomically(self.csv_path, CSV_HEADER + "".join(
                line for line in _lines(self.csv_path)[1:] if _csv_step(line) <= keep_until))
            write_atomically(self.jsonl_path, "".join(
                line for line in _lines(self.jsonl_path) if _jsonl_step(line) <= keep_until))
        self._csv_file = open(self.csv_path, "a", newline="")
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        self._jsonl = open(self.jsonl_path, "a")

    def log(self, step, split, values: dict):
        for name, value in values.items():
            self._csv.writerow([step, split, name, value])
        self._jsonl.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self._csv_file.flush()
        self._jsonl.flush()

    def close(self):
        self._csv_file.close()
        self._jsonl.close()


def _lines(path):
    """The complete lines of a text file ([] when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [line for line in f if line.endswith("\n")]


def _csv_step(line):
    """The step of a metrics.csv row, or infinity for a damaged row (which is dropped)."""
    try:
        return int(line.split(",", 1)[0])
    except ValueError:
        return math.inf


def _jsonl_step(line):
    """The step of a metrics.jsonl record, or infinity for a damaged one."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def read_metrics(out_dir):
    """{(split, metric): [(step, value), ...]} from a run's metrics.csv."""
    series = {}
    with open(os.path.join(out_dir, "metrics.csv"), newline="") as f:
        for row in csv.DictReader(f):
            series.setdefault((row["split"], row["metric"]), []).append(
                (int(row["step"]), float(row["value"])))
    return series


def plot_losses(out_dir, filename="loss.png", title=None):
    """Plot every '*loss*' metric of every split against the step; returns the PNG's path,
    or None when matplotlib is not installed (it is an optional dependency)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = read_metrics(out_dir)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (split, metric), points in sorted(series.items()):
        if "loss" not in metric or not points:
            continue
        steps, values = zip(*[(s, v) for s, v in points if math.isfinite(v)] or [(0, math.nan)])
        ax.plot(steps, values, label=f"{split} {metric}", marker="o" if split != "train" else None,
                markersize=3, linewidth=1 if split == "train" else 1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    if title:
        ax.set_title(title)
    path = os.path.join(out_dir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
