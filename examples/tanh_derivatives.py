"""The first four derivatives of tanh by repeated autograd.grad(create_graph=True), checked
against their closed forms, plotted, and the graph of the fourth one drawn (DeZero's
classic demonstration of higher-order gradients).

With t = tanh(x):  t' = 1 - t^2,  t'' = -2 t t',  t''' = -2 t'^2 - 2 t t'',
t'''' = -6 t' t'' - 2 t t'''.

Writes tanh_derivatives.png (matplotlib) and tanh_grad4.svg (graphviz, or a .dot file
without it) into --out-dir (default benchmarks/results).
Usage: python examples/tanh_derivatives.py [--out-dir DIR]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import minifm
from minifm.viz import make_dot

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def derivatives(x, order):
    """[tanh(x), tanh'(x), ..., the order-th derivative], each a Tensor in one graph."""
    values = [x.tanh()]
    for _ in range(order):
        (d,) = minifm.autograd.grad(values[-1].sum(), x, create_graph=True)
        values.append(d)
    return values


def closed_forms(x):
    t = np.tanh(x)
    d1 = 1 - t * t
    d2 = -2 * t * d1
    d3 = -2 * d1 * d1 - 2 * t * d2
    d4 = -6 * d1 * d2 - 2 * t * d3
    return [t, d1, d2, d3, d4]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    out = parser.parse_args().out_dir
    points = np.linspace(-4, 4, 401)
    x = minifm.tensor(points, requires_grad=True)
    values = derivatives(x, 4)
    exact = closed_forms(points)
    for k, (got, want) in enumerate(zip(values, exact)):
        error = np.abs(got.detach().numpy() - want).max()
        print(f"derivative {k}: max |autograd - closed form| = {error:.1e}")
        assert error < 1e-12, k

    import matplotlib  # optional: the pictures
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, v in enumerate(values):
        ax.plot(points, v.detach().numpy(), label="tanh" + "'" * k if k else "tanh")
    ax.set_xlabel("x")
    ax.set_title("tanh and its first four derivatives (minifm, create_graph=True)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "tanh_derivatives.png", dpi=120)
    print(f"wrote {out / 'tanh_derivatives.png'}")

    small = minifm.tensor(1.0, requires_grad=True)
    fourth = derivatives(small, 4)[-1]
    print(f"wrote {make_dot(fourth, params={'x': small}).render(out / 'tanh_grad4', format='svg')}")


if __name__ == "__main__":
    main()
