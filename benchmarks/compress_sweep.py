"""Validation loss of a trained GPT against the fraction of its weights pruned, with and
without fine-tuning, and a plot of it.

For each sparsity the model is reloaded from the checkpoint and pruned as `minifm
compress --prune S` does (global L1 magnitude pruning of every Linear weight but the
output layer, tied to the embedding); the validation loss is measured straight away and,
for the sparsities in --finetune-at, again after --finetune-steps of the task's training
step (what `minifm compress --finetune-steps` runs).

    python benchmarks/compress_sweep.py --checkpoint /tmp/gpt_main/checkpoint.safetensors
        [--finetune-steps 100] [--out benchmarks/results/compress/sparsity.json]
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
from benchmarks.common import machine_info, write_json  # noqa: E402
from minifm.train.commands import task_from_checkpoint  # noqa: E402
from minifm.train.compress_command import finetune, prunable_layers, prune_layers  # noqa: E402

SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def val_loss(task):
    with minifm.no_grad():
        return task.evaluate("val")["loss"]


def plot(rows, steps, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["sparsity"] for r in rows], [r["val_loss"] for r in rows], "o-",
            label="pruned, no fine-tuning")
    tuned = [r for r in rows if "val_loss_finetuned" in r]
    ax.plot([r["sparsity"] for r in tuned], [r["val_loss_finetuned"] for r in tuned], "s-",
            label=f"pruned, then {steps} fine-tuning steps")
    ax.set_xlabel("fraction of Linear weights pruned (global L1)")
    ax.set_ylabel("validation loss (nats per character)")
    ax.set_title("GPT (4 layers, width 128): loss against sparsity")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--finetune-steps", type=int, default=100)
    parser.add_argument("--finetune-at", type=float, nargs="*",
                        default=[0.3, 0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--out", default="benchmarks/results/compress/sparsity.json")
    args = parser.parse_args()
    rows = []
    for sparsity in SPARSITIES:
        task, ckpt = task_from_checkpoint(args.checkpoint)
        row = {"sparsity": sparsity}
        if sparsity:
            prune_layers(prunable_layers(task), sparsity, structured=False)
        row["val_loss"] = val_loss(task)
        if any(abs(sparsity - s) < 1e-9 for s in args.finetune_at):
            finetune(task, ckpt, args.finetune_steps)
            row["val_loss_finetuned"] = val_loss(task)
        print(row, flush=True)
        rows.append(row)
    write_json(args.out, {"machine": machine_info(), "checkpoint": args.checkpoint,
                          "finetune_steps": args.finetune_steps, "rows": rows})
    plot(rows, args.finetune_steps, os.path.splitext(args.out)[0] + ".png")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
