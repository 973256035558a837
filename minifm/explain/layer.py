"""Layer attributions, Captum's: explain a prediction by what one inner layer computed.

A forward hook on `layer` (Module.register_forward_hook, or a forward pre-hook with
attribute_to_layer_input=True) catches the layer's output (or input) during the forward
pass and puts a fresh leaf tensor in its place: the rest of the model runs on the
leaf, so `autograd.grad` gives the gradient of the target with respect to it. The rest
of the model sees a clone of the leaf, so in-place ops downstream (a
LeakyReLU(inplace=True) after a convolution) leave the recorded activations intact.

- LayerActivation: the layer's output itself.
- LayerGradCam (Grad-CAM, Selvaraju et al., 2017): the activations of each channel
  (dimension 1) weighted by the mean gradient of the target over that channel's
  positions, summed over the channels: a coarse map of where, in the layer's grid, the
  evidence for the target lies. `LayerAttribution.interpolate` resizes it to the input.
"""
from __future__ import annotations

from ..autograd import enable_grad, grad, no_grad
from ..nn import functional as F
from ..tensor import Tensor
from .attribution import Attribution
from .common import as_tuple, run_forward


def _caught(value, record):
    """Fresh leaves in place of value (a Tensor or a tuple of them; other values, integer
    tensors among them, pass through), remembered in `record`; returns what the model
    should go on with: clones of the leaves."""
    leaves = tuple(v.detach().requires_grad_()
                   if isinstance(v, Tensor) and v.is_floating_point() else v
                   for v in as_tuple(value))
    record.append(leaves)
    clones = tuple(v.clone() if isinstance(v, Tensor) else v for v in leaves)
    return clones if isinstance(value, tuple) else clones[0]


def layer_forward(forward_func, layer, inputs, target=None, additional_forward_args=None,
                  attribute_to_layer_input=False):
    """(the forward function's targets, the layer's outputs or inputs as a tuple of leaf
    tensors), from one forward pass."""
    record = []
    if attribute_to_layer_input:
        handle = layer.register_forward_pre_hook(lambda m, args: _caught(args, record))
    else:
        handle = layer.register_forward_hook(lambda m, args, out: _caught(out, record))
    with handle:
        outputs = run_forward(forward_func, inputs, target, additional_forward_args)
    if len(record) != 1:
        raise RuntimeError(f"the layer {type(layer).__name__} ran {len(record)} times in one "
                           "forward pass; attributions need it to run exactly once")
    return outputs, record[0]


class LayerAttribution(Attribution):
    """An attribution method for one layer of the model (`layer`, a Module)."""

    def __init__(self, forward_func, layer):
        super().__init__(forward_func)
        self.layer = layer

    @staticmethod
    def interpolate(layer_attribution, interpolate_dims, interpolate_mode="nearest"):
        """A layer's (N, C, H, W) attribution resized to interpolate_dims (H', W'), to
        lay it over the input image."""
        return F.interpolate(layer_attribution, interpolate_dims, mode=interpolate_mode)


class LayerActivation(LayerAttribution):
    def attribute(self, inputs, additional_forward_args=None, attribute_to_layer_input=False):
        """The layer's output (or input) for `inputs`: a Tensor, or a tuple of them."""
        with no_grad():
            _, values = layer_forward(self.forward_func, self.layer, inputs, None,
                                      additional_forward_args, attribute_to_layer_input)
        values = tuple(v.detach() for v in values)
        return values if len(values) > 1 else values[0]


class LayerGradCam(LayerAttribution):
    def attribute(self, inputs, target=None, additional_forward_args=None,
                  attribute_to_layer_input=False, relu_attributions=False,
                  attr_dim_summation=True):
        """Grad-CAM maps, shaped like the layer's output with one channel (all channels
        with attr_dim_summation=False); relu_attributions keeps only the positive
        evidence, as the paper does."""
        with enable_grad():
            outputs, acts = layer_forward(self.forward_func, self.layer, inputs, target,
                                          additional_forward_args, attribute_to_layer_input)
            if outputs.dim() == 0 or outputs[0].numel() != 1:
                raise ValueError(f"the forward function gives {tuple(outputs.shape)} "
                                 "outputs: give a target that picks one number per example")
            grads = grad(outputs.sum(), acts)
        maps = []
        for g, a in zip(grads, acts):
            weights = g.mean(dim=tuple(range(2, g.dim())), keepdim=True) if g.dim() > 2 else g
            cam = weights * a.detach()
            cam = cam.sum(dim=1, keepdim=True) if attr_dim_summation else cam
            maps.append(F.relu(cam) if relu_attributions else cam)
        return tuple(maps) if len(maps) > 1 else maps[0]
