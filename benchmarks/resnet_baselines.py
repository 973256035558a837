"""Baselines for `minifm train resnet`: scikit-learn's logistic regression and MLP on the
same digits split (minifm.data.load_digits, seed 0: 1,439 train / 179 val / 179 test).

    python benchmarks/resnet_baselines.py

Each model's one hyperparameter (the inverse L2 strength C, the MLP's L2 alpha) is chosen
on the validation split from a small grid; the chosen model is refit on the training
split alone and scored once on the test split. The MLP (two hidden layers, 128 and 64
ReLU units, Adam) is fitted with 5 seeds: mean, standard deviation and each seed's test
accuracy. Results go to benchmarks/results/resnet_baselines.json (or --output).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from common import machine_info, write_json
from minifm.data import load_digits

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = (0, 1, 2, 3, 4)


def flat(split):
    """(images as rows of 64 pixels, labels)."""
    x, y = split
    return x.reshape(len(x), -1), y


def select(make, grid, train, val):
    """The grid value whose model, fitted on train, scores best on val (first on ties)."""
    scores = {value: make(value).fit(*train).score(*val) for value in grid}
    return max(grid, key=lambda value: scores[value]), scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=RESULTS / "resnet_baselines.json")
    args = parser.parse_args()
    digits = load_digits()
    train, val, test = (flat(digits[s]) for s in ("train", "val", "test"))

    start = time.perf_counter()

    def logistic(c):
        return LogisticRegression(C=c, max_iter=5000)

    c, c_scores = select(logistic, (0.01, 0.1, 1.0, 10.0), train, val)
    logistic_test = logistic(c).fit(*train).score(*test)

    def mlp(alpha, seed=0):
        return MLPClassifier((128, 64), alpha=alpha, max_iter=500, random_state=seed)

    alpha, alpha_scores = select(mlp, (1e-4, 1e-3, 1e-2, 1e-1), train, val)
    mlp_tests = [mlp(alpha, seed).fit(*train).score(*test) for seed in SEEDS]
    wall = time.perf_counter() - start

    results = {
        "split": {s: len(digits[s][1]) for s in ("train", "val", "test")},
        "logistic_regression": {"C": c, "val_accuracy_by_C": c_scores,
                                "test_accuracy": logistic_test},
        "mlp": {"hidden_layer_sizes": [128, 64], "alpha": alpha,
                "val_accuracy_by_alpha": alpha_scores, "seeds": list(SEEDS),
                "test_accuracy": mlp_tests, "test_accuracy_mean": float(np.mean(mlp_tests)),
                "test_accuracy_std": float(np.std(mlp_tests, ddof=1))},
        "wall_seconds": round(wall, 1),
        "machine": machine_info(),
    }
    write_json(args.output, results)
    print(f"logistic regression (C={c}): test {logistic_test:.4f}")
    print(f"MLP 128-64 (alpha={alpha}): test {np.mean(mlp_tests):.4f} +- "
          f"{np.std(mlp_tests, ddof=1):.4f} over {len(SEEDS)} seeds {mlp_tests}")


if __name__ == "__main__":
    main()
