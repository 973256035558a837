"""Plot the validation curves written by gpt_shakespeare.py: every run of the results files
given, one color per engine (runs of one engine from several files are pooled), and each
engine's mean over its runs as a thick line.

    python benchmarks/plot_gpt_shakespeare.py benchmarks/results/gpt_shakespeare_*.json

Writes benchmarks/results/gpt_shakespeare_loss.png (or --output).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def engine(result):
    name = "PyTorch" if result["framework"] == "torch" else "minifm"
    if result.get("init_from_torch"):
        name += " from PyTorch's initial weights"
    return name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--output", type=Path,
                        default=HERE / "results" / "gpt_shakespeare_loss.png")
    args = parser.parse_args()
    runs = {}  # engine -> its runs, pooled over the files
    for path in args.results:
        result = json.loads(path.read_text())
        if "runs" not in result:  # e.g. gpt_shakespeare_trainer.json, from train_task.py
            print(f"skipping {path}: not written by gpt_shakespeare.py")
            continue
        runs.setdefault(engine(result), []).extend(result["runs"])
    if not runs:
        parser.error("none of the files was written by gpt_shakespeare.py")
    fig, (full, end) = plt.subplots(1, 2, figsize=(12, 4.5))
    for color, (name, group) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                    runs.items()):
        steps = [step for step, _ in group[0]["val_curve"]]
        if any([step for step, _ in run["val_curve"]] != steps for run in group):
            parser.error(f"the {name} runs were evaluated at different steps")
        curves = np.array([[loss for _, loss in run["val_curve"]] for run in group])
        for axis in (full, end):
            for curve in curves:
                axis.plot(steps, curve, color=color, alpha=0.3, linewidth=0.8)
            axis.plot(steps, curves.mean(axis=0), color=color, linewidth=2,
                      label=f"{name}: mean of {len(group)} seeds, {curves[:, -1].mean():.3f}")
    for axis in (full, end):
        axis.axhline(1.88, color="gray", linestyle="--", linewidth=1, label="nanoGPT's 1.88")
        axis.set_xlabel("step")
        axis.set_ylabel("validation loss")
    last = max(run["val_curve"][-1][0] for group in runs.values() for run in group)
    end.set_xlim(last // 2, last + 20)
    end.set_ylim(1.86, 2.1)
    end.set_title(f"steps {last // 2:,} to {last:,}")
    full.set_title("nanoGPT Shakespeare-char CPU recipe")
    full.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
