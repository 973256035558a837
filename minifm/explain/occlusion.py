"""Occlusion (Zeiler & Fergus, 2014), Captum's Occlusion: cover a patch of the input with
the baseline and see how much the output drops.

A window of `sliding_window_shapes` slides over each example (every dimension but the
batch) in steps of `strides`; the last window in a dimension may stick out past the
end and is cut off there, so every input number is covered at least once. Each input
number's attribution is the mean, over the windows covering it, of

    F(x)[target] - F(x with the window set to the baseline)[target].

No gradients are taken: it works on any model, at the cost of one forward pass per
window (`perturbations_per_eval` windows share one pass, as a bigger batch).
"""
from __future__ import annotations

import itertools
import math
import numbers

from ..autograd import no_grad
from ..creation import zeros
from ..ops.shape import cat
from .attribution import Attribution
from .common import (
    as_tuple, expand_args, expand_target, format_baselines, repeat, run_forward, same_form,
)


def _per_input(value, inputs, name):
    """One value per input: a value given once for a single input is wrapped."""
    if len(inputs) == 1 and not (isinstance(value, tuple) and len(value) == 1
                                 and isinstance(value[0], (tuple, numbers.Integral))):
        value = (value,)
    if not isinstance(value, tuple) or len(value) != len(inputs):
        raise ValueError(f"{name} must be given for each of the {len(inputs)} inputs")
    return value


def _windows(feature_shape, window, stride):
    """The slices of every window position, each a tuple of one slice per dimension."""
    starts = [list(range(0, math.ceil((size - w) / s) * s + 1, s))
              for size, w, s in zip(feature_shape, window, stride)]
    return [tuple(slice(i, i + w) for i, w in zip(corner, window))
            for corner in itertools.product(*starts)]


class Occlusion(Attribution):
    def attribute(self, inputs, sliding_window_shapes, strides=None, baselines=None,
                  target=None, additional_forward_args=None, perturbations_per_eval=1):
        xs = as_tuple(inputs)
        bases = format_baselines(baselines, xs)
        windows = _per_input(sliding_window_shapes, xs, "sliding_window_shapes")
        strides = _per_input(1 if strides is None else strides, xs, "strides")
        if perturbations_per_eval < 1:
            raise ValueError(f"perturbations_per_eval must be >= 1, got {perturbations_per_eval}")
        with no_grad():
            reference = run_forward(self.forward_func, xs, target, additional_forward_args)
            if reference.numel() != xs[0].shape[0]:
                raise ValueError(f"the forward function gives {tuple(reference.shape)} "
                                 "outputs: give a target that picks one number per example")
            results = [self._occlude(i, xs, bases[i], windows[i], strides[i], reference,
                                     target, additional_forward_args, perturbations_per_eval)
                       for i in range(len(xs))]
        return same_form(isinstance(inputs, tuple), results)

    def _occlude(self, i, xs, baseline, window, stride, reference, target, args, per_eval):
        """The attributions of input i: the mean output drop over the windows covering
        each of its numbers."""
        x = xs[i]
        features = tuple(x.shape[1:])
        window = tuple(window)
        stride = (stride,) * len(features) if isinstance(stride, numbers.Integral) else stride
        if len(window) != len(features) or len(stride) != len(features):
            raise ValueError(f"input {i} of shape {tuple(x.shape)}: sliding window {window} "
                             f"and strides {stride} need one size per dimension after the "
                             "batch")
        if any(w > f for w, f in zip(window, features)):
            raise ValueError(f"sliding window {window} exceeds the input's shape {features}")
        total = zeros(x.shape, dtype=reference.dtype, device=x.device)
        count = zeros(features, dtype=reference.dtype, device=x.device)
        slices = _windows(features, window, stride)
        for start in range(0, len(slices), per_eval):
            group = slices[start:start + per_eval]
            masks = []
            for where in group:
                mask = zeros(features, dtype=x.dtype, device=x.device)
                mask[where] = 1.0
                masks.append(mask)
            occluded = cat([x * (1 - m) + baseline * m for m in masks], dim=0)
            batch = tuple(occluded if j == i else repeat(other, len(group))
                          for j, other in enumerate(xs))
            out = run_forward(self.forward_func, batch, expand_target(target, len(group)),
                              expand_args(args, len(group)))
            drops = reference.reshape(1, -1) - out.reshape(len(group), -1)
            for drop, mask in zip(drops, masks):
                total = total + drop.reshape(-1, *([1] * len(features))) * mask
                count = count + mask
        return total / count
