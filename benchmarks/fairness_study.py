"""Does a digit classifier serve an under-represented group as well as the majority, and
does training on group-balanced data fix it?

Group B is digits drawn in another style: strokes thickened by a 3x3 maximum filter and
the background lifted to grey (pixel values x -> 0.4 + 0.6 x). B is 10% of the training
digits and half of the test digits. A small MLP is trained three ways, over several seeds:

    uniform          every training digit drawn equally often (a shuffled DataLoader)
    balanced sampler WeightedRandomSampler with weights 1 / (group size): each group drawn
                     equally often
    loss weights     uniform draws, each digit's loss weighted 1 / (group size)

and evaluated per group with minifm.metrics.MetricFrame: accuracy, and the equalized-odds
gap, the worst over the ten digits of the one-vs-rest equalized_odds_difference (how far
the groups' true and false positive rates for "is a 7" and the like differ).

    python benchmarks/fairness_study.py [--seeds 0 1 2 3 4] [--epochs 15]

writes benchmarks/results/fairness_study.{json,md,png}.
"""
import argparse
import json
import os
import time

import numpy as np

import minifm
from minifm import nn
from minifm.data import (
    DataLoader, TensorDataset, WeightedRandomSampler, group_balanced_weights, load_digits,
)
from minifm.metrics import MetricFrame, accuracy_score, equalized_odds_difference

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
METHODS = ("uniform", "balanced sampler", "loss weights")


def restyle(images):
    """Group B's style: thicker strokes (3x3 maximum filter) on a grey background."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return 0.4 + 0.6 * windows.max(axis=(-1, -2))


def grouped_digits(seed):
    """{"train", "test"}: (images, labels, groups), B 10% of train and 50% of test."""
    splits = load_digits(val_frac=0.0, test_frac=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    out = {}
    for split, share in (("train", 0.1), ("test", 0.5)):
        x, y = splits[split]
        groups = np.where(rng.random(len(y)) < share, "B", "A")
        x = np.where((groups == "B")[:, None, None, None], restyle(x), x).astype(np.float32)
        out[split] = (x, y, groups)
    return out


def train(data, method, seed, epochs):
    """An MLP trained on data["train"] as `method` says; its test predictions."""
    minifm.manual_seed(seed)
    x, y, groups = data["train"]
    weights = group_balanced_weights(groups)
    weights = (weights * len(weights) / weights.sum()).astype(np.float32)  # mean 1
    dataset = TensorDataset(minifm.tensor(x), minifm.tensor(y), minifm.tensor(weights))
    generator = minifm.Generator(seed=seed)
    if method == "balanced sampler":
        sampler = WeightedRandomSampler(weights, len(y), generator=generator)
        loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    else:
        loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=generator)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = minifm.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for xb, yb, wb in loader:
            losses = nn.functional.cross_entropy(model(xb), yb, reduction="none")
            loss = (losses * wb).mean() if method == "loss weights" else losses.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with minifm.no_grad():
        return model(minifm.tensor(data["test"][0])).argmax(dim=1).numpy()


def equalized_odds_gap(y_true, y_pred, groups):
    """The worst, over the ten digits, of the one-vs-rest equalized-odds difference."""
    return max(equalized_odds_difference(y_true == k, y_pred == k, sensitive_features=groups)
               for k in range(10))


def evaluate(y_true, y_pred, groups):
    frame = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred,
                        sensitive_features=groups)
    return {"accuracy": frame.overall, "accuracy A": frame.by_group["A"],
            "accuracy B": frame.by_group["B"], "accuracy gap": frame.difference(),
            "equalized-odds gap": equalized_odds_gap(y_true, y_pred, groups)}


def summarize(runs):
    """{method: {metric: [mean, std]}} over seeds."""
    return {method: {metric: [float(np.mean([r[metric] for r in per_seed])),
                              float(np.std([r[metric] for r in per_seed]))]
                     for metric in per_seed[0]}
            for method, per_seed in runs.items()}


def write_markdown(summary, seeds, path):
    metrics = list(next(iter(summary.values())))
    lines = [f"Digits, group B (thick strokes, grey background) 10% of training and 50% of "
             f"test; MLP, mean ± std over seeds {seeds}.", "",
             "| training | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for method, values in summary.items():
        lines.append(f"| {method} | " + " | ".join(f"{m:.3f} ± {s:.3f}"
                                                   for m, s in values.values()) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    at = np.arange(len(summary))
    for offset, group in ((-0.2, "A"), (0.2, "B")):
        values = [summary[m][f"accuracy {group}"] for m in summary]
        axes[0].bar(at + offset, [v[0] for v in values], 0.4, yerr=[v[1] for v in values],
                    label=f"group {group}" + (" (10% of training)" if group == "B" else ""))
    axes[0].set_ylim(0.5, 1.0)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(loc="lower right")
    gaps = [summary[m]["equalized-odds gap"] for m in summary]
    axes[1].bar(at, [g[0] for g in gaps], 0.5, yerr=[g[1] for g in gaps], color="tab:red")
    axes[1].set_ylabel("equalized-odds gap (worst digit)")
    for ax in axes:
        ax.set_xticks(at, list(summary))
    fig.suptitle("A digit classifier across groups, before and after group balancing")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", default=os.path.join(RESULTS, "fairness_study"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    runs = {method: [] for method in METHODS}
    for seed in args.seeds:
        data = grouped_digits(seed)
        y_true, groups = data["test"][1], data["test"][2]
        for method in METHODS:
            runs[method].append(evaluate(y_true, train(data, method, seed, args.epochs), groups))
    summary = summarize(runs)
    with open(args.output + ".json", "w") as f:
        json.dump({"command": "python benchmarks/fairness_study.py", "seeds": args.seeds,
                   "epochs": args.epochs, "summary": summary, "runs": runs,
                   "seconds": round(time.perf_counter() - t0, 1)}, f, indent=2)
    write_markdown(summary, args.seeds, args.output + ".md")
    plot(summary, args.output + ".png")
    print(open(args.output + ".md").read())


if __name__ == "__main__":
    main()
