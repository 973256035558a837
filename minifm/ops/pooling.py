"""Pooling of (N, C, *spatial) inputs with 1, 2 or 3 spatial dimensions.

max pooling and average pooling reuse the convolution's windows (ops/conv.py), in any number
of spatial dimensions: the forward reduces the strided view (N, C, *out, *kernel) over the
kernel axes, and the backward builds the gradient of that view and hands it to col2im, the
same scatter-add the convolution's input gradient uses. The 1-d functions run the 2-d ones
on an (N, C, 1, L) view, as PyTorch does (their grad_fn is PyTorch's SqueezeBackward1).
2-d max pooling of NumPy arrays runs minifm.kernels.pool_cpu where kernels.select("max_pool")
picks it (one pass each way, the argmax kept from forward); this code is its reference.

return_indices gives each maximum's flat position in its (unpadded) input plane, PyTorch's
convention, which max_unpool reads: unpooling scatters each value to its position, and its
gradient gathers from there.

adaptive average pooling is separable: along each spatial axis, each output position
averages a set of input positions, so it is a small (out, in) matrix applied along every
axis (in 2-d, A_h @ x @ A_w^T), and its gradient applies the transposed matrices. (As a
matrix product, an inf in the input spreads NaN (0 * inf) over its row of outputs, where
PyTorch gives inf.) Adaptive max pooling's windows differ in size, so it loops over the
output positions (few, in practice) to find each window's maximum, then gathers.
"""
from __future__ import annotations

import itertools
import math
from collections import namedtuple

import numpy as np

from .. import backend, kernels
from ..autograd import Function
from ..tensor import Tensor
from .conv import batched, col2im, ntuple, output_size, pad_array, unbatched, windows
from .shape import squeeze, unsqueeze

# kernel, stride, dilation, out_size: one int per spatial dim; pads: (before, after) per dim
Window = namedtuple("Window", ["kernel", "stride", "pads", "dilation", "out_size"])


def _xp(array):
    return backend.array_module(backend.device_of_array(array))


def _check_floating(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got {backend.dtype_name(x.dtype)}")


# ----------------------------------------------------------------------------- window geometry
def _check_positions(op, x, first=2):
    """PyTorch pools an empty batch, never an input (N, C, *spatial) with no positions (nor,
    first=1, no channels)."""
    if 0 in x.shape[first:]:
        raise RuntimeError(f"{op}: Expected input's non-batch dimensions to have positive "
                           f"length, but got input of shape {tuple(x.shape)}")


def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated kernel, stride, padding, dilation and the output size (PyTorch's rules) for
    input (N, C, *spatial).

    With ceil_mode the last window may start inside the input but run past its padded end;
    the padding after the input grows by that overhang, for the windows view."""
    _check_floating(op, input)
    _check_positions(op, input, first=1)
    nd = input.ndim - 2
    kernel = ntuple(op, "kernel_size", kernel_size, 1, nd)
    stride = kernel if stride is None else ntuple(op, "stride", stride, 1, nd)
    padding = ntuple(op, "padding", padding, 0, nd)
    dilation = ntuple(op, "dilation", dilation, 1, nd)
    out_size, overhang = [], []
    for i in range(nd):
        size, k, s, p, d = input.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]
        if 2 * p > d * (k - 1) + 1:
            raise RuntimeError(f"{op}: padding {padding} should be at most half of the "
                             f"effective kernel size {kernel} (dilation {dilation})")
        n = output_size(size, k, s, 2 * p + (s - 1 if ceil_mode else 0), d)
        if ceil_mode and (n - 1) * s >= size + p:  # the last window would start in the padding
            n -= 1
        if n < 1:
            raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} is too small for "
                             f"kernel {kernel} with padding {padding} and dilation {dilation}")
        out_size.append(n)
        overhang.append(max(0, (n - 1) * s + d * (k - 1) + 1 - (size + 2 * p)))
    pads = tuple((p, p + e) for p, e in zip(padding, overhang))
    return Window(kernel, stride, pads, dilation, tuple(out_size))


def _as_2d(op, input, nd_args):
    """A 1-d pooling's input (N, C, L) or (C, L) as (N, C, 1, L), and its int-or-1-tuple
    arguments as pairs for the 2-d function: (name, value, minimum, value for the new axis)."""
    x, was_unbatched = batched(op, input, 1)
    pairs = [None if value is None else (extra,) + ntuple(op, name, value, minimum, 1)
             for name, value, minimum, extra in nd_args]
    return unsqueeze(x, 2), was_unbatched, pairs


def _from_2d(y, was_unbatched):
    return unbatched(squeeze(y, 2), was_unbatched)


# ----------------------------------------------------------------------------- max pooling
def _window_argmax(xp, x, window):
    """The windows of x padded with -inf, one copy with the kernel positions flattened (where
    argmax runs fastest), and each window's argmax in it (its first maximum; a NaN is a
    maximum)."""
    n, c = x.shape[:2]
    view = windows(xp, pad_array(xp, x, window.pads, value=-np.inf), window.kernel,
                   window.stride, window.dilation, window.out_size)
    view = view.reshape(n, c, *window.out_size, math.prod(window.kernel))
    return view, view.argmax(axis=-1)


def _input_positions(xp, argmax, in_size, window):
    """The flat position in the unpadded input plane (prod(in_size)) of each window's
    argmax: PyTorch's return_indices."""
    nd = len(in_size)
    flat = 0
    for d, offset in enumerate(xp.unravel_index(argmax, window.kernel)):
        start = xp.arange(window.out_size[d]) * window.stride[d] - window.pads[d][0]
        start = start.reshape((-1,) + (1,) * (nd - 1 - d))
        flat = flat * in_size[d] + start + offset * window.dilation[d]
    return flat.astype(np.int64)


class MaxPool2DWithIndices(Function):
    """Max over each window; the gradient goes to the first maximum of the window (as
    PyTorch), and a NaN in a window is its maximum. Any number of spatial dimensions.

    `found`: None, or a list the forward appends the windows' argmax to, for return_indices
    (PyTorch's op has the indices as a second output; a Function here has one output, and
    the argmax is found once either way)."""

    @staticmethod
    def forward(ctx, x, *, window, found=None):
        view, argmax = _window_argmax(ctx.xp, x, window)
        ctx.argmax, ctx.x_shape, ctx.window = argmax, x.shape, window
        if found is not None:
            found.append(argmax)
        return ctx.xp.take_along_axis(view, argmax[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx, g):
        xp, window = ctx.xp, ctx.window
        offsets = xp.arange(math.prod(window.kernel))
        gcols = xp.where(offsets == ctx.argmax[..., None], g[..., None], 0)
        gcols = gcols.astype(g.dtype, copy=False).reshape(*g.shape, *window.kernel)
        return col2im(xp, gcols, ctx.x_shape, window.stride, window.pads, window.dilation)


class MaxPool3DWithIndices(MaxPool2DWithIndices):
    """max_pool3d: the same, named as PyTorch's node."""


class MaxPool2DWithIndicesFused(Function):
    """2-d max pooling by a kernel module (minifm.kernels.pool_cpu): one pass over the windows
    forward, keeping each window's argmax in the reference's layout, and one pass over the
    gradient backward; under create_graph the reference's backward runs on the same argmax."""
    node_name = "MaxPool2DWithIndicesBackward0"
    reference = MaxPool2DWithIndices

    @staticmethod
    def forward(ctx, x, *, window, kernel, found=None):
        y, argmax = kernel.max_pool2d_forward(x, window.kernel, window.stride, window.pads,
                                              window.dilation, window.out_size)
        ctx.argmax, ctx.x_shape, ctx.window, ctx.kernel = argmax, x.shape, window, kernel
        if found is not None:
            found.append(argmax)
        return y

    @staticmethod
    def backward(ctx, g):
        window = ctx.window
        return ctx.kernel.max_pool2d_backward(g, ctx.argmax, ctx.x_shape, window.kernel,
                                              window.stride, window.pads, window.dilation)


def _max_pool(op, function, x, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    window = _pool_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    kernel = kernels.select("max_pool", x.device.type, dtype=x.dtype, nd=x.ndim - 2)
    found = [] if return_indices else None
    if kernel is None:
        y = function.apply(x, window=window, found=found)
    else:
        y = MaxPool2DWithIndicesFused.apply(x, window=window, kernel=kernel, found=found)
    if not return_indices:
        return y, None
    indices = _input_positions(_xp(x._data), found[0], x.shape[2:], window)
    return y, Tensor._make(indices, x.device)


def _with_indices(y, indices, return_indices, finish):
    return (finish(y), finish(indices)) if return_indices else finish(y)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool1d of (N, C, L): max_pool2d over (N, C, 1, L)."""
    op = "max_pool1d"
    x, was_unbatched, (k, s, p, d) = _as_2d(op, input, [
        ("kernel_size", kernel_size, 1, 1), ("stride", stride, 1, 1),
        ("padding", padding, 0, 0), ("dilation", dilation, 1, 1)])
    y, indices = _max_pool(op, MaxPool2DWithIndices, x, k, s, p, d, ceil_mode, return_indices)
    return _with_indices(y, indices, return_indices, lambda t: _from_2d(t, was_unbatched))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d: the input is padded with -inf; return_indices adds
    each maximum's flat position in its input plane (H*W)."""
    op = "max_pool2d"
    x, was_unbatched = batched(op, input, 2)
    y, indices = _max_pool(op, MaxPool2DWithIndices, x, kernel_size, stride, padding, dilation,
                           ceil_mode, return_indices)
    return _with_indices(y, indices, return_indices, lambda t: unbatched(t, was_unbatched))


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool3d of (N, C, D, H, W), as max_pool2d."""
    op = "max_pool3d"
    x, was_unbatched = batched(op, input, 3)
    y, indices = _max_pool(op, MaxPool3DWithIndices, x, kernel_size, stride, padding, dilation,
                           ceil_mode, return_indices)
    return _with_indices(y, indices, return_indices, lambda t: unbatched(t, was_unbatched))


# ----------------------------------------------------------------------------- max unpooling
def _planes(a):
    """(N, C, *spatial) as (N*C, prod(spatial))."""
    return a.reshape(a.shape[0] * a.shape[1], math.prod(a.shape[2:]))


class MaxUnpool2D(Function):
    """Each value of x written at its flat position (indices) in a zero output plane; the
    gradient of x reads those positions back. Any number of spatial dimensions."""

    @staticmethod
    def forward(ctx, x, *, indices, out_shape):
        xp = ctx.xp
        rows = xp.arange(out_shape[0] * out_shape[1])[:, None]
        ctx.rows, ctx.indices, ctx.x_shape = rows, _planes(indices), x.shape
        y = xp.zeros((rows.shape[0], math.prod(out_shape[2:])), dtype=x.dtype)
        y[rows, ctx.indices] = _planes(x)
        return y.reshape(out_shape)

    @staticmethod
    def backward(ctx, g):
        return _planes(g)[ctx.rows, ctx.indices].reshape(ctx.x_shape)


def _unpool_size(op, x, kernel, stride, padding, output_size):
    """PyTorch's _unpool_output_size: (in - 1)*stride - 2*padding + kernel, or output_size
    (its last nd entries) when it is within a stride of that."""
    nd = len(kernel)
    default = tuple((x.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + kernel[d]
                    for d in range(nd))
    if output_size is None:
        return default
    size = tuple(output_size)
    if len(size) == nd + 2:
        size = size[2:]
    if len(size) != nd:
        raise ValueError(f"{op}: output_size should be a sequence containing {nd} or {nd + 2} "
                         f"elements, but it has a length of '{len(tuple(output_size))}'")
    for d in range(nd):
        low, high = default[d] - stride[d], default[d] + stride[d]
        if not low < size[d] < high:
            raise ValueError(f'{op}: invalid output_size "{tuple(output_size)}" (dim {d} must '
                             f"be between {low} and {high})")
    return size


def _max_unpool(op, x, indices, kernel, stride, padding, output_size):
    if tuple(indices.shape) != tuple(x.shape):
        raise RuntimeError(f"{op}: expected indices of the input's shape {tuple(x.shape)}, "
                           f"got {tuple(indices.shape)}")
    if indices.dtype != np.int64:
        raise RuntimeError(f"{op}: expected int64 indices, got "
                           f"{backend.dtype_name(indices.dtype)}")
    size = _unpool_size(op, x, kernel, stride, padding, output_size)
    raw = indices._data
    if raw.size and (raw.min() < 0 or raw.max() >= math.prod(size)):
        raise RuntimeError(f"{op}: found an invalid max index {int(raw.max())} (output "
                           f"volumes are of size {'x'.join(map(str, size))})")
    return MaxUnpool2D.apply(x, indices=raw, out_shape=(*x.shape[:2], *size))


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """torch.nn.functional.max_unpool1d: the partial inverse of max_pool1d."""
    op = "max_unpool1d"
    x, was_unbatched, (k, s, p) = _as_2d(op, input, [
        ("kernel_size", kernel_size, 1, 1), ("stride", stride, 1, 1),
        ("padding", padding, 0, 0)])
    s = s or k
    (length,) = _unpool_size(op, squeeze(x, 2), k[1:], s[1:], p[1:], output_size)
    i = unsqueeze(batched(op, indices, 1)[0], 2)
    return _from_2d(_max_unpool(op, x, i, k, s, p, (1, length)), was_unbatched)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """torch.nn.functional.max_unpool2d: the partial inverse of max_pool2d; positions that
    held no maximum are zero."""
    op = "max_unpool2d"
    x, was_unbatched = batched(op, input, 2)
    i = batched(op, indices, 2)[0]
    kernel = ntuple(op, "kernel_size", kernel_size, 1, 2)
    stride = kernel if stride is None else ntuple(op, "stride", stride, 1, 2)
    padding = ntuple(op, "padding", padding, 0, 2)
    y = _max_unpool(op, x, i, kernel, stride, padding, output_size)
    return unbatched(y, was_unbatched)


# ----------------------------------------------------------------------------- average pooling
def _divisor_1d(size, k, s, p, n, count_include_pad):
    """How many positions each of the n windows along one axis averages over (PyTorch's
    rule: padding counts or not, the ceil_mode overhang past the padding never counts)."""
    start = np.arange(n) * s - p
    end = np.minimum(start + k, size + p)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


def _window_sum(view, nd):
    """The sum over the trailing nd (kernel) axes of a windows view (N, C, *out, *kernel),
    as one add per kernel position, each over the whole output: NumPy's reduction over the
    small strided trailing axes ran 5-13x slower (float32, k2 windows of 64x32x28x28: 21.7 ms
    against 1.7 ms, PyTorch's avg_pool2d 7.7 ms; k3 of 16x64x32x32: 8.7 against 1.8 ms).
    Except for one large window per plane (a global pool), a reduction NumPy runs over
    contiguous memory: 64x64x8x8, 0.18 ms against 0.71 ms by 64 adds (16x512x2x2: 0.19 ms
    against 0.04 ms by 4)."""
    window_axes = tuple(range(view.ndim - nd, view.ndim))
    if math.prod(view.shape[2:view.ndim - nd]) == 1 and math.prod(view.shape[-nd:]) > 16:
        return view.sum(axis=window_axes)
    positions = itertools.product(*(range(view.shape[axis]) for axis in window_axes))
    total = view[(...,) + next(positions)].copy()
    for position in positions:
        total += view[(...,) + position]
    return total


def _tiles_input(window, x_shape):
    """Whether the windows tile the input: stride = kernel, no padding or dilation, and
    out * kernel = size along every axis (then the gradient spreads by one broadcast instead
    of one add per kernel position: 64x32x28x28 k2, about 5 against 7 ms)."""
    return (window.stride == window.kernel and all(d == 1 for d in window.dilation)
            and all(p == (0, 0) for p in window.pads)
            and all(o * k == n for o, k, n in zip(window.out_size, window.kernel, x_shape[2:])))


class AvgPool2D(Function):
    """The mean of each window (any number of spatial dimensions); every position of a
    window receives the same share of its gradient."""

    @staticmethod
    def forward(ctx, x, *, window, divisor):
        xp = ctx.xp
        view = windows(xp, pad_array(xp, x, window.pads), window.kernel, window.stride,
                       window.dilation, window.out_size)
        ctx.x_shape, ctx.window, ctx.divisor = x.shape, window, divisor
        total = _window_sum(view, len(window.kernel))
        total /= divisor
        return total

    @staticmethod
    def backward(ctx, g):
        xp, window = ctx.xp, ctx.window
        share = g / ctx.divisor
        nd = len(window.kernel)
        if _tiles_input(window, ctx.x_shape):  # each input position in exactly one window
            tiles = tuple(n for o, k in zip(window.out_size, window.kernel) for n in (o, k))
            spread = tuple(n for o in window.out_size for n in (o, 1))
            return xp.broadcast_to(share.reshape(*g.shape[:2], *spread),
                                   (*g.shape[:2], *tiles)).reshape(ctx.x_shape)
        gcols = xp.broadcast_to(share[(...,) + (None,) * nd], (*g.shape, *window.kernel))
        return col2im(xp, gcols, ctx.x_shape, window.stride, window.pads, window.dilation)


class AvgPool3D(AvgPool2D):
    """avg_pool3d: the same, named as PyTorch's node."""


def _avg_pool(op, function, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    window = _pool_geometry(op, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError(f"{op}: divisor_override must not be zero")
        divisor = np.full(window.out_size, divisor_override)
    else:
        per_axis = [_divisor_1d(x.shape[2 + i], window.kernel[i], window.stride[i],
                                window.pads[i][0], window.out_size[i], count_include_pad)
                    for i in range(len(window.kernel))]
        divisor = per_axis[0]
        for d in per_axis[1:]:
            divisor = np.multiply.outer(divisor, d)
    divisor = _xp(x._data).asarray(divisor.astype(x.dtype))
    return function.apply(x, window=window, divisor=divisor)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """torch.nn.functional.avg_pool1d of (N, C, L): avg_pool2d over (N, C, 1, L)."""
    op = "avg_pool1d"
    x, was_unbatched, (k, s, p) = _as_2d(op, input, [
        ("kernel_size", kernel_size, 1, 1), ("stride", stride, 1, 1),
        ("padding", padding, 0, 0)])
    y = _avg_pool(op, AvgPool2D, x, k, s, p, ceil_mode, count_include_pad, None)
    return _from_2d(y, was_unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool2d: the mean of each window (zero padding)."""
    op = "avg_pool2d"
    x, was_unbatched = batched(op, input, 2)
    y = _avg_pool(op, AvgPool2D, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override)
    return unbatched(y, was_unbatched)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool3d of (N, C, D, H, W), as avg_pool2d."""
    op = "avg_pool3d"
    x, was_unbatched = batched(op, input, 3)
    y = _avg_pool(op, AvgPool3D, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override)
    return unbatched(y, was_unbatched)


# ----------------------------------------------------------------------------- adaptive pooling
def _adaptive_sizes(op, x, output_size):
    """output_size (an int, or one entry per spatial dim, None keeping that input size)."""
    _check_positions(op, x)
    nd = x.ndim - 2
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    if len(sizes) != nd:
        raise RuntimeError(f"{op}: output_size must be an int or a tuple of {nd}, got "
                         f"{output_size!r}")
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    if any(not isinstance(s, (int, np.integer)) or s < 0 for s in sizes):
        raise RuntimeError(f"{op}: output_size must hold non-negative ints, got "
                           f"{output_size!r}")
    return sizes


def _adaptive_bounds(size, out):
    """Output position i covers input positions floor(i*size/out) .. ceil((i+1)*size/out)-1."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_matrix(size, out, dtype):
    """The (out, size) matrix whose row i averages output position i's window."""
    a = np.zeros((out, size), dtype=dtype)
    for i, (start, end) in enumerate(_adaptive_bounds(size, out)):
        a[i, start:end] = 1.0 / (end - start)
    return a


def _along_axes(xp, x, matrices):
    """x with its d-th spatial axis multiplied by matrices[d] (out_d, in_d), for each d."""
    nd = len(matrices)
    for d, a in enumerate(matrices):
        axis = x.ndim - nd + d
        x = x @ a.T if d == nd - 1 else xp.moveaxis(xp.moveaxis(x, axis, -1) @ a.T, -1, axis)
    return x


class AdaptiveAvgPool2D(Function):
    """The mean of each window. Where the windows tile the input (each output size divides
    the input's: ResNet's global pool), an average pool with kernel = stride = input //
    output (`tiles`, its window geometry); else, in 2-d, y = A_h @ x @ A_w^T for x (N, C, H,
    W), A_h (Ho, H) and A_w (Wo, W) holding 1/window-size inside the windows, one matrix per
    spatial axis (measured on the global pool of 16x512x2x2, forward: 0.93 ms as products,
    PyTorch 0.17 ms; see the README for the tiled figure)."""

    @staticmethod
    def forward(ctx, x, *, matrices, tiles):
        ctx.matrices, ctx.tiles = matrices, tiles
        if tiles is not None:
            return AvgPool2D.forward(ctx, x, window=tiles, divisor=math.prod(tiles.kernel))
        return _along_axes(ctx.xp, x, matrices)

    @staticmethod
    def backward(ctx, g):
        if ctx.tiles is not None:
            return AvgPool2D.backward(ctx, g)
        return _along_axes(ctx.xp, g, [a.T for a in ctx.matrices])


class AdaptiveAvgPool3D(AdaptiveAvgPool2D):
    """adaptive_avg_pool3d: the same, named as PyTorch's node."""


def _adaptive_avg_pool(op, function, x, output_size):
    _check_floating(op, x)
    sizes = _adaptive_sizes(op, x, output_size)
    inputs = x.shape[2:]
    if all(out > 0 and size % out == 0 for size, out in zip(inputs, sizes)):
        kernel = tuple(size // out for size, out in zip(inputs, sizes))
        tiles = Window(kernel, kernel, ((0, 0),) * len(kernel), (1,) * len(kernel), sizes)
        return function.apply(x, matrices=None, tiles=tiles)
    xp = _xp(x._data)
    matrices = [xp.asarray(_adaptive_matrix(x.shape[2 + i], s, x.dtype))
                for i, s in enumerate(sizes)]
    return function.apply(x, matrices=matrices, tiles=None)


def adaptive_avg_pool1d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool1d of (N, C, L) to length output_size."""
    op = "adaptive_avg_pool1d"
    x, was_unbatched, (size,) = _as_2d(op, input, [("output_size", output_size, 0, 1)])
    return _from_2d(_adaptive_avg_pool(op, AdaptiveAvgPool2D, x, size), was_unbatched)


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d: output_size is an int or (Ho, Wo), where None
    keeps the input's size. Windows may overlap and differ in size when sizes don't divide."""
    op = "adaptive_avg_pool2d"
    x, was_unbatched = batched(op, input, 2)
    return unbatched(_adaptive_avg_pool(op, AdaptiveAvgPool2D, x, output_size), was_unbatched)


def adaptive_avg_pool3d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool3d of (N, C, D, H, W), as adaptive_avg_pool2d."""
    op = "adaptive_avg_pool3d"
    x, was_unbatched = batched(op, input, 3)
    return unbatched(_adaptive_avg_pool(op, AdaptiveAvgPool3D, x, output_size), was_unbatched)


def _adaptive_argmax(xp, x, sizes):
    """The flat input-plane position of each adaptive window's first maximum (a NaN is a
    maximum), one output position at a time."""
    n, c, *in_size = x.shape
    indices = xp.empty((n, c, *sizes), dtype=np.int64)
    bounds = [_adaptive_bounds(size, out) for size, out in zip(in_size, sizes)]
    for position in itertools.product(*(range(s) for s in sizes)):
        box = [bounds[d][i] for d, i in enumerate(position)]
        window = x[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in box)]
        offsets = xp.unravel_index(_planes(window).argmax(axis=-1).reshape(n, c),
                                   tuple(b - a for a, b in box))
        flat = 0
        for d, ((start, _), offset) in enumerate(zip(box, offsets)):
            flat = flat * in_size[d] + start + offset
        indices[(slice(None), slice(None)) + position] = flat
    return indices


class AdaptiveMaxPool2D(Function):
    """y = x at the given flat input-plane positions (each window's maximum); the gradient
    adds back at those positions (windows may overlap)."""

    @staticmethod
    def forward(ctx, x, *, indices):
        xp = ctx.xp
        ctx.rows = xp.arange(x.shape[0] * x.shape[1])[:, None]
        ctx.indices, ctx.x_shape = _planes(indices), x.shape
        return _planes(x)[ctx.rows, ctx.indices].reshape(indices.shape)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        gx = xp.zeros((ctx.rows.shape[0], math.prod(ctx.x_shape[2:])), dtype=g.dtype)
        xp.add.at(gx, (ctx.rows, ctx.indices), _planes(g))
        return gx.reshape(ctx.x_shape)


def _adaptive_max_pool(op, x, output_size, return_indices):
    _check_floating(op, x)
    sizes = _adaptive_sizes(op, x, output_size)
    indices = _adaptive_argmax(_xp(x._data), x._data, sizes)
    y = AdaptiveMaxPool2D.apply(x, indices=indices)
    return y, Tensor._make(indices, x.device) if return_indices else None


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool1d of (N, C, L) to length output_size."""
    op = "adaptive_max_pool1d"
    x, was_unbatched, (size,) = _as_2d(op, input, [("output_size", output_size, 0, 1)])
    y, indices = _adaptive_max_pool(op, x, size, return_indices)
    return _with_indices(y, indices, return_indices, lambda t: _from_2d(t, was_unbatched))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool2d: the maximum of each adaptive window
    (output_size as in adaptive_avg_pool2d); return_indices as in max_pool2d."""
    op = "adaptive_max_pool2d"
    x, was_unbatched = batched(op, input, 2)
    y, indices = _adaptive_max_pool(op, x, output_size, return_indices)
    return _with_indices(y, indices, return_indices, lambda t: unbatched(t, was_unbatched))


# ----------------------------------------------------------------------------- with indices
# PyTorch's `*_with_indices` functions: the pooling with return_indices=True, whatever the
# return_indices argument (which they accept, and ignore, as PyTorch's do).
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool2d(input, output_size, True)
