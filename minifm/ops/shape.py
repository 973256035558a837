"""Shape ops: views and rearrangements (reshape, permute, expand, ...), joining and splitting
(cat, stack, split, chunk), padding, repeat, flip, roll, tril/triu.

Each backward is the inverse rearrangement of the gradient. Expand needs none of its own:
its gradient is summed back to the input's shape by the engine's `unbroadcast`.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims, size_args


def _axis(op, dim, ndim):
    return normalize_dims(op, dim, ndim)[0] if ndim else 0


class Reshape(Function):
    view = True  # when the strides allow it; otherwise NumPy copies

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


def reshape(input, *shape):
    shape = size_args(shape)
    if shape == input._data.shape:
        return input
    try:
        if min(shape, default=0) < -1:  # NumPy would read any negative size as -1
            raise ValueError("sizes must be non-negative, or -1 once")
        return Reshape.apply(input, shape=shape)
    except (ValueError, TypeError) as err:
        raise RuntimeError(f"reshape: shape {list(shape)} is invalid for input of shape "
                           f"{tuple(input.shape)} ({input.numel()} elements): {err}") from None


def view(input, *shape):
    """Like reshape, but always a view: a shape the strides cannot express is an error (as
    in PyTorch), where reshape would copy."""
    out = reshape(input, *shape)
    if out is not input and out._view is None and input.numel() > 0:
        raise RuntimeError(
            f"view: shape {list(size_args(shape))} is not compatible with the input's size and "
            f"stride (shape {tuple(input.shape)}, strides in elements "
            f"{tuple(s // input._data.itemsize for s in input._data.strides)}): at least one "
            "dimension spans across two contiguous subspaces. Use .reshape(...) instead.")
    return out


class Permute(Function):
    view = True

    @staticmethod
    def forward(ctx, x, *, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


def permute(input, *dims):
    dims = size_args(dims)
    if len(dims) != input.ndim or sorted(d % max(input.ndim, 1) for d in dims) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {input.ndim} "
                         f"dimensions of a tensor of shape {tuple(input.shape)}")
    return Permute.apply(input, dims=tuple(d % input.ndim for d in dims))


def transpose(input, dim0, dim1):
    if input.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    a, b = _axis("transpose", dim0, input.ndim), _axis("transpose", dim1, input.ndim)
    dims = list(range(input.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(input, dims=tuple(dims))


def t(input):
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, got shape {tuple(input.shape)}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def movedim(input, source, destination):
    """Move dims `source` to positions `destination`, keeping the others in order (a view)."""
    src = normalize_dims("movedim", source, input.ndim)
    dst = normalize_dims("movedim", destination, input.ndim)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must have "
                         "the same number of dims")
    rest = iter(d for d in range(input.ndim) if d not in src)
    placed = dict(zip(dst, src))
    return permute(input, *[placed[i] if i in placed else next(rest) for i in range(input.ndim)])


def swapaxes(input, axis0, axis1):
    return transpose(input, axis0, axis1)


swapdims = swapaxes


def select(input, dim, index):
    """input[..., index, ...] along `dim`, a view with that dim removed."""
    axis = _axis("select", dim, input.ndim)
    if not -input.shape[axis] <= index < input.shape[axis]:
        raise IndexError(f"select: index {index} is out of range for dim {dim} of size "
                         f"{input.shape[axis]}")
    return input[(slice(None),) * axis + (index,)]


class Diagonal(Function):
    """The diagonal of the (dim1, dim2) planes, moved to the last dim: a strided view."""

    view = True

    @staticmethod
    def forward(ctx, x, *, offset, dim1, dim2):
        ctx.shape, ctx.args = x.shape, (offset, dim1, dim2)
        return _diagonal_view(ctx.xp, x, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        _diagonal_view(ctx.xp, grad, *ctx.args)[...] = g
        return grad


def _diagonal_view(xp, x, offset, dim1, dim2):
    """A writable view of x's diagonal (NumPy's own `diagonal` is read-only)."""
    start = [0] * x.ndim
    start[dim2 if offset >= 0 else dim1] = abs(offset)
    x = x[tuple(slice(s, None) for s in start)]
    n = max(min(x.shape[dim1], x.shape[dim2]), 0)
    keep = [d for d in range(x.ndim) if d not in (dim1, dim2)]
    shape = tuple(x.shape[d] for d in keep) + (n,)
    strides = tuple(x.strides[d] for d in keep) + (x.strides[dim1] + x.strides[dim2],)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def diagonal(input, offset=0, dim1=0, dim2=1):
    a, b = _axis("diagonal", dim1, input.ndim), _axis("diagonal", dim2, input.ndim)
    if a == b:
        raise ValueError(f"diagonal: dim1 and dim2 cannot be the same dimension ({dim1})")
    return Diagonal.apply(input, offset=offset, dim1=a, dim2=b)


def unsqueeze(input, dim):
    if not -input.ndim - 1 <= dim <= input.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of {input.ndim} dimensions")
    dim = dim % (input.ndim + 1)
    return reshape(input, input.shape[:dim] + (1,) + input.shape[dim:])


def squeeze(input, dim=None):
    if dim is None:
        return reshape(input, tuple(s for s in input.shape if s != 1))
    dims = normalize_dims("squeeze", dim, input.ndim)
    return reshape(input, tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1)))


def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    start, end = _axis("flatten", start_dim, input.ndim), _axis("flatten", end_dim, input.ndim)
    shape = input.shape[:start] + (-1,) + input.shape[end + 1:]
    return reshape(input, shape)


def unflatten(input, dim, sizes):
    dim = _axis("unflatten", dim, input.ndim)
    return reshape(input, input.shape[:dim] + tuple(sizes) + input.shape[dim + 1:])


class Expand(Function):
    view = True

    @staticmethod
    def forward(ctx, x, *, shape):
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # unbroadcast (in the engine) sums it back to the input's shape


def expand(input, *sizes):
    sizes = size_args(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                         f"number of dimensions ({input.ndim})")
    shape = tuple(input.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    try:
        if np.broadcast_shapes(input.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {tuple(input.shape)} to {sizes}") from None
    return input if shape == input.shape else Expand.apply(input, shape=shape)


def broadcast_to(input, shape):
    return expand(input, *shape)


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.xp.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, g):
        return g


def contiguous(input):
    return input if input._data.flags.c_contiguous else Contiguous.apply(input)


class Cat(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return ctx.xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.xp.split(g, ctx.bounds, axis=ctx.axis))


def _check_same(op, tensors):
    if len(tensors) == 0:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    first = tensors[0]
    for t in tensors[1:]:
        if t.device != first.device:
            raise RuntimeError(f"{op}: expected all tensors on the same device, got "
                               f"{first.device} and {t.device}")


def cat(tensors, dim=0):
    tensors = list(tensors)
    _check_same("cat", tensors)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = backend.promote_types(dtype, t.dtype)
    tensors = [t.to(dtype) for t in tensors]
    axis = _axis("cat", dim, tensors[0].ndim)
    ref = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != len(ref) or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != axis):
            raise ValueError(f"cat: sizes of tensors must match except in dimension {dim}, "
                             f"got {tuple(ref)} and {tuple(t.shape)}")
    return Cat.apply(*tensors, axis=axis)


concat = concatenate = cat


class Stack(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis, ctx.n = axis, len(xs)
        return ctx.xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.xp.moveaxis(g, ctx.axis, 0))


def stack(tensors, dim=0):
    tensors = list(tensors)
    _check_same("stack", tensors)
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(f"stack expects each tensor to be equal size, but got {tuple(shape)} "
                             f"and {tuple(t.shape)}")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = backend.promote_types(dtype, t.dtype)
    axis = dim % (len(shape) + 1)
    return Stack.apply(*[t.to(dtype) for t in tensors], axis=axis)


def narrow(input, dim, start, length):
    axis = _axis("narrow", dim, input.ndim)
    key = (slice(None),) * axis + (slice(start, start + length),)
    return input[key]


def split(input, split_size_or_sections, dim=0):
    axis = _axis("split", dim, input.ndim)
    size = input.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        lengths = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        lengths = list(split_size_or_sections)
        if sum(lengths) != size:
            raise ValueError(f"split: sections {lengths} do not sum to the size {size} of dim {dim}")
    starts = np.cumsum([0] + lengths[:-1])
    return _multi_output(narrow(input, axis, int(s), n) for s, n in zip(starts, lengths))


def _multi_output(views):
    """Mark views that one call returned together; PyTorch forbids in-place ops on them."""
    views = tuple(views)
    for v in views:
        if v._view is not None:
            v._view.multi_output = True
    return views


def chunk(input, chunks, dim=0):
    axis = _axis("chunk", dim, input.ndim)
    step = -(-input.shape[axis] // chunks)
    return split(input, max(step, 1), axis)


def unbind(input, dim=0):
    axis = _axis("unbind", dim, input.ndim)
    key = (slice(None),) * axis
    return _multi_output(input[key + (i,)] for i in range(input.shape[axis]))


class Repeat(Function):
    @staticmethod
    def forward(ctx, x, *, reps):
        ctx.reps, ctx.shape = reps, x.shape
        return ctx.xp.tile(x, reps)

    @staticmethod
    def backward(ctx, g):
        # view g as (r0, s0, r1, s1, ...) and sum over the repeat axes
        shape = [n for pair in zip(ctx.reps, ctx.shape) for n in pair]
        return g.reshape(shape).sum(axis=tuple(range(0, len(shape), 2)))


def repeat(input, *sizes):
    sizes = size_args(sizes)
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than "
                         f"the number of tensor dims ({input.ndim})")
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    return Repeat.apply(x, reps=tuple(sizes))


class Flip(Function):
    @staticmethod
    def forward(ctx, x, *, axes):
        ctx.axes = axes
        return ctx.xp.flip(x, axes)

    @staticmethod
    def backward(ctx, g):
        return ctx.xp.flip(g, ctx.axes)


def flip(input, dims):
    return Flip.apply(input, axes=normalize_dims("flip", dims, input.ndim))


class Roll(Function):
    @staticmethod
    def forward(ctx, x, *, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return ctx.xp.roll(x, shifts, axes)

    @staticmethod
    def backward(ctx, g):
        neg = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return ctx.xp.roll(g, neg, ctx.axes)


def roll(input, shifts, dims=None):
    if dims is None:
        flat = Roll.apply(flatten(input), shifts=shifts, axes=0)
        return reshape(flat, input.shape)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    axes = tuple(_axis("roll", d, input.ndim) for d in dims)
    return Roll.apply(input, shifts=shifts, axes=axes)


class Triangle(Function):
    @staticmethod
    def forward(ctx, x, *, diagonal, upper):
        ctx.diagonal, ctx.upper = diagonal, upper
        return (ctx.xp.triu if upper else ctx.xp.tril)(x, diagonal)

    @staticmethod
    def backward(ctx, g):
        return (ctx.xp.triu if ctx.upper else ctx.xp.tril)(g, ctx.diagonal)


def tril(input, diagonal=0):
    if input.ndim < 2:
        raise ValueError(f"tril: expected a tensor of at least 2 dimensions, got shape {tuple(input.shape)}")
    return Triangle.apply(input, diagonal=diagonal, upper=False)


def triu(input, diagonal=0):
    if input.ndim < 2:
        raise ValueError(f"triu: expected a tensor of at least 2 dimensions, got shape {tuple(input.shape)}")
    return Triangle.apply(input, diagonal=diagonal, upper=True)



# ----------------------------------------------------------------------------- pixel shuffle
def _check_factor(op, name, input, factor):
    if not isinstance(factor, (int, np.integer)) or isinstance(factor, bool):
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(factor).__name__}")
    if input.ndim < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input "
                           f"with {input.ndim} dimension(s)")
    if factor <= 0:
        raise RuntimeError(f"{op} expects a positive {name}, but got {factor}")


def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): channel blocks of r*r become r x r pixel tiles
    (sub-pixel convolution upsampling). A reshape, a permute and a reshape, so the gradient
    is the inverse rearrangement with no Function of its own."""
    r = upscale_factor
    _check_factor("pixel_shuffle", "upscale_factor", input, r)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError("pixel_shuffle expects its input's 'channel' dimension to be "
                           "divisible by the square of upscale_factor, but input.size(-3)="
                           f"{c} is not divisible by {r * r}")
    n = len(lead)
    x = reshape(input, (*lead, c // (r * r), r, r, h, w))
    x = permute(x, *range(n), n, n + 3, n + 1, n + 4, n + 2)
    return reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W): the inverse of pixel_shuffle. An empty input
    gets this shape too; PyTorch 2.x returns an empty input's shape unchanged."""
    r = downscale_factor
    _check_factor("pixel_unshuffle", "downscale_factor", input, r)
    *lead, c, h, w = input.shape
    for side, size, dim in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {side} to be divisible by "
                               f"downscale_factor, but input.size({dim})={size} is not "
                               f"divisible by {r}")
    n = len(lead)
    x = reshape(input, (*lead, c, h // r, r, w // r, r))
    x = permute(x, *range(n), n, n + 2, n + 4, n + 1, n + 3)
    return reshape(x, (*lead, c * r * r, h // r, w // r))
