"""2-D convolution and transposed convolution, as im2col + one matrix product.

A convolution is linear in its input and in its weight, so its whole calculus is three
linear maps, each written once below:

    conv2d_forward(x, w)         y  = conv(x, w)           (the op itself)
    conv2d_input_grad(gy, w)     gx = conv^T(gy, w)        (adjoint in x: col2im)
    conv2d_weight_grad(x, gy)    gw = adjoint in w         (a matrix product)

A transposed convolution *is* the adjoint in x, so `conv_transpose2d` runs
`conv2d_input_grad` forward, and its backward is `conv2d_forward` (for the input) and
`conv2d_weight_grad` with the roles of x and y swapped (for the weight).

im2col: the sliding windows of the padded input are a strided view (no copy) of shape
(N, C, Ho, Wo, kh, kw); one copy lays them out as the matrix (G, C/G*kh*kw, N*Ho*Wo), and
the weight (O, C/G, kh, kw) as (G, O/G, C/G*kh*kw), so the convolution of a whole batch is
one (batched over groups) matrix product. col2im, the adjoint, adds the column gradient back
into the input: one strided slice per kernel offset (kh*kw adds, each over the whole batch).
Backward keeps the input and the weight, never the columns: it rebuilds them when the
weight's gradient needs them (they are up to kh*kw times larger than the input).

Second derivatives: the helpers take the array namespace `xp` and use only NumPy's array
API (sliding_window_view, slices, matmul), so under create_graph the same backward runs on
the differentiable namespace and is recorded, to be differentiated again.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from .shape import squeeze, unsqueeze

# stride, dilation: (sh, sw); padding: ((top, bottom), (left, right)); groups: int
Geometry = namedtuple("Geometry", ["stride", "padding", "dilation", "groups"])


# ----------------------------------------------------------------------------- arguments
def pair(op, name, value, minimum):
    """An int or a pair of ints as a validated (h, w) tuple (PyTorch's _pair)."""
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def output_size(size, kernel, stride, pad_total, dilation):
    """Number of window positions along one axis (the floor formula of every conv/pool)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def batched(op, input):
    """(N, C, H, W) as is; an unbatched (C, H, W) gets a batch dimension of 1 (as PyTorch)."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return unsqueeze(input, 0), True
    raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                     f"{tuple(input.shape)}")


def unbatched(output, was_unbatched):
    return squeeze(output, 0) if was_unbatched else output


# ----------------------------------------------------------------------------- im2col / col2im
def pad_array(xp, x, padding, value=0.0):
    """x (N, C, H, W) surrounded by `value`: padding is ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    n, c, h, w = x.shape
    out = xp.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def windows(xp, xpad, kernel, stride, dilation, out_hw):
    """The sliding windows of an (already padded) xpad (N, C, Hp, Wp) as a view of shape
    (N, C, Ho, Wo, kh, kw): element [n, c, i, j, a, b] is xpad[n, c, i*sh + a*dh, j*sw + b*dw].
    Nothing is copied: NumPy's sliding_window_view is a strided view, taken here over the
    dilated kernel's span and then subsampled by the stride and the dilation."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = xp.lib.stride_tricks.sliding_window_view(xpad, span, axis=(2, 3))
    return view[:, :, :sh * (ho - 1) + 1:sh, :sw * (wo - 1) + 1:sw, ::dh, ::dw]


def col2im(xp, cols, x_shape, stride, padding, dilation):
    """The adjoint of `windows` after padding: add the window gradient cols
    (N, C, Ho, Wo, kh, kw) back onto the positions of x (N, C, H, W) they were read from,
    one strided slice per kernel offset (kh*kw adds, each over the whole batch)."""
    n, c, h, w = x_shape
    ho, wo, kh, kw = cols.shape[2:]
    (sh, sw), (dh, dw) = stride, dilation
    (top, bottom), (left, right) = padding
    gpad = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + sh * (ho - 1) + 1, sh)
            columns = slice(b * dw, b * dw + sw * (wo - 1) + 1, sw)
            gpad[:, :, rows, columns] += cols[:, :, :, :, a, b]
    return xp.ascontiguousarray(gpad[:, :, top:top + h, left:left + w])


def im2col(xp, x, kernel, geom, out_hw):
    """x (N, C, H, W) -> the column matrix (G, C/G*kh*kw, N*Ho*Wo) (one copy)."""
    n, c = x.shape[:2]
    g = geom.groups
    view = windows(xp, pad_array(xp, x, geom.padding), kernel, geom.stride, geom.dilation,
                   out_hw)
    view = view.reshape(n, g, c // g, *out_hw, *kernel).transpose(1, 2, 5, 6, 0, 3, 4)
    return xp.ascontiguousarray(view).reshape(g, -1, n * out_hw[0] * out_hw[1])


def to_gemm(xp, y, groups):
    """y (N, O, Ho, Wo) -> (G, O/G, N*Ho*Wo), the layout of the product's result."""
    n, o, ho, wo = y.shape
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * ho * wo)


def from_gemm(xp, m, n, out_hw):
    """(G, O/G, N*Ho*Wo) -> y (N, O, Ho, Wo), contiguous."""
    y = m.reshape(-1, n, *out_hw).transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(y)


# ----------------------------------------------------------------------------- the three maps
def conv2d_forward(xp, x, w, geom, out_hw=None):
    """y[n, o] = sum over the input channels of o's group and the kernel of x * w."""
    g = geom.groups
    o, cg, kh, kw = w.shape
    if out_hw is None:
        out_hw = tuple(output_size(x.shape[2 + i], w.shape[2 + i], geom.stride[i],
                                   sum(geom.padding[i]), geom.dilation[i]) for i in range(2))
    cols = im2col(xp, x, (kh, kw), geom, out_hw)
    return from_gemm(xp, w.reshape(g, o // g, cg * kh * kw) @ cols, x.shape[0], out_hw)


def conv2d_input_grad(xp, gy, w, x_shape, geom):
    """gx = the adjoint of conv2d_forward in x: columns W^T @ gy, scattered back by col2im."""
    g = geom.groups
    o, cg, kh, kw = w.shape
    n, _, ho, wo = gy.shape
    gcols = w.reshape(g, o // g, cg * kh * kw).transpose(0, 2, 1) @ to_gemm(xp, gy, g)
    gcols = gcols.reshape(g, cg, kh, kw, n, ho, wo).transpose(4, 0, 1, 5, 6, 2, 3)
    return col2im(xp, gcols.reshape(n, g * cg, ho, wo, kh, kw), x_shape, geom.stride,
                  geom.padding, geom.dilation)


def conv2d_weight_grad(xp, x, gy, w_shape, geom):
    """gw = the adjoint of conv2d_forward in w: gy @ columns^T, summed over batch and space."""
    cols = im2col(xp, x, w_shape[2:], geom, gy.shape[2:])
    return (to_gemm(xp, gy, geom.groups) @ cols.transpose(0, 2, 1)).reshape(w_shape)


def bias_grad(g):
    return g.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------- the ops
class Convolution(Function):
    @staticmethod
    def forward(ctx, x, w, bias, *, geom):
        ctx.geom = geom
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              w if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape = x.shape, w.shape
        y = conv2d_forward(ctx.xp, x, w, geom)
        if bias is not None:
            y += bias.reshape(-1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = conv2d_input_grad(ctx.xp, g, w, ctx.x_shape, ctx.geom) if need_x else None
        gw = conv2d_weight_grad(ctx.xp, x, g, ctx.w_shape, ctx.geom) if need_w else None
        return gx, gw, bias_grad(g) if need_b else None


class TransposedConvolution(Function):
    """The adjoint of Convolution in its input, with w (in, out/groups, kh, kw) as the
    convolution's weight."""

    @staticmethod
    def forward(ctx, x, w, bias, *, geom, out_shape):
        ctx.geom = geom
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              w if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape = x.shape, w.shape
        y = conv2d_input_grad(ctx.xp, x, w, out_shape, geom)
        if bias is not None:
            y += bias.reshape(-1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = conv2d_forward(ctx.xp, g, w, ctx.geom, out_hw=ctx.x_shape[2:]) if need_x else None
        gw = conv2d_weight_grad(ctx.xp, g, x, ctx.w_shape, ctx.geom) if need_w else None
        return gx, gw, bias_grad(g) if need_b else None


# ----------------------------------------------------------------------------- public API
def _check_weight(op, weight):
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {tuple(weight.shape)}")


def _check(op, input, weight, bias, groups, in_channels, out_channels):
    """Validate a convolution's operands; in/out_channels are what the weight implies."""
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(f"{op}: input ({input.dtype}), weight ({weight.dtype})"
                        + (f" and bias ({bias.dtype})" if bias is not None else "")
                        + " must have the same dtype")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if input.shape[1] % groups or out_channels % groups:
        raise ValueError(f"{op}: input channels ({input.shape[1]}) and output channels "
                         f"({out_channels}) must both be divisible by groups={groups}")
    if input.shape[1] != in_channels:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has {input.shape[1]} "
                         f"channels, but weight of shape {tuple(weight.shape)} with "
                         f"groups={groups} expects {in_channels}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{op}: bias of shape {tuple(bias.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected ({out_channels},))")


def _conv_padding(op, padding, kernel, stride, dilation):
    """An int, a pair, 'valid' or 'same' as ((top, bottom), (left, right)). 'same' keeps the
    input's size; an odd total goes to the bottom/right, as in PyTorch."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = pair(op, "padding", padding, 0)
    return (ph, ph), (pw, pw)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of input (N, C, H, W) with weight (O, C/groups, kh, kw)
    (torch.nn.functional.conv2d); padding is an int, a pair, 'valid' or 'same'."""
    op = "conv2d"
    x, was_unbatched = batched(op, input)
    _check_weight(op, weight)
    _check(op, x, weight, bias, groups, weight.shape[1] * groups, weight.shape[0])
    stride, dilation = pair(op, "stride", stride, 1), pair(op, "dilation", dilation, 1)
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(op, padding, kernel, stride, dilation)
    for i, name in enumerate("HW"):
        reach = dilation[i] * (kernel[i] - 1) + 1
        if reach > x.shape[2 + i] + sum(pads[i]):
            raise ValueError(
                f"{op}: kernel of shape {kernel} with dilation {dilation} spans {reach} along "
                f"{name}, more than the padded input ({x.shape[2 + i]} + {sum(pads[i])}) of "
                f"input shape {tuple(input.shape)}")
    geom = Geometry(stride, pads, dilation, int(groups))
    return unbatched(Convolution.apply(x, weight, bias, geom=geom), was_unbatched)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution ("deconvolution") of input (N, C_in, H, W) with weight
    (C_in, C_out/groups, kh, kw) (torch.nn.functional.conv_transpose2d): the gradient of
    conv2d with respect to its input. Output size per axis:
    (H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    x, was_unbatched = batched(op, input)
    _check_weight(op, weight)
    _check(op, x, weight, bias, groups, weight.shape[0], weight.shape[1] * groups)
    stride, dilation = pair(op, "stride", stride, 1), pair(op, "dilation", dilation, 1)
    ph, pw = pair(op, "padding", padding, 0)
    extra = pair(op, "output_padding", output_padding, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than either stride "
                         f"{stride} or dilation {dilation}")
    out_hw = tuple((x.shape[2 + i] - 1) * stride[i] - 2 * (ph, pw)[i]
                   + dilation[i] * (weight.shape[2 + i] - 1) + extra[i] + 1 for i in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} with weight of shape "
                         f"{tuple(weight.shape)} gives an empty output of size {out_hw}")
    geom = Geometry(stride, ((ph, ph), (pw, pw)), dilation, int(groups))
    out_shape = (x.shape[0], weight.shape[1] * groups, *out_hw)
    y = TransposedConvolution.apply(x, weight, bias, geom=geom, out_shape=out_shape)
    return unbatched(y, was_unbatched)
