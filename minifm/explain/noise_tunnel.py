"""NoiseTunnel, Captum's: run another attribution method on noisy copies of the input and
summarize, which smooths the speckle out of gradient maps.

Each example is copied nt_samples times with Gaussian noise of standard deviation
`stdevs` added (one stdev per input, in the inputs' own units), and the wrapped method
explains the copies. Per input number, over the copies:

    "smoothgrad"     the mean attribution (SmoothGrad, Smilkov et al., 2017)
    "smoothgrad_sq"  the mean of the squared attributions
    "vargrad"        their variance (Adebayo et al., 2018): mean of squares - squared mean

The noise comes from `generator` (a minifm.Generator; default: the device's default
generator, which `minifm.manual_seed` seeds). For each batch of copies it is drawn once
per input, in the order of the inputs, as stdev * randn(N * copies, *shape[1:]), the
copies of each example next to each other (Captum draws the same shape from torch's
generator). Every other keyword argument goes to the wrapped method's `attribute`,
its target, baselines and tensor arguments repeated to match the copies.
"""
from __future__ import annotations

import numbers

from ..autograd import no_grad
from ..creation import randn
from ..ops.shape import cat
from ..tensor import Tensor
from .attribution import Attribution
from .common import as_tuple, expand_args, expand_target, repeat_interleave, same_form

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


class NoiseTunnel(Attribution):
    def __init__(self, attribution_method):
        super().__init__(attribution_method.forward_func)
        self.attribution_method = attribution_method

    def attribute(self, inputs, nt_type="smoothgrad", nt_samples=5, nt_samples_batch_size=None,
                  stdevs=1.0, generator=None, **kwargs):
        """The summarized attributions (and, when the wrapped method returns one and
        return_convergence_delta=True, its delta for every noisy copy, as Captum)."""
        if nt_type not in NT_TYPES:
            raise ValueError(f"nt_type must be one of {', '.join(NT_TYPES)}, got {nt_type!r}")
        if nt_samples < 1:
            raise ValueError(f"nt_samples must be >= 1, got {nt_samples}")
        xs = tuple(x.detach() for x in as_tuple(inputs))
        stdevs = stdevs if isinstance(stdevs, tuple) else (stdevs,) * len(xs)
        if len(stdevs) != len(xs) or not all(isinstance(s, numbers.Real) for s in stdevs):
            raise ValueError(f"stdevs must be a number or one number per input, got {stdevs}")
        with_delta = kwargs.get("return_convergence_delta", False) and \
            self.attribution_method.has_convergence_delta()
        batch = nt_samples if nt_samples_batch_size is None else min(nt_samples,
                                                                     nt_samples_batch_size)
        sums = squares = None
        deltas = []
        with no_grad():
            for start in range(0, nt_samples, batch):
                k = min(batch, nt_samples - start)
                noisy = tuple(repeat_interleave(x, k) + s * randn(
                    (x.shape[0] * k, *x.shape[1:]), dtype=x.dtype, device=x.device,
                    generator=generator) for x, s in zip(xs, stdevs))
                out = self.attribution_method.attribute(
                    same_form(isinstance(inputs, tuple), noisy), **self._expand(kwargs, xs, k))
                if with_delta:
                    out, delta = out
                    deltas.append(delta)
                per_copy = [a.reshape(x.shape[0], k, *x.shape[1:]) for a, x in
                            zip(as_tuple(out), xs)]
                part_sums = [a.sum(dim=1) for a in per_copy]
                part_squares = [(a * a).sum(dim=1) for a in per_copy]
                sums = part_sums if sums is None else [s + p for s, p in zip(sums, part_sums)]
                squares = part_squares if squares is None else [
                    s + p for s, p in zip(squares, part_squares)]
        means = [s / nt_samples for s in sums]
        mean_squares = [s / nt_samples for s in squares]
        summary = {"smoothgrad": means, "smoothgrad_sq": mean_squares,
                   "vargrad": [sq - m * m for sq, m in zip(mean_squares, means)]}[nt_type]
        attributions = same_form(isinstance(inputs, tuple), summary)
        return (attributions, cat(deltas)) if with_delta else attributions

    @staticmethod
    def _expand(kwargs, xs, k):
        """The wrapped method's keyword arguments for k copies of each example."""
        kwargs = dict(kwargs)
        if "target" in kwargs:
            kwargs["target"] = expand_target(kwargs["target"], k, interleave=True)
        if kwargs.get("additional_forward_args") is not None:
            kwargs["additional_forward_args"] = expand_args(kwargs["additional_forward_args"],
                                                            k, interleave=True)
        if kwargs.get("baselines") is not None:
            kwargs["baselines"] = tuple(
                repeat_interleave(b, k) if isinstance(b, Tensor) and b.dim() > 0
                and b.shape[0] == x.shape[0] > 1 else b
                for b, x in zip(as_tuple(kwargs["baselines"]), xs))
        return kwargs

    def has_convergence_delta(self):
        return self.attribution_method.has_convergence_delta()

    @property
    def multiplies_by_inputs(self):
        return self.attribution_method.multiplies_by_inputs
