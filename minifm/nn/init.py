"""Weight initialization (torch.nn.init): fill a tensor in place from a distribution whose
scale is chosen so activations neither grow nor vanish through the layers.

Xavier/Glorot keeps the variance of activations and gradients equal across a layer:
Var(w) = gain^2 * 2 / (fan_in + fan_out). Kaiming/He keeps the variance of one direction
for rectifiers: Var(w) = gain^2 / fan (fan_in for the forward pass, fan_out for backward).
A uniform distribution on [-b, b] has variance b^2 / 3, hence the sqrt(3) in the bounds.

Every function draws from a minifm Generator (the device's default one unless given),
runs without recording a graph, and returns the tensor it filled.
"""
from __future__ import annotations

import math

from ..autograd import no_grad
from ..backend import array_module
from ..creation import randn_array


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity scales the standard deviation of its input:
    linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)),
    selu 3/4."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """For a weight of shape (out, in, *kernel): fan_in = in * prod(kernel),
    fan_out = out * prod(kernel)."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions (got shape {tuple(tensor.shape)})")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@no_grad()
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return tensor.uniform_(a, b, generator=generator)


@no_grad()
def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return tensor.normal_(mean, std, generator=generator)


@no_grad()
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) restricted to [a, b], by rejection: samples outside are redrawn until
    none is left. Exact, and fast whenever [a, b] holds a fair share of the mass (the usual
    a, b = mean -+ 2 std keeps 95%)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    xp = array_module(tensor.device)
    data = randn_array(tensor.shape, tensor.dtype, tensor.device, generator) * std + mean
    outside = xp.flatnonzero((data < a) | (data > b))
    flat = data.reshape(-1)
    while outside.size:
        redraw = randn_array(outside.shape, tensor.dtype, tensor.device, generator) * std + mean
        flat[outside] = redraw
        outside = outside[(redraw < a) | (redraw > b)]
    tensor._data[...] = data
    return tensor


@no_grad()
def constant_(tensor, val):
    return tensor.fill_(val)


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b) with b = gain * sqrt(3 / fan). nn.Linear's default is a=sqrt(5), which
    works out to b = 1 / sqrt(fan_in)."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)
