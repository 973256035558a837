"""Normalization ops, layer_norm and batch_norm: each one fused Function with a closed-form
backward; group_norm, instance_norm, rms_norm and local_response_norm are composites at
the end of the file.

Both standardize x over some axes, xhat = (x - mean) * rstd with rstd = 1 / sqrt(var + eps)
(the biased variance), then scale and shift: y = xhat * weight + bias. As a chain of small
ops that is about ten graph nodes, each holding a temporary; fused, forward keeps only xhat
and rstd, and backward is the closed form (means over the normalized axes)

    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),   dxhat = dy * weight

which is the chain rule through mean and var worked out once on paper: the two subtracted
terms are the gradient flowing through the mean and through the variance. float16 inputs
are computed in float32.

Second derivatives (create_graph): both backwards use statistics computed in forward, so
each Function has a `composite`, `_standardize` run on the differentiable array namespace,
that the engine differentiates instead; forward saves the input, weight and bias for it.

layer_norm and batch_norm also have kernels in minifm.kernels: each is a reference
Function (the NumPy/CuPy code below, the oracle and the fallback) and a fused one (the
kernel's loops), and the public function picks one with one `kernels.select` call. The
names follow PyTorch's nodes, NativeLayerNormBackward0 and NativeBatchNormBackward0.
"""
from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..autograd import Function
from ._checks import check_tensor
from ._dtypes import compute_dtype
from .array_box import box, namespace_for, unbox
from .elementwise import rsqrt
from .padding import pad


def _standardize(xp, x, axes, eps):
    """(xhat, rstd, mean, biased var) of x over axes; the statistics keep their axes."""
    mean = x.mean(axis=axes, keepdims=True)
    xhat = x - mean
    var = (xhat * xhat).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat *= rstd
    return xhat, rstd, mean, var


def _standardize_running(x, running_mean, running_var, eps, channel_shape):
    """(xhat, rstd) of x (N, C, *) with the running estimates, constants, as statistics."""
    rstd = (1.0 / (running_var.astype(x.dtype) + eps) ** 0.5).reshape(channel_shape)
    return (x - running_mean.astype(x.dtype).reshape(channel_shape)) * rstd, rstd


def _scale_shift(xhat, weight, bias, param_shape):
    """xhat * weight + bias, of Tensors: the end of the composite forms."""
    out = unbox(xhat)
    if weight is not None:
        out = out * weight.reshape(param_shape)
    if bias is not None:
        out = out + bias.reshape(param_shape)
    return out


def _standardize_backward(gxhat, xhat, rstd, axes):
    """dL/dx from dL/dxhat when mean and var were computed from x itself."""
    mean_g = gxhat.mean(axis=axes, keepdims=True)
    mean_gx = (gxhat * xhat).mean(axis=axes, keepdims=True)
    return rstd * (gxhat - mean_g - xhat * mean_gx)


def _layer_norm_composite(x, weight, bias, *, ndim, eps, kernel=None):
    """Layer norm from differentiable ops, _standardize on the array namespace: the
    composite of both layer norm Functions (the fused one's `kernel` is not needed)."""
    axes = tuple(range(x.ndim - ndim, x.ndim))
    xhat, _, _, _ = _standardize(namespace_for(x.device), box(x), axes, eps)
    return _scale_shift(xhat, weight, bias, x.shape[x.ndim - ndim:])


class NativeLayerNormReference(Function):
    """Standardize over the last `ndim` axes; weight and bias have those axes' shape."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, ndim, eps):
        axes = tuple(range(x.ndim - ndim, x.ndim))
        xw = x.astype(compute_dtype(x.dtype), copy=False)
        xhat, rstd, _, _ = _standardize(ctx.xp, xw, axes, eps)
        ctx.axes = axes
        ctx.save_for_backward(x, weight, bias, xhat, rstd)
        out = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            out += bias
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        _, weight, _, xhat, rstd = ctx.saved
        g = g.astype(xhat.dtype, copy=False)
        lead = tuple(range(g.ndim - len(ctx.axes)))
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gxhat = g * weight if weight is not None else g
            gx = _standardize_backward(gxhat, xhat, rstd, ctx.axes)
        if ctx.needs_input_grad[1]:
            gw = (g * xhat).sum(axis=lead)
        if ctx.needs_input_grad[2]:
            gb = g.sum(axis=lead)
        return gx, gw, gb

    composite = staticmethod(_layer_norm_composite)


def _rows(x, ndim):
    """x as the kernel sees it: (rows, elements normalized together)."""
    return x.reshape(-1, math.prod(x.shape[x.ndim - ndim:]))


class NativeLayerNormFused(Function):
    """Layer norm by a kernel module (minifm.kernels.layer_norm_cpu) on x seen as (rows,
    normalized elements): forward saves x with each row's mean and rstd, and backward is
    the same closed form in one fused pass per row."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, ndim, eps, kernel):
        x2 = _rows(x, ndim)
        y, mean, rstd = kernel.layer_norm_forward(x2, weight, bias, eps)
        ctx.kernel, ctx.ndim = kernel, ndim
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        return y.reshape(x.shape)

    composite = staticmethod(_layer_norm_composite)

    @staticmethod
    def backward(ctx, g):
        x, weight, _, mean, rstd = ctx.saved
        x2 = _rows(x, ctx.ndim)
        gx, gw, gb = ctx.kernel.layer_norm_backward(g.reshape(x2.shape), x2, mean, rstd,
                                                    weight, ctx.needs_input_grad[0])
        shape = g.shape[g.ndim - ctx.ndim:]
        return (None if gx is None else gx.reshape(g.shape),
                gw.reshape(shape) if ctx.needs_input_grad[1] else None,
                gb.reshape(shape) if ctx.needs_input_grad[2] else None)


def _update_running(running_mean, running_var, mean, var, count, momentum):
    """running = (1 - momentum) * running + momentum * batch, in place, with the batch's
    unbiased variance (var * count / (count - 1)), as PyTorch does."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (count / (count - 1))


def _batch_norm_composite(x, weight, bias, *, running_mean, running_var, training, momentum,
                          eps, kernel=None):
    """Batch norm from differentiable ops, on the array namespace, which both batch norm
    Functions are differentiated through under create_graph; the running estimates are not
    updated again."""
    axes = (0,) + tuple(range(2, x.ndim))
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        xhat, _, _, _ = _standardize(namespace_for(x.device), box(x), axes, eps)
    else:
        xhat, _ = _standardize_running(box(x), running_mean, running_var, eps, channel_shape)
    return _scale_shift(xhat, weight, bias, channel_shape)


class NativeBatchNormReference(Function):
    """Standardize each channel (axis 1) over the batch and spatial axes, by whole-array
    NumPy/CuPy code.

    In training the statistics are the batch's own, so they depend on x (full backward),
    and the running estimates are updated in place: running = (1 - momentum) * running +
    momentum * batch, using the unbiased variance as PyTorch does. In eval the running
    estimates are constants and the op is an affine map of x.
    """

    composite = staticmethod(_batch_norm_composite)

    @staticmethod
    def forward(ctx, x, weight, bias, *, running_mean, running_var, training, momentum, eps):
        xp = ctx.xp
        work = compute_dtype(x.dtype)
        xw = x.astype(work, copy=False)
        axes = (0,) + tuple(range(2, x.ndim))
        channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if training:
            xhat, rstd, mean, var = _standardize(xp, xw, axes, eps)
            if running_mean is not None:
                _update_running(running_mean, running_var, mean.reshape(-1), var.reshape(-1),
                                x.size // x.shape[1], momentum)
        else:
            xhat, rstd = _standardize_running(xw, running_mean, running_var, eps, channel_shape)
        ctx.axes, ctx.training, ctx.channel_shape = axes, training, channel_shape
        ctx.save_for_backward(x, weight, bias, xhat, rstd)
        out = xhat * weight.reshape(channel_shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(channel_shape)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        _, weight, _, xhat, rstd = ctx.saved
        g = g.astype(xhat.dtype, copy=False)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gxhat = g * weight.reshape(ctx.channel_shape) if weight is not None else g
            gx = (_standardize_backward(gxhat, xhat, rstd, ctx.axes) if ctx.training
                  else gxhat * rstd)
        if ctx.needs_input_grad[1]:
            gw = (g * xhat).sum(axis=ctx.axes)
        if ctx.needs_input_grad[2]:
            gb = g.sum(axis=ctx.axes)
        return gx, gw, gb


class NativeBatchNormFused(Function):
    """Batch norm by a kernel module (minifm.kernels.batch_norm_cpu), a channel at a time:
    one pass over the input for the statistics and one for the output, and in backward one
    for the sums and one for dx. Forward keeps x and two numbers per channel (mean, rstd),
    not a normalized copy of x, and updates the running estimates as the reference does."""

    composite = staticmethod(_batch_norm_composite)

    @staticmethod
    def forward(ctx, x, weight, bias, *, running_mean, running_var, training, momentum, eps,
                kernel):
        y, mean, var, rstd = kernel.batch_norm_forward(x, weight, bias, eps, training,
                                                       running_mean, running_var)
        if training and running_mean is not None:
            _update_running(running_mean, running_var, mean, var, x.size // x.shape[1],
                            momentum)
        ctx.kernel, ctx.training = kernel, training
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, _, mean, rstd = ctx.saved
        need_dx, need_w, need_b = ctx.needs_input_grad
        gx, gw, gb = ctx.kernel.batch_norm_backward(g, x, mean, rstd, weight, ctx.training,
                                                    need_dx)
        return (gx, gw.astype(x.dtype) if need_w else None,
                gb.astype(x.dtype) if need_b else None)


# ----------------------------------------------------------------------------- public API
def _check_param(op, name, param, shape, input):
    if param is None:
        return
    if tuple(param.shape) != shape:
        raise ValueError(f"{op}: {name} of shape {tuple(param.shape)} does not match the "
                         f"expected shape {shape} for input of shape {tuple(input.shape)}")
    if param.dtype != input.dtype:
        raise TypeError(f"{op}: {name} dtype {param.dtype} differs from the input dtype "
                        f"{input.dtype}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing dimensions given by normalized_shape."""
    check_tensor("layer_norm", input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.dtype.kind != "f":
        raise TypeError(f"layer_norm: expected a floating input, got {input.dtype}")
    trailing = tuple(input.shape[input.ndim - len(shape):]) if input.ndim >= len(shape) else ()
    if not shape or trailing != shape:
        raise ValueError(f"layer_norm: expected input with shape (*, {', '.join(map(str, shape))}) "
                         f"but got input of shape {tuple(input.shape)}")
    _check_param("layer_norm", "weight", weight, shape, input)
    _check_param("layer_norm", "bias", bias, shape, input)
    kernel = kernels.select("layer_norm", input.device.type, dtype=input.dtype,
                            cols=math.prod(shape))
    if kernel is None:
        return NativeLayerNormReference.apply(input, weight, bias, ndim=len(shape), eps=eps)
    return NativeLayerNormFused.apply(input, weight, bias, ndim=len(shape), eps=eps,
                                      kernel=kernel)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalize each channel of an (N, C, *) input. With training=True the batch
    statistics are used and running_mean/var (when given) are updated in place; with
    training=False the running estimates are used."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *), got "
                         f"{tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"batch_norm: expected a floating input, got {input.dtype}")
    channels = (input.shape[1],)
    for name, param in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != channels:
            raise ValueError(f"batch_norm: {name} of shape {tuple(param.shape)} does not match "
                             f"the {channels[0]} channels of input of shape {tuple(input.shape)}")
    _check_param("batch_norm", "weight", weight, channels, input)
    _check_param("batch_norm", "bias", bias, channels, input)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must be given together")
    if training and input.numel() // channels[0] <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {tuple(input.shape)}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when "
                         "training=False")
    attrs = dict(running_mean=None if running_mean is None else running_mean._data,
                 running_var=None if running_var is None else running_var._data,
                 training=training, momentum=momentum, eps=eps)
    kernel = kernels.select("batch_norm", input.device.type, dtype=input.dtype)
    if kernel is None:
        return NativeBatchNormReference.apply(input, weight, bias, **attrs)
    return NativeBatchNormFused.apply(input, weight, bias, **attrs, kernel=kernel)


# ----------------------------------------------------------------------------- group, instance, RMS
# Composites: group and instance norm standardize rows of a reshaped input with layer_norm
# (its fused Function and closed-form backward), then scale and shift per channel; RMS norm
# is a handful of elementwise ops. Their second derivatives come from those ops.
def _per_channel(out, weight, bias, ndim):
    """out * weight + bias with (C,) parameters broadcast over an (N, C, *) tensor."""
    return _scale_shift(out, weight, bias, (-1,) + (1,) * (ndim - 2))


def _check_channels(op, name, param, input):
    if param is not None and tuple(param.shape) != (input.shape[1],):
        raise RuntimeError(f"{op}: Expected {name} to be a vector of size equal to the number "
                           f"of channels in input, but got {name} of shape "
                           f"{list(param.shape)} and input of shape {list(input.shape)}")


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Standardize each group of C / num_groups channels of each example (over the group's
    channels and all spatial positions), then scale and shift each channel."""
    op = "group_norm"
    check_tensor(op, input)
    if input.ndim < 2:
        raise RuntimeError(f"{op}: Expected at least 2 dimensions for input tensor but "
                           f"received {input.ndim}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"{op}: Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    sizes = [n * c // num_groups, num_groups, *input.shape[2:]]
    if sizes[0] * math.prod(sizes[2:]) == 1:  # PyTorch's _verify_batch_size skips the groups
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {sizes}")
    _check_channels(op, "weight", weight, input)
    _check_channels(op, "bias", bias, input)
    row = c // num_groups * math.prod(input.shape[2:])
    out = layer_norm(input.reshape(n, num_groups, row), (row,), eps=eps)
    return _per_channel(out.reshape(input.shape), weight, bias, input.ndim)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Standardize each channel of each example over its spatial positions, then scale and
    shift each channel. Given running_mean/var, use_input_stats=True also updates them in
    place with the examples' average statistics (unbiased variance), as PyTorch does;
    use_input_stats=False normalizes with them instead (batch_norm in eval)."""
    op = "instance_norm"
    check_tensor(op, input)
    n, c = input.shape[:2]
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is not None and stat.numel() != c:
            raise RuntimeError(f"{op}: {name} should contain {n * c} elements not "
                               f"{n * stat.numel()}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: Expected running_mean and running_var to be defined "
                               "when use_input_stats is false")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = math.prod(input.shape[2:])
    if spatial == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{tuple(input.shape)}")
    _check_channels(op, "weight", weight, input)
    _check_channels(op, "bias", bias, input)
    if running_mean is not None or running_var is not None:
        rows = input._data.reshape(n, c, spatial).astype(compute_dtype(input.dtype))
        for stat, value in ((running_mean, rows.mean(axis=2)),
                            (running_var, rows.var(axis=2, ddof=1))):
            if stat is not None:
                data = stat._data
                data *= 1 - momentum
                data += (momentum * value.mean(axis=0)).astype(data.dtype)
    out = layer_norm(input.reshape(n, c, spatial), (spatial,), eps=eps)
    return _per_channel(out.reshape(input.shape), weight, bias, input.ndim)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) * weight over the trailing normalized_shape dims (no mean
    subtracted, no bias). eps=None takes the machine epsilon of the input's dtype."""
    op = "rms_norm"
    check_tensor(op, input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"{op}: Given normalized_shape={list(shape)}, expected input with "
                           f"shape [*{', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"{op}: Expected weight to be of same shape as normalized_shape, but "
                           f"got weight of shape {list(weight.shape)} and normalized_shape = "
                           f"{list(shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return out if weight is None else out * weight


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta (AlexNet's
    normalization across channels, dim 1; the window is zero-padded, size // 2 channels
    before and (size - 1) // 2 after, and the mean always divides by size, as PyTorch's)."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: Expected 3D or higher dimensionality input "
                         f"(got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    square = pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    window = square[:, 0:c]
    for offset in range(1, size):
        window = window + square[:, offset:offset + c]
    return input / (window * (alpha / size) + k) ** beta
