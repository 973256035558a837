"""Draw the autograd graph of a small MLP's loss with minifm.viz.make_dot (torchviz's API).

Writes benchmarks/results/mlp_graph.svg when the graphviz Python package and its `dot`
program are installed, else benchmarks/results/mlp_graph.dot (render it with
`dot -Tsvg mlp_graph.dot -o mlp_graph.svg`).

Usage: python examples/graph_mlp.py [--show-saved] [--format svg|png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import minifm
import minifm.nn as nn
import minifm.nn.functional as F
from minifm.viz import make_dot

OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "mlp_graph"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-saved", action="store_true")
    parser.add_argument("--format", default="svg", choices=["svg", "png"])
    args = parser.parse_args()
    minifm.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, target = minifm.randn(16, 4), minifm.randint(0, 3, (16,))
    loss = F.cross_entropy(model(x), target)
    dot = make_dot(loss, params=dict(model.named_parameters()), show_saved=args.show_saved)
    print(f"wrote {dot.render(OUT, format=args.format)}")


if __name__ == "__main__":
    main()
