"""Quadrature rules for the path integral of Integrated Gradients, as Captum defines them:
each rule gives n points alpha in [0, 1] and their weights (step sizes), and

    integral_0^1 g(alpha) d alpha  ~  sum_i step_size_i * g(alpha_i).

- "riemann_left", "riemann_right", "riemann_middle": n equal steps of 1/n, evaluated at
  each step's left end, right end or middle.
- "riemann_trapezoid": n points from 0 to 1 inclusive, weights 1/n with both ends halved
  (Captum's definition: they sum to (n - 1)/n, not to 1).
- "gausslegendre" (the default): Gauss-Legendre nodes and weights mapped from [-1, 1] to
  [0, 1]; exact for polynomials of degree 2n - 1, so it needs far fewer steps.
"""
from __future__ import annotations

import numpy as np

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gausslegendre")


def approximation_parameters(method, n_steps):
    """(step_sizes, alphas): two lists of n_steps floats for the rule `method`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "gausslegendre":
        if n_steps < 1:
            raise ValueError(f"gausslegendre needs n_steps >= 1, got {n_steps}")
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (0.5 * weights).tolist(), (0.5 * (1 + nodes)).tolist()
    if n_steps < 2:
        raise ValueError(f"{method} needs n_steps >= 2, got {n_steps}")
    n = n_steps
    step_sizes = [1 / n] * n
    if method == "riemann_trapezoid":
        step_sizes[0] = step_sizes[-1] = 0.5 / n
        return step_sizes, np.linspace(0, 1, n).tolist()
    first, last = {"riemann_left": (0, 1 - 1 / n), "riemann_right": (1 / n, 1),
                   "riemann_middle": (1 / (2 * n), 1 - 1 / (2 * n))}[method]
    return step_sizes, np.linspace(first, last, n).tolist()
