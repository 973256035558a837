"""Where a run's numbers go: metrics.csv (one row per value, easy to load anywhere),
metrics.jsonl (one record per event) and a PNG of the loss curves."""
from __future__ import annotations

import csv
import json
import math
import os


class MetricsLog:
    def __init__(self, out_dir, append=False):
        os.makedirs(out_dir, exist_ok=True)
        self.out_dir = out_dir
        mode = "a" if append else "w"
        self.csv_path = os.path.join(out_dir, "metrics.csv")
        self.jsonl_path = os.path.join(out_dir, "metrics.jsonl")
        new_csv = not (append and os.path.exists(self.csv_path))
        self._csv_file = open(self.csv_path, mode, newline="")
        self._csv = csv.writer(self._csv_file)
        if new_csv:
            self._csv.writerow(["step", "split", "metric", "value"])
        self._jsonl = open(self.jsonl_path, mode)

    def log(self, step, split, values: dict):
        for name, value in values.items():
            self._csv.writerow([step, split, name, value])
        self._jsonl.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self._csv_file.flush()
        self._jsonl.flush()

    def close(self):
        self._csv_file.close()
        self._jsonl.close()


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
    ax.legend()
    if title:
        ax.set_title(title)
    path = os.path.join(out_dir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
