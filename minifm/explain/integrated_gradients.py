"""Integrated Gradients (Sundararajan, Taly & Yan, 2017), Captum's IntegratedGradients.

The attribution of input number i is the gradient averaged along the straight path from
a baseline x' (all zeros by default: "no signal") to the input x, times the distance:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + alpha (x - x')) / dx_i  d alpha

By the fundamental theorem of calculus for path integrals the attributions add up to
F(x) - F(x') (completeness); the integral is approximated by a quadrature rule
(approximation.py), and `return_convergence_delta=True` reports how far the sum is from
that difference, one number per example: it shrinks as n_steps grows.

All n_steps points of the path go through the model as one batch (alpha-major: the
whole batch at alpha_1, then at alpha_2, ...), or `internal_batch_size` rows at a time.
"""
from __future__ import annotations

from ..creation import tensor
from ..ops.shape import cat
from .approximation import approximation_parameters
from .attribution import GradientAttribution
from .common import as_tuple, expand_args, expand_target, format_baselines, gradients, same_form


class IntegratedGradients(GradientAttribution):
    def __init__(self, forward_func, multiply_by_inputs=True):
        """multiply_by_inputs=False leaves out the (x - x') factor: the averaged gradient
        along the path (a "local" attribution)."""
        super().__init__(forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None,
                  n_steps=50, method="gausslegendre", internal_batch_size=None,
                  return_convergence_delta=False):
        xs = tuple(x.detach() for x in as_tuple(inputs))
        bases = format_baselines(baselines, xs)
        step_sizes, alphas = approximation_parameters(method, n_steps)
        n = xs[0].shape[0]
        chunk = n_steps if internal_batch_size is None else max(1, internal_batch_size // n)
        total = None
        for start in range(0, n_steps, chunk):
            part = self._path_gradients(xs, bases, target, additional_forward_args,
                                        step_sizes[start:start + chunk],
                                        alphas[start:start + chunk])
            total = part if total is None else tuple(t + p for t, p in zip(total, part))
        if self._multiply_by_inputs:
            total = tuple(g * (x - b) for g, x, b in zip(total, xs, bases))
        attributions = same_form(isinstance(inputs, tuple), total)
        if not return_convergence_delta:
            return attributions
        delta = self.compute_convergence_delta(attributions, baselines, inputs, target,
                                               additional_forward_args)
        return attributions, delta

    def _path_gradients(self, xs, bases, target, additional_forward_args, step_sizes,
                        alphas):
        """sum_k step_size_k * gradient at x' + alpha_k (x - x'), for each input."""
        k = len(alphas)
        points = tuple(cat([b + a * (x - b) for a in alphas], dim=0) for x, b in zip(xs, bases))
        grads = gradients(self.forward_func, points, expand_target(target, k),
                          expand_args(additional_forward_args, k))
        out = []
        for g, x in zip(grads, xs):
            weights = tensor(step_sizes, dtype=g.dtype, device=g.device)
            weights = weights.reshape(k, *([1] * x.dim()))
            out.append((g.reshape(k, *x.shape) * weights).sum(dim=0))
        return tuple(out)

    def has_convergence_delta(self):
        return True

    @property
    def multiplies_by_inputs(self):
        return self._multiply_by_inputs
