"""The two one-gradient methods: how much the output moves when an input number moves.

- Saliency (Simonyan et al., 2013): |d output / d input|, the gradient's magnitude
  (abs=False keeps its sign).
- InputXGradient (Shrikumar et al., 2016): input * d output / d input, the first-order
  Taylor estimate of what each input number contributes (exact for a linear model with
  no bias: the terms then add up to the output).
"""
from __future__ import annotations

from .attribution import GradientAttribution
from .common import as_tuple, gradients, same_form


class Saliency(GradientAttribution):
    def attribute(self, inputs, target=None, abs=True, additional_forward_args=None):
        grads = gradients(self.forward_func, as_tuple(inputs), target, additional_forward_args)
        return same_form(isinstance(inputs, tuple),
                         [g.abs() if abs else g for g in grads])


class InputXGradient(GradientAttribution):
    def attribute(self, inputs, target=None, additional_forward_args=None):
        xs = as_tuple(inputs)
        grads = gradients(self.forward_func, xs, target, additional_forward_args)
        return same_form(isinstance(inputs, tuple), [x.detach() * g for x, g in zip(xs, grads)])

    @property
    def multiplies_by_inputs(self):
        return True
