"""Convolution and transposed convolution over 1, 2 or 3 spatial dimensions, as im2col +
one matrix product. conv1d, conv2d and conv3d (and their transposes) are one N-d
implementation; only their argument checks know the number of spatial dimensions.

A convolution is linear in its input and in its weight, so its whole calculus is three
linear maps, each written once below:

    conv_forward(x, w)         y  = conv(x, w)           (the op itself)
    conv_input_grad(gy, w)     gx = conv^T(gy, w)        (adjoint in x: col2im)
    conv_weight_grad(x, gy)    gw = adjoint in w         (a matrix product)

A transposed convolution *is* the adjoint in x, so `conv_transpose2d` runs
`conv_input_grad` forward, and its backward is `conv_forward` (for the input) and
`conv_weight_grad` with the roles of x and y swapped (for the weight).

im2col: the sliding windows of the padded input are a strided view (no copy) of shape
(N, C, *out, *kernel); one copy lays them out as the matrix (G, C/G*prod(kernel), N*prod(out)),
and the weight (O, C/G, *kernel) as (G, O/G, C/G*prod(kernel)), so the convolution of a whole
batch is one (batched over groups) matrix product. col2im, the adjoint, adds the column
gradient back into the input: one strided slice per kernel offset (prod(kernel) adds, each
over the whole batch). Backward keeps the input and the weight, never the columns: it
rebuilds them when the weight's gradient needs them (they are up to prod(kernel) times larger
than the input).

Second derivatives: the helpers take the array namespace `xp` and use only NumPy's array
API (sliding_window_view, slices, matmul), so under create_graph the same backward runs on
the differentiable namespace and is recorded, to be differentiated again.

This whole-batch version is the reference. 2-d convolutions of NumPy arrays run the same
three maps in minifm.kernels.conv_cpu (Numba im2col/col2im over cache-sized chunks of
samples, measured faster there), picked by kernels.select("conv"); its Fused Functions keep
PyTorch's node names and differentiate twice through the reference's backward.
"""
from __future__ import annotations

import itertools
import math
from collections import namedtuple

import numpy as np

from .. import kernels
from ..autograd import Function
from .shape import squeeze, unsqueeze

# per spatial dimension: stride, dilation: ints; padding: (before, after) pairs; groups: int
Geometry = namedtuple("Geometry", ["stride", "padding", "dilation", "groups"])
AXES = {1: "L", 2: "HW", 3: "DHW"}       # the names of the spatial dimensions, in errors
LAYOUT = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


# ----------------------------------------------------------------------------- arguments
def ntuple(op, name, value, minimum, n):
    """An int or n ints as a validated n-tuple (PyTorch's _single, _pair, _triple)."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) for v in values):
        raise RuntimeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise RuntimeError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def pair(op, name, value, minimum):
    """An int or a pair of ints as a validated (h, w) tuple (PyTorch's _pair)."""
    return ntuple(op, name, value, minimum, 2)


def output_size(size, kernel, stride, pad_total, dilation):
    """Number of window positions along one axis (the floor formula of every conv/pool)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def batched(op, input, nd=2):
    """(N, C, *spatial) as is; an unbatched (C, *spatial) gets a batch dimension of 1 (as
    PyTorch); nd is the number of spatial dimensions."""
    if input.ndim == nd + 2:
        return input, False
    if input.ndim == nd + 1:
        return unsqueeze(input, 0), True
    raise RuntimeError(f"{op}: expected a {nd + 1}-D {LAYOUT[nd]} or {nd + 2}-D "
                     f"(N, {LAYOUT[nd][1:]} input, got shape {tuple(input.shape)}")


def unbatched(output, was_unbatched):
    return squeeze(output, 0) if was_unbatched else output


# ----------------------------------------------------------------------------- im2col / col2im
def _everything(count):
    return (slice(None),) * count


def pad_array(xp, x, padding, value=0.0):
    """x (N, C, *spatial) surrounded by `value`: padding is one (before, after) per spatial
    dimension."""
    if not any(lo or hi for lo, hi in padding):
        return x
    shape = x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], padding))
    out = xp.full(shape, value, dtype=x.dtype)
    out[_everything(2) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))] = x
    return out


def windows(xp, xpad, kernel, stride, dilation, out_size):
    """The sliding windows of an (already padded) xpad (N, C, *spatial) as a view of shape
    (N, C, *out_size, *kernel): in 2-D, element [n, c, i, j, a, b] is
    xpad[n, c, i*sh + a*dh, j*sw + b*dw]. Nothing is copied: NumPy's sliding_window_view is a
    strided view, taken here over the dilated kernel's span and then subsampled by the
    stride and the dilation."""
    nd = len(kernel)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = xp.lib.stride_tricks.sliding_window_view(xpad, span, axis=tuple(range(2, 2 + nd)))
    return view[_everything(2) + tuple(slice(None, s * (o - 1) + 1, s)
                                       for s, o in zip(stride, out_size))
                + tuple(slice(None, None, d) for d in dilation)]


def col2im(xp, cols, x_shape, stride, padding, dilation):
    """The adjoint of `windows` after padding: add the window gradient cols
    (N, C, *out, *kernel) back onto the positions of x (N, C, *spatial) they were read from,
    one strided slice per kernel offset (prod(kernel) adds, each over the whole batch)."""
    nd = len(stride)
    out, kernel = cols.shape[2:2 + nd], cols.shape[2 + nd:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], padding))
    gpad = xp.zeros(tuple(x_shape[:2]) + padded, dtype=cols.dtype)
    for offset in itertools.product(*map(range, kernel)):
        target = tuple(slice(a * d, a * d + s * (o - 1) + 1, s)
                       for a, d, s, o in zip(offset, dilation, stride, out))
        gpad[_everything(2) + target] += cols[_everything(2 + nd) + offset]
    crop = tuple(slice(lo, lo + s) for s, (lo, _) in zip(x_shape[2:], padding))
    return xp.ascontiguousarray(gpad[_everything(2) + crop])


def im2col(xp, x, kernel, geom, out_size):
    """x (N, C, *spatial) -> the column matrix (G, C/G*prod(kernel), N*prod(out)) (one copy)."""
    n, c = x.shape[:2]
    g, nd = geom.groups, len(kernel)
    view = windows(xp, pad_array(xp, x, geom.padding), kernel, geom.stride, geom.dilation,
                   out_size)
    # (N, G, C/G, *out, *kernel) -> (G, C/G, *kernel, N, *out)
    view = view.reshape(n, g, c // g, *out_size, *kernel).transpose(
        1, 2, *range(3 + nd, 3 + 2 * nd), 0, *range(3, 3 + nd))
    return xp.ascontiguousarray(view).reshape(g, c // g * math.prod(kernel),
                                              n * math.prod(out_size))


def to_gemm(xp, y, groups):
    """y (N, O, *out) -> (G, O/G, N*prod(out)), the layout of the product's result."""
    n, o = y.shape[:2]
    y = xp.ascontiguousarray(y.transpose(1, 0, *range(2, y.ndim)))
    return y.reshape(groups, o // groups, n * math.prod(y.shape[2:]))


def from_gemm(xp, m, n, out_size):
    """(G, O/G, N*prod(out)) -> y (N, O, *out), contiguous."""
    y = m.reshape(m.shape[0] * m.shape[1], n, *out_size)
    return xp.ascontiguousarray(y.transpose(1, 0, *range(2, y.ndim)))


# ----------------------------------------------------------------------------- the three maps
def conv_output_size(x_shape, w_shape, geom):
    """The spatial size of a convolution's output."""
    return tuple(output_size(x_shape[2 + i], w_shape[2 + i], geom.stride[i],
                             sum(geom.padding[i]), geom.dilation[i])
                 for i in range(len(x_shape) - 2))


def conv_forward(xp, x, w, geom, out_size=None):
    """y[n, o] = sum over the input channels of o's group and the kernel of x * w."""
    g = geom.groups
    o, cg, *kernel = w.shape
    if out_size is None:
        out_size = conv_output_size(x.shape, w.shape, geom)
    cols = im2col(xp, x, tuple(kernel), geom, out_size)
    return from_gemm(xp, w.reshape(g, o // g, cols.shape[1]) @ cols, x.shape[0], out_size)


def conv_input_grad(xp, gy, w, x_shape, geom):
    """gx = the adjoint of conv_forward in x: columns W^T @ gy, scattered back by col2im."""
    g = geom.groups
    o, cg, *kernel = w.shape
    n, _, *out = gy.shape
    nd = len(kernel)
    gcols = w.reshape(g, o // g, cg * math.prod(kernel)).transpose(0, 2, 1) @ to_gemm(xp, gy, g)
    # (G, C/G, *kernel, N, *out) -> (N, G, C/G, *out, *kernel)
    gcols = gcols.reshape(g, cg, *kernel, n, *out).transpose(
        2 + nd, 0, 1, *range(3 + nd, 3 + 2 * nd), *range(2, 2 + nd))
    return col2im(xp, gcols.reshape(n, g * cg, *out, *kernel), x_shape, geom.stride,
                  geom.padding, geom.dilation)


def conv_weight_grad(xp, x, gy, w_shape, geom):
    """gw = the adjoint of conv_forward in w: gy @ columns^T, summed over batch and space."""
    cols = im2col(xp, x, tuple(w_shape[2:]), geom, tuple(gy.shape[2:]))
    return (to_gemm(xp, gy, geom.groups) @ cols.transpose(0, 2, 1)).reshape(w_shape)


def bias_grad(g):
    """The sum over batch and space, along the contiguous spatial axis first (pairwise)."""
    n, c = g.shape[:2]
    return g.reshape(n, c, math.prod(g.shape[2:])).sum(axis=2).sum(axis=0)


# ----------------------------------------------------------------------------- the ops
def _save_inputs(ctx, x, w, geom):
    """The forward's bookkeeping, the same for every convolution op: x is kept only where
    w needs a gradient, w only where x does."""
    ctx.geom = geom
    ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                          w if ctx.needs_input_grad[0] else None)
    ctx.x_shape, ctx.w_shape = x.shape, w.shape


def _add_bias(y, bias):
    """y += bias along the channel axis (in place: y is the op's own new array)."""
    if bias is not None:
        y += bias.reshape(-1, *(1,) * (y.ndim - 2))
    return y


class Convolution(Function):
    @staticmethod
    def forward(ctx, x, w, bias, *, geom):
        _save_inputs(ctx, x, w, geom)
        return _add_bias(conv_forward(ctx.xp, x, w, geom), bias)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = conv_input_grad(ctx.xp, g, w, ctx.x_shape, ctx.geom) if need_x else None
        gw = conv_weight_grad(ctx.xp, x, g, ctx.w_shape, ctx.geom) if need_w else None
        return gx, gw, bias_grad(g) if need_b else None


class TransposedConvolution(Function):
    """The adjoint of Convolution in its input, with w (in, out/groups, *kernel) as the
    convolution's weight."""

    @staticmethod
    def forward(ctx, x, w, bias, *, geom, out_shape):
        _save_inputs(ctx, x, w, geom)
        return _add_bias(conv_input_grad(ctx.xp, x, w, out_shape, geom), bias)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = (conv_forward(ctx.xp, g, w, ctx.geom, out_size=ctx.x_shape[2:]) if need_x
              else None)
        gw = conv_weight_grad(ctx.xp, g, x, ctx.w_shape, ctx.geom) if need_w else None
        return gx, gw, bias_grad(g) if need_b else None


def _lift(geom, *arrays):
    """A 1-d problem as a 2-d one of height 1, for the kernels (which are 2-d): each array
    (N, C, L) as a view (N, C, 1, L), and the geometry with a leading axis of stride 1, no
    padding and dilation 1; a 2-d problem as it is."""
    if len(geom.stride) != 1:
        return geom, arrays
    lifted = Geometry((1, *geom.stride), ((0, 0), *geom.padding), (1, *geom.dilation),
                      geom.groups)
    return lifted, tuple(a if a is None else a.reshape(*a.shape[:2], 1, *a.shape[2:])
                         for a in arrays)


def _kernel_backward(ctx, g, backward):
    """The three gradients of a fused convolution node: the kernel module's one-pass
    `backward` (conv_backward or conv_transpose_backward) for the input and the weight, the
    array not saved for backward passed as a shape-only stand-in."""
    x, w = ctx.saved
    need_x, need_w, need_b = ctx.needs_input_grad
    k = ctx.kernel
    x = x if x is not None else k.shape_only(ctx.x_shape, g.dtype)
    w = w if w is not None else k.shape_only(ctx.w_shape, g.dtype)
    geom, (x2, g2, w2) = _lift(ctx.geom, x, g, w)
    gx, gw = backward(x2, g2, w2, geom.stride, geom.padding, geom.dilation, geom.groups,
                      need_x, need_w)
    return _shaped(gx, x.shape), _shaped(gw, w.shape), bias_grad(g) if need_b else None


def _shaped(a, shape):
    """a (or None) in `shape`, reshaped only where its shape differs (a 1-d convolution's
    arrays, lifted to 2-d): a same-shape reshape is a view, and the engine copies a leaf's
    gradient that is a view (every convolution weight's, ~10 ms of a ResNet-18 step)."""
    return a if a is None or a.shape == tuple(shape) else a.reshape(shape)


class ConvolutionFused(Function):
    """Convolution by a kernel module (minifm.kernels.conv_cpu), which runs the same three
    maps one sample at a time with cache-sized columns (a 1-d convolution as a 2-d one of
    height 1); under create_graph the reference's backward runs on the same saved arrays."""
    node_name = "ConvolutionBackward0"
    reference = Convolution

    @staticmethod
    def forward(ctx, x, w, bias, *, geom, kernel):
        _save_inputs(ctx, x, w, geom)
        ctx.kernel = kernel
        geom2, (x2, w2) = _lift(geom, x, w)
        y = kernel.conv_forward(x2, w2, geom2.stride, geom2.padding, geom2.dilation,
                                geom2.groups, conv_output_size(x2.shape, w2.shape, geom2))
        return _add_bias(y.reshape(*y.shape[:2], *conv_output_size(x.shape, w.shape, geom)),
                         bias)

    @staticmethod
    def backward(ctx, g):
        return _kernel_backward(ctx, g, ctx.kernel.conv_backward)


class TransposedConvolutionFused(Function):
    """TransposedConvolution by a kernel module (see ConvolutionFused)."""
    node_name = "TransposedConvolutionBackward0"
    reference = TransposedConvolution

    @staticmethod
    def forward(ctx, x, w, bias, *, geom, out_shape, kernel):
        _save_inputs(ctx, x, w, geom)
        ctx.kernel = kernel
        geom2, (x2, w2) = _lift(geom, x, w)
        shape2 = out_shape if geom2 is geom else (*out_shape[:2], 1, *out_shape[2:])
        y = kernel.conv_input_grad(x2, w2, shape2, geom2.stride, geom2.padding,
                                   geom2.dilation, geom2.groups)
        return _add_bias(y.reshape(out_shape), bias)

    @staticmethod
    def backward(ctx, g):
        return _kernel_backward(ctx, g, ctx.kernel.conv_transpose_backward)


def _select(x, nd):
    return kernels.select("conv", x.device.type, dtype=x.dtype, nd=nd)


# ----------------------------------------------------------------------------- public API
def _check_weight(op, weight, nd):
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected a {nd + 2}-D weight, got shape "
                         f"{tuple(weight.shape)}")


def _check(op, input, weight, bias, groups, in_channels, out_channels):
    """Validate a convolution's operands; in/out_channels are what the weight implies."""
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(f"{op}: input ({input.dtype}), weight ({weight.dtype})"
                        + (f" and bias ({bias.dtype})" if bias is not None else "")
                        + " must have the same dtype")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise RuntimeError(f"{op}: groups must be a positive int, got {groups!r}")
    if weight.shape[0] < groups:
        raise RuntimeError(f"{op}: expected weight to be at least {groups} at dimension 0, but "
                           f"got weight of shape {tuple(weight.shape)}")
    if 0 in input.shape[2:]:  # PyTorch allows an empty batch or empty channels, not positions
        raise RuntimeError(f"{op}: Only zero batch or zero channel inputs are supported, but "
                           f"got input of shape {tuple(input.shape)}")
    if input.shape[1] % groups or out_channels % groups:
        raise RuntimeError(f"{op}: input channels ({input.shape[1]}) and output channels "
                         f"({out_channels}) must both be divisible by groups={groups}")
    if input.shape[1] != in_channels:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} has {input.shape[1]} "
                         f"channels, but weight of shape {tuple(weight.shape)} with "
                         f"groups={groups} expects {in_channels}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(f"{op}: bias of shape {tuple(bias.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected ({out_channels},))")


def _conv_padding(op, padding, kernel, stride, dilation):
    """An int, a tuple, 'valid' or 'same' as one (before, after) per spatial dimension.
    'same' keeps the input's size; an odd total goes to the end, as in PyTorch."""
    nd = len(kernel)
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "same":
        if stride != (1,) * nd:
            raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, str):
        raise RuntimeError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', "
                         f"got {padding!r}")
    return tuple((p, p) for p in ntuple(op, "padding", padding, 0, nd))


def _convolution(op, nd, input, weight, bias, stride, padding, dilation, groups):
    x, was_unbatched = batched(op, input, nd)
    _check_weight(op, weight, nd)
    _check(op, x, weight, bias, groups, weight.shape[1] * groups, weight.shape[0])
    stride = ntuple(op, "stride", stride, 1, nd)
    dilation = ntuple(op, "dilation", dilation, 1, nd)
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(op, padding, kernel, stride, dilation)
    for i, name in enumerate(AXES[nd]):
        reach = dilation[i] * (kernel[i] - 1) + 1
        if reach > x.shape[2 + i] + sum(pads[i]):
            raise RuntimeError(
                f"{op}: kernel of shape {kernel} with dilation {dilation} spans {reach} along "
                f"{name}, more than the padded input ({x.shape[2 + i]} + {sum(pads[i])}) of "
                f"input shape {tuple(input.shape)}")
    geom = Geometry(stride, pads, dilation, int(groups))
    kernel = _select(x, nd)
    if kernel is None:
        return unbatched(Convolution.apply(x, weight, bias, geom=geom), was_unbatched)
    return unbatched(ConvolutionFused.apply(x, weight, bias, geom=geom, kernel=kernel),
                     was_unbatched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of input (N, C, L) with weight (O, C/groups, k)
    (torch.nn.functional.conv1d); padding is an int, a 1-tuple, 'valid' or 'same'."""
    return _convolution("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of input (N, C, H, W) with weight (O, C/groups, kh, kw)
    (torch.nn.functional.conv2d); padding is an int, a pair, 'valid' or 'same'."""
    return _convolution("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation of input (N, C, D, H, W) with weight (O, C/groups, kd, kh, kw)
    (torch.nn.functional.conv3d); padding is an int, a triple, 'valid' or 'same'."""
    return _convolution("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def transposed_output_size(input_size, kernel, stride, padding, output_padding, dilation):
    """Per axis: (size - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, k, s, p, e, d in
                 zip(input_size, kernel, stride, padding, output_padding, dilation))


def _transposed_convolution(op, nd, input, weight, bias, stride, padding, output_padding,
                            groups, dilation):
    x, was_unbatched = batched(op, input, nd)
    _check_weight(op, weight, nd)
    _check(op, x, weight, bias, groups, weight.shape[0], weight.shape[1] * groups)
    stride = ntuple(op, "stride", stride, 1, nd)
    dilation = ntuple(op, "dilation", dilation, 1, nd)
    padding = ntuple(op, "padding", padding, 0, nd)
    extra = ntuple(op, "output_padding", output_padding, 0, nd)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise RuntimeError(f"{op}: output_padding {extra} must be smaller than either stride "
                         f"{stride} or dilation {dilation}")
    out_size = transposed_output_size(x.shape[2:], weight.shape[2:], stride, padding, extra,
                                      dilation)
    if min(out_size) < 1:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} with weight of shape "
                         f"{tuple(weight.shape)} gives an empty output of size {out_size}")
    geom = Geometry(stride, tuple((p, p) for p in padding), dilation, int(groups))
    out_shape = (x.shape[0], weight.shape[1] * groups, *out_size)
    kernel = _select(x, nd)
    if kernel is None:
        y = TransposedConvolution.apply(x, weight, bias, geom=geom, out_shape=out_shape)
    else:
        y = TransposedConvolutionFused.apply(x, weight, bias, geom=geom, out_shape=out_shape,
                                             kernel=kernel)
    return unbatched(y, was_unbatched)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution of input (N, C_in, L) with weight (C_in, C_out/groups, k)
    (torch.nn.functional.conv_transpose1d): the gradient of conv1d with respect to its input."""
    return _transposed_convolution("conv_transpose1d", 1, input, weight, bias, stride, padding,
                                   output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution ("deconvolution") of input (N, C_in, H, W) with weight
    (C_in, C_out/groups, kh, kw) (torch.nn.functional.conv_transpose2d): the gradient of
    conv2d with respect to its input. Output size per axis:
    (H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    return _transposed_convolution("conv_transpose2d", 2, input, weight, bias, stride, padding,
                                   output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """3-D transposed convolution of input (N, C_in, D, H, W) with weight
    (C_in, C_out/groups, kd, kh, kw) (torch.nn.functional.conv_transpose3d)."""
    return _transposed_convolution("conv_transpose3d", 3, input, weight, bias, stride, padding,
                                   output_padding, groups, dilation)
