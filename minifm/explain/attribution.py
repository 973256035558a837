"""The base classes of the attribution methods (Captum's Attribution and
GradientAttribution): a method wraps a forward function and explains its outputs with
`attribute(inputs, ...)`, which returns one attribution per input number."""
from __future__ import annotations

from ..autograd import no_grad
from ..ops.shape import stack
from .common import as_tuple, baseline_tensors, format_baselines, run_forward


def sum_rows(x):
    """(N, ...) -> (N,): each example's total."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


class Attribution:
    """An attribution method for `forward_func(*inputs, *additional_forward_args)`, a
    model or any function of Tensors whose output has the batch as its first dimension."""

    def __init__(self, forward_func):
        self.forward_func = forward_func

    def attribute(self, inputs, **kwargs):
        raise NotImplementedError

    def has_convergence_delta(self):
        """Whether attribute(..., return_convergence_delta=True) also returns the error."""
        return False

    @property
    def multiplies_by_inputs(self):
        """Whether attributions are scaled by (input - baseline): "global" attributions
        that add up to the output, rather than "local" sensitivities (gradients)."""
        return False


class GradientAttribution(Attribution):
    """A method built on gradients of the forward function's outputs."""

    def compute_convergence_delta(self, attributions, start_point, end_point, target=None,
                                  additional_forward_args=None):
        """How far each example's attributions are from adding up to its change in output
        (the completeness axiom): sum(attributions) - (f(end_point) - f(start_point)),
        one number per example."""
        end_point = as_tuple(end_point)
        start_point = baseline_tensors(format_baselines(start_point, end_point), end_point)
        with no_grad():
            start = sum_rows(run_forward(self.forward_func, start_point, target,
                                         additional_forward_args))
            end = sum_rows(run_forward(self.forward_func, end_point, target,
                                       additional_forward_args))
            total = stack([sum_rows(a) for a in as_tuple(attributions)]).sum(dim=0)
            return total - (end - start)
