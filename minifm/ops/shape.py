"""Shape ops: views and rearrangements (reshape, permute, expand, movedim, diagonal, unfold,
...), joining and splitting (cat, stack, split, chunk, block_diag), repeats (repeat, tile,
repeat_interleave), flip, roll, rot90, pixel_shuffle, tril/triu and their indices, meshgrid,
diag/diag_embed/trace.

Each backward is the inverse rearrangement of the gradient. Expand needs none of its own:
its gradient is summed back to the input's shape by the engine's `unbroadcast`. Ops that
are compositions of others (pixel_shuffle, tile, rot90, meshgrid...) have no Function of
their own: their gradients come from their parts.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims, size_args
from ..tensor import Tensor
from .elementwise import clone


def _axis(op, dim, ndim):
    return (normalize_dims(op, dim, ndim) or (0,))[0]  # a 0-d tensor takes dim 0 or -1


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
        if shape and min(shape) < -1:  # NumPy would read any negative size as -1
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
    axes = [normalize_dims("permute", d, input.ndim)[0] for d in dims] if input.ndim else dims
    if len(dims) != input.ndim or sorted(axes) != list(range(input.ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the {input.ndim} "
                           f"dimensions of a tensor of shape {tuple(input.shape)}")
    return Permute.apply(input, dims=tuple(axes))


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


def _dims_in_order(op, name, dims, ndim):
    """dims (an int or a sequence) as non-negative axes, in the order given (not sorted:
    movedim pairs source[i] with destination[i]); a repeated dim is refused."""
    dims = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
    axes = [_axis(op, d, ndim) for d in dims]
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"{op}: repeated dim in `{name}` ({dims})")
    return axes


def movedim(input, source, destination):
    """Move dims `source` to positions `destination`, keeping the others in order (a view)."""
    src = _dims_in_order("movedim", "source", source, input.ndim)
    dst = _dims_in_order("movedim", "destination", destination, input.ndim)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({source} "
                           f"dims) should contain the same number of dims as destination "
                           f"({destination} dims)")
    rest = iter(d for d in range(input.ndim) if d not in src)
    placed = dict(zip(dst, src))
    return permute(input, *[placed[i] if i in placed else next(rest) for i in range(input.ndim)])


moveaxis = movedim


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
        offset, dim1, dim2 = ctx.args
        grad = _embed_diagonal(ctx.xp, g, offset, ctx.shape[dim1], ctx.shape[dim2])
        return ctx.xp.moveaxis(grad, (-2, -1), (dim1, dim2))


def _diagonal_key(n, offset):
    """The (row, column) indices of the n entries of diagonal `offset` of a matrix."""
    i = np.arange(n)
    return i + max(-offset, 0), i + max(offset, 0)


def _embed_diagonal(xp, x, offset, rows, cols):
    """Zero (..., rows, cols) matrices with x (..., n) on their diagonal `offset`: the
    adjoint of taking that diagonal, written with indexing only, so that it also runs on
    the differentiable array namespace (create_graph)."""
    out = xp.zeros(x.shape[:-1] + (rows, cols), dtype=x.dtype)
    out[(Ellipsis,) + _diagonal_key(x.shape[-1], offset)] = x
    return out


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
        raise RuntimeError(f"diagonal: diagonal dimensions cannot be identical {dim1}, {dim2}")
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
    start, end = _axis("flatten", start_dim, input.ndim), _axis("flatten", end_dim, input.ndim)
    if input.ndim == 0:
        return reshape(input, 1)
    if start > end:
        raise RuntimeError(f"flatten() has invalid args: start_dim cannot come after end_dim "
                           f"(start_dim={start_dim}, end_dim={end_dim})")
    shape = input.shape[:start] + (math.prod(input.shape[start:end + 1]),) + input.shape[end + 1:]
    return reshape(input, shape)


def unflatten(input, dim, sizes):
    if input.ndim == 0:
        raise RuntimeError("unflatten: Dimension specified as 0 but tensor has no dimensions")
    dim = _axis("unflatten", dim, input.ndim)
    known = math.prod(n for n in sizes if n != -1)
    if -1 in sizes and known:  # -1 is inferred from dim's size (so also when it is empty)
        sizes = [input.shape[dim] // known if n == -1 else n for n in sizes]
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
    if -1 in sizes[:lead]:
        raise RuntimeError(f"expand: the expanded size of the tensor (-1) isn't allowed in a "
                           f"leading, non-existing dimension {sizes[:lead].index(-1)}")
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
    """The inputs joined along `axis`. PyTorch's legacy rule: 1-D empty inputs are skipped
    (torch.cat([x, torch.tensor([])]) is x), and their gradient is empty."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        skip = [x.shape == (0,) for x in xs]
        ctx.skip = [False] * len(xs) if all(skip) else skip
        kept = [x for x, skip in zip(xs, ctx.skip) if not skip]
        ctx.bounds = np.cumsum([x.shape[axis] for x in kept])[:-1]
        return ctx.xp.concatenate(kept, axis=axis)

    @staticmethod
    def backward(ctx, g):
        parts = iter(ctx.xp.split(g, ctx.bounds, axis=ctx.axis))
        return tuple(ctx.xp.zeros((0,), dtype=g.dtype) if skip else next(parts)
                     for skip in ctx.skip)


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
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    tensors = [t.to(dtype) for t in tensors]
    shaped = [t for t in tensors if t.shape != (0,)] or tensors  # see Cat
    axis = _axis("cat", dim, shaped[0].ndim)
    ref = shaped[0].shape
    for t in shaped[1:]:
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
    axis = _axis("stack", dim, len(shape) + 1)
    return Stack.apply(*[t.to(dtype) for t in tensors], axis=axis)


def narrow(input, dim, start, length):
    """input's slice [start, start + length) along dim, a view; a negative start counts from
    the end."""
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    axis = _axis("narrow", dim, input.ndim)
    size = input.shape[axis]
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for dimension {dim} of size {size}")
    start = start + size if start < 0 else start
    if length < 0 or start + length > size:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                           f"({size}).")
    key = (slice(None),) * axis + (slice(start, start + length),)
    return input[key]


def split(input, split_size_or_sections, dim=0):
    if input.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
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
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    axis = _axis("chunk", dim, input.ndim)
    if input.shape[axis] == 0:  # PyTorch gives `chunks` empty pieces
        return _multi_output(narrow(input, axis, 0, 0) for _ in range(chunks))
    return split(input, -(-input.shape[axis] // chunks), axis)


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
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims: {len(dims)}")
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


# ----------------------------------------------------------------------------- grids, rotations
def meshgrid(*tensors, indexing=None):
    """Coordinate grids of 0-d or 1-D tensors (given as arguments or as one list): output i
    is tensors[i] expanded along its own dim of the grid (a view, as in PyTorch). indexing
    'ij' (the default) orders the grid's dims as the inputs; 'xy' swaps the first two
    (NumPy's default: x varies along the columns)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError('meshgrid: indexing must be one of "xy" or "ij", but received: '
                           f"{indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got "
                               f"one of shape {tuple(t.shape)}")
        if t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise RuntimeError(f"meshgrid expects all tensors to have the same dtype and device, "
                               f"got {tensors[0].dtype} on {tensors[0].device} and {t.dtype} "
                               f"on {t.device}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, axis in zip(tensors, axes):
        shape[axis] = t.numel()
    return tuple(expand(reshape(t, [-1 if d == axis else 1 for d in range(len(shape))]), shape)
                 for t, axis in zip(tensors, axes))


def tile(input, *dims):
    """input repeated dims[i] times along dim i; missing leading dims count as 1 (NumPy's
    tile), where repeat requires one count per dim."""
    dims = size_args(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + tuple(dims))


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane dims, from dims[0] towards dims[1]: one
    flip and one transpose (k odd) or two flips (k = 2 mod 4), as PyTorch computes it."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {input.ndim}")
    a, b = _axis("rot90", dims[0], input.ndim), _axis("rot90", dims[1], input.ndim)
    if a == b:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = "
                           f"{dims[0]} and dim1 = {dims[1]}")
    k %= 4
    if k == 1:
        return transpose(flip(input, b), a, b)
    if k == 2:
        return flip(input, (a, b))
    if k == 3:
        return transpose(flip(input, a), a, b)
    return clone(input)  # a copy, as PyTorch returns


# ----------------------------------------------------------------------------- diagonals
class DiagEmbed(Function):
    """x (..., n) placed on diagonal `offset` of zero (..., m, m) matrices, m = n + |offset|."""

    @staticmethod
    def forward(ctx, x, *, offset):
        n = x.shape[-1]
        ctx.key = (Ellipsis,) + _diagonal_key(n, offset)
        return _embed_diagonal(ctx.xp, x, offset, n + abs(offset), n + abs(offset))

    @staticmethod
    def backward(ctx, g):
        return g[ctx.key]


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices whose diagonal `offset` in the (dim1, dim2) planes of the output holds the
    last dim of input; everything else is zero. The inverse of diagonal(offset, dim1, dim2)."""
    a, b = _axis("diag_embed", dim1, input.ndim + 1), _axis("diag_embed", dim2, input.ndim + 1)
    if a == b:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    if input.ndim == 0:
        input = reshape(input, 1)
    out = DiagEmbed.apply(input, offset=offset)
    return out if (a, b) == (out.ndim - 2, out.ndim - 1) else movedim(out, (-2, -1), (a, b))


def diag(input, diagonal=0):
    """A 1-D input becomes a square matrix with it on diagonal `diagonal`; a 2-D input gives
    that diagonal as a new 1-D tensor (a copy, where Tensor.diagonal is a view)."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return clone(Diagonal.apply(input, offset=diagonal, dim1=0, dim2=1))
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


class Trace(Function):
    """The sum of a matrix's main diagonal; its gradient is g times the identity."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return ctx.xp.trace(x, dtype=np.int64 if x.dtype.kind in "iu" else x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.xp.eye(*ctx.shape, dtype=g.dtype)


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    if input.dtype == np.bool_:
        raise NotImplementedError('"trace" not implemented for \'Bool\'')
    return Trace.apply(input)


def block_diag(*tensors):
    """The tensors (0-d, 1-D as one row, or 2-D) as blocks along the diagonal of one zero
    matrix, in the promoted dtype: each block row is the block between zero blocks, then the
    block rows are stacked."""
    if not tensors:
        return Tensor._make(np.zeros((1, 0), backend.get_default_dtype()), backend.CPU)
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"block_diag: Input tensors must have 2 or fewer dimensions. "
                               f"Input {i} has {t.ndim} dimensions")
    _check_same("block_diag", tensors)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = backend.promote_types(dtype, t.dtype)
    blocks = [(t if t.ndim == 2 else reshape(t, 1, -1)).to(dtype) for t in tensors]
    width = sum(b.shape[1] for b in blocks)
    xp, device = backend.array_module(blocks[0].device), blocks[0].device
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        zeros = [Tensor._make(xp.zeros((r, n), dtype), device) for n in (left, width - left - c)]
        rows.append(cat([zeros[0], b, zeros[1]], 1))
        left += c
    return cat(rows, 0)



# ----------------------------------------------------------------------------- repeats and windows
class RepeatInterleave(Function):
    """Each slice along `axis` repeated repeats[i] times; the gradient of a slice sums its
    copies (a scatter-add of g onto the slice each copy came from)."""

    @staticmethod
    def forward(ctx, x, *, repeats, axis):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.owner = np.repeat(np.arange(x.shape[axis]), repeats)
        return ctx.xp.repeat(x, repeats.tolist(), axis)  # CuPy takes host repeats as a list

    @staticmethod
    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        ctx.xp.add.at(grad, (slice(None),) * ctx.axis + (ctx.owner,), g)
        return grad


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element (dim=None: of the flattened input) or each slice along dim,
    `repeats` times (an int, or a 0-d/1-D integer tensor of one count per slice).
    repeat_interleave(counts) alone gives arange(len(counts)) repeated by counts."""
    if repeats is None:
        repeats = input
        xp = backend.array_module(input.device)
        input = Tensor._make(xp.arange(input.numel() if input.ndim == 1 else 0), input.device)
        if repeats.ndim != 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    if input.ndim == 0 and dim is not None:
        raise IndexError(f"repeat_interleave: dim {dim} is out of range for a 0-d tensor")
    if dim is None or input.ndim == 0:
        input, dim = reshape(input, -1), 0
    axis = _axis("repeat_interleave", dim, input.ndim)
    size = input.shape[axis]
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu":
            raise NotImplementedError(f"repeat_interleave: repeats must be an integer tensor, "
                                      f"got {backend.dtype_name(repeats.dtype)}")
        if repeats.ndim > 1:
            raise RuntimeError("repeat_interleave: repeats must be 0-dim or 1-dim tensor")
        counts = backend.move_array(repeats._data, backend.CPU).reshape(-1)
        if counts.size and counts.min() < 0:
            raise RuntimeError("repeat_interleave: repeats can not be negative")
        if counts.size not in (1, size):
            raise RuntimeError(f"repeat_interleave: repeats must have the same size as input "
                               f"along dim, but got repeats.size(0) = {counts.size} and "
                               f"input.size({dim}) = {size}")
        counts = np.broadcast_to(counts, (size,))
    elif isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise RuntimeError(f"repeat_interleave: Repeats must be non-negative, got {repeats}")
        counts = np.full(size, repeats)
    else:
        raise TypeError(f"repeat_interleave(): repeats must be an int or an integer Tensor, "
                        f"not {type(repeats).__name__}")
    if output_size is not None and output_size != counts.sum():
        raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {counts.sum()} "
                           f"but got {output_size}")
    if size and (counts == counts[0]).all():  # one count: a broadcast, summed back in backward
        shape = input.shape
        x = expand(unsqueeze(input, axis + 1), *shape[:axis + 1], int(counts[0]), *shape[axis + 1:])
        return reshape(x, shape[:axis] + (size * int(counts[0]),) + shape[axis + 1:])
    return RepeatInterleave.apply(input, repeats=counts, axis=axis)


class UnfoldFunction(Function):
    """Every window of `size` elements, `step` apart, along `axis`: a strided view with the
    window as a new last dim. The gradient of an element sums over the windows it is in.
    (Named so that its node is UnfoldBackward0 without the nn.Unfold module's name.)"""

    view = True

    @staticmethod
    def forward(ctx, x, *, axis, size, step):
        count = (x.shape[axis] - size) // step + 1
        ctx.shape, ctx.axis = x.shape, axis
        ctx.where = np.arange(count)[:, None] * step + np.arange(size)  # (window, offset)
        shape = x.shape[:axis] + (count,) + x.shape[axis + 1:] + (size,)
        strides = (x.strides[:axis] + (x.strides[axis] * step,) + x.strides[axis + 1:]
                   + (x.strides[axis],))
        return ctx.xp.lib.stride_tricks.as_strided(x, shape, strides)

    @staticmethod
    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        windows = ctx.xp.moveaxis(g, -1, ctx.axis + 1)  # (..., window, offset, ...)
        ctx.xp.add.at(grad, (slice(None),) * ctx.axis + (ctx.where,), windows)
        return grad


def unfold(input, dimension, size, step):
    """Tensor.unfold: the windows of `size` elements, `step` apart, along `dimension` (a view
    with the window as a new last dim)."""
    axis = _axis("unfold", dimension, input.ndim)
    length = input.shape[axis] if input.ndim else 1
    if size < 0:
        raise RuntimeError(f"unfold: size is {size} but must be >= 0")
    if size > length:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {dimension} is "
                           f"{length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    if input.ndim == 0:
        return reshape(input, size)
    return UnfoldFunction.apply(input, axis=axis, size=size, step=step)


def _tri_indices(op, take, row, col, offset, dtype, device):
    if row < 0 or col < 0:
        raise RuntimeError(f"{op}: {'row' if row < 0 else 'col'} must be non-negative, got "
                           f"{row if row < 0 else col}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise NotImplementedError(f'"{op}" not implemented for {backend.dtype_name(dtype)}')
    indices = np.stack(take(row, offset, col)).astype(dtype).reshape(2, -1)
    return Tensor._make(backend.move_array(indices, backend.as_device(device)),
                        backend.as_device(device))


def tril_indices(row, col, offset=0, *, dtype=np.int64, device="cpu"):
    """The (row, column) indices of the lower triangle (on and below diagonal `offset`) of a
    row x col matrix, as a 2 x N tensor, in row-major order."""
    return _tri_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=np.int64, device="cpu"):
    """The (row, column) indices of the upper triangle (on and above diagonal `offset`)."""
    return _tri_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device)
