"""Resizing of (N, C, *spatial) inputs: torch.nn.functional.interpolate.

Every mode is separable: along each spatial axis, output position j reads K input positions
idx[j, 0..K-1] with weights w[j, 0..K-1] (nearest: K=1, weight 1; linear: K=2; cubic: K=4;
area: K = the widest averaging window, narrower windows padded with weight 0). Resampling
an N-d input is resampling one axis at a time, so one Function serves every mode and
dimension; only the (idx, w) table of an axis depends on the mode, and those tables follow
PyTorch's kernels (aten/src/ATen/native/UpSample.h) step for step, in the input's precision,
so that indices land on the same side of every floor.

The forward gathers: y = sum_k x[..., idx[:, k], ...] * w[:, k]. Its gradient is the
scatter-add gx[..., idx[:, k], ...] += g * w[:, k], axis by axis in reverse order; the
scatter is done once on the small table instead of on every gradient: transposed, the table
lists for each input position i the M outputs that read it (idx_t[i, :], weights w_t[i, :],
zero-weight slots padding the shorter lists), so the backward is again a gather,
gx = sum_m g[..., idx_t[:, m], ...] * w_t[:, m]. A gather runs several times faster than
NumPy's add.at, and it is made of indexing, products and sums, so the backward also runs
under create_graph.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ._dtypes import compute_dtype
from .elementwise import to_dtype

_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_NEAREST = ("nearest", "nearest-exact")
_MODES = "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact"
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) choice of the cubic convolution parameter


# ----------------------------------------------------------------------------- the Function
class Resample(Function):
    """y = the input resampled along each axis of `tables`, ((axis, table), ...) applied in
    order, a table (idx, w, idx_t, w_t) as axis_table makes it."""

    saved_constants = True  # the tables depend on sizes only, never on the input's values

    @staticmethod
    def forward(ctx, x, *, tables):
        ctx.tables = tables
        for axis, (idx, w, _, _) in tables:
            x = _gather(x, axis, idx, w)
        return x

    @staticmethod
    def backward(ctx, g):
        for axis, (_, _, idx_t, w_t) in reversed(ctx.tables):
            g = _gather(g, axis, idx_t, w_t)
        return g


def _gather(x, axis, idx, w):
    """sum_k x[..., idx[:, k], ...] * w[:, k] along axis (w None: K = 1, weight 1)."""
    lead = (slice(None),) * axis
    if w is None:
        return x[lead + (idx[:, 0],)]
    tail = (1,) * (x.ndim - axis - 1)
    y = x[lead + (idx[:, 0],)] * w[:, 0].reshape(-1, *tail)
    for k in range(1, idx.shape[1]):
        y = y + x[lead + (idx[:, k],)] * w[:, k].reshape(-1, *tail)
    return y


def axis_table(xp, idx, w, size, dtype):
    """One axis's table for Resample, on xp: the forward's (idx, w), NumPy arrays of shape
    (out, K) reading an axis of `size` (w None for weight 1), and their transpose (idx_t,
    w_t) of shape (size, M): the outputs each input position feeds, and with what weight."""
    out, k = idx.shape
    src = idx.ravel()
    order = np.argsort(src, kind="stable")
    src = src[order]
    dst = np.repeat(np.arange(out), k)[order]
    weight = (np.ones(out * k, dtype) if w is None else w.ravel())[order]
    counts = np.bincount(src, minlength=size)
    slot = np.arange(src.size) - np.repeat(np.cumsum(counts) - counts, counts)
    idx_t = np.zeros((size, max(counts.max(initial=0), 1)), np.int64)
    w_t = np.zeros(idx_t.shape, dtype)
    idx_t[src, slot], w_t[src, slot] = dst, weight
    return tuple(None if a is None else xp.asarray(a) for a in (idx, w, idx_t, w_t))


# PyTorch's grad_fn names, one per mode and dimension (the computation is Resample's).
class UpsampleNearest1D(Resample):
    pass


class UpsampleNearest2D(Resample):
    pass


class UpsampleNearest3D(Resample):
    pass


class UpsampleNearestExact1D(Resample):
    pass


class UpsampleNearestExact2D(Resample):
    pass


class UpsampleNearestExact3D(Resample):
    pass


class UpsampleLinear1D(Resample):
    pass


class UpsampleBilinear2D(Resample):
    pass


class UpsampleBicubic2D(Resample):
    pass


class UpsampleTrilinear3D(Resample):
    pass


class AdaptiveAvgPool(Resample):
    """interpolate(mode='area'): PyTorch's node is AdaptiveAvgPool{1,2,3}DBackward0; this
    name leaves those to the pooling ops."""


_FUNCTIONS = {
    ("nearest", 1): UpsampleNearest1D, ("nearest", 2): UpsampleNearest2D,
    ("nearest", 3): UpsampleNearest3D, ("nearest-exact", 1): UpsampleNearestExact1D,
    ("nearest-exact", 2): UpsampleNearestExact2D, ("nearest-exact", 3): UpsampleNearestExact3D,
    ("linear", 1): UpsampleLinear1D, ("bilinear", 2): UpsampleBilinear2D,
    ("bicubic", 2): UpsampleBicubic2D, ("trilinear", 3): UpsampleTrilinear3D,
    ("area", 1): AdaptiveAvgPool, ("area", 2): AdaptiveAvgPool, ("area", 3): AdaptiveAvgPool,
}


# ----------------------------------------------------------------------------- one axis's table
def _scale(size, out, scale, align_corners, dtype):
    """PyTorch's area_pixel_compute_scale: the input distance between output positions."""
    if align_corners:
        return dtype.type((size - 1) / (out - 1)) if out > 1 else dtype.type(0)
    if scale is not None and scale > 0:
        return dtype.type(1.0 / scale)
    return dtype.type(size) / dtype.type(out)


def _source(size, out, scale, align_corners, cubic, dtype):
    """PyTorch's area_pixel_compute_source_index for every output position: where in the
    input each output sample sits (pixel centres aligned, or corners when align_corners)."""
    s = _scale(size, out, scale, align_corners, dtype)
    j = np.arange(out).astype(dtype)
    if align_corners:
        return s * j
    src = s * (j + dtype.type(0.5)) - dtype.type(0.5)
    return src if cubic else np.maximum(src, dtype.type(0))


def _nearest_table(size, out, scale, exact, shortcuts):
    """PyTorch's nearest_idx / nearest_exact_idx, in its float32 arithmetic: floor(j * s)
    or floor((j + 0.5) * s), s = 1/scale_factor if one was given, else size/out. With
    `shortcuts` (4-D inputs: PyTorch's upsample_nearest2d) plain 'nearest' copies when
    out == size and halves when out == 2*size, whatever the scale; 3-D and 5-D inputs
    always follow the scale."""
    j = np.arange(out)
    if shortcuts and not exact and out == size:
        return j[:, None], None
    if shortcuts and not exact and out == 2 * size:
        return (j // 2)[:, None], None
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else (
        np.float32(size) / np.float32(out))
    position = ((j + 0.5) * np.float64(s)).astype(np.float32) if exact else j.astype(
        np.float32) * s
    return np.minimum(np.floor(position).astype(np.int64), size - 1)[:, None], None


def _linear_table(size, out, scale, align_corners, dtype):
    """Two taps: floor(src) and the next one (the same at the last position). An axis whose
    size does not change is copied whatever the scale, as PyTorch's linear kernels do."""
    src = _source(size, out, None if out == size else scale, align_corners, False, dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    lam = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    i1 = i0 + (i0 < size - 1)
    return np.stack([i0, i1], 1), np.stack([1 - lam, lam], 1)


def _cubic_table(size, out, scale, align_corners, dtype):
    """Four taps floor(src)-1 .. floor(src)+2, clamped into the input (PyTorch's border
    rule: the edge value repeats), with Keys' cubic convolution weights for A = -0.75."""
    src = _source(size, out, scale, align_corners, True, dtype)
    i0 = np.floor(src)
    t = (src - i0).astype(dtype)
    a = dtype.type(_CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    w = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1).astype(dtype)
    idx = np.clip(i0.astype(np.int64)[:, None] + np.arange(-1, 3), 0, size - 1)
    return idx, w


def _area_table(size, out, dtype):
    """Adaptive average pooling: output j averages positions floor(j*size/out) ..
    ceil((j+1)*size/out) - 1; shorter windows are padded with weight-0 taps."""
    j = np.arange(out)
    start, end = (j * size) // out, -((-(j + 1) * size) // out)
    k = np.arange((end - start).max(initial=1))
    idx = np.minimum(start[:, None] + k, size - 1)
    w = np.where(start[:, None] + k < end[:, None], 1 / (end - start)[:, None], 0).astype(dtype)
    return idx, w


def _table(mode, size, out, scale, align_corners, dtype, dims):
    if mode in _NEAREST:
        return _nearest_table(size, out, scale, mode == "nearest-exact", dims == 2)
    if mode == "bicubic":
        return _cubic_table(size, out, scale, align_corners, dtype)
    if mode == "area":
        return _area_table(size, out, dtype)
    return _linear_table(size, out, scale, align_corners, dtype)


# ----------------------------------------------------------------------------- public function
def _per_axis(value, dims):
    return list(value) if isinstance(value, (tuple, list)) else [value] * dims


def _output_size(input, size, scale_factor, recompute_scale_factor, dims):
    """PyTorch's checks and arithmetic: the output sizes and the scales its kernels use."""
    op, spatial = "interpolate", list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit "
                             "size.")
        if isinstance(size, (tuple, list)) and len(size) != dims:
            raise ValueError(f"{op}: Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of {spatial} "
                             f"and output size of {size}")
        sizes = _per_axis(size, dims)
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
            raise TypeError(f"{op}: expected size to be one of int or Tuple[int] or "
                            f"Tuple[int, int] or Tuple[int, int, int], but got size with types "
                            f"{[type(s) for s in sizes]}")
        return [int(s) for s in sizes], [None] * dims
    if isinstance(scale_factor, (tuple, list)) and len(scale_factor) != dims:
        raise ValueError(f"{op}: Input and scale_factor must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of {spatial} and "
                         f"scale_factor of shape {scale_factor}")
    scales = [float(s) for s in _per_axis(scale_factor, dims)]
    sizes = [math.floor(float(n) * s) for n, s in zip(spatial, scales)]
    return sizes, [None] * dims if recompute_scale_factor else scales


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate for (N, C, L), (N, C, H, W) and (N, C, D, H, W)
    inputs: modes 'nearest', 'nearest-exact', 'area' (any of them), 'linear' (3-D),
    'bilinear' and 'bicubic' (4-D), 'trilinear' (5-D). Give exactly one of size (int or one
    per spatial dim) and scale_factor (float or one per spatial dim); with a scale_factor the
    kernels use it (unless recompute_scale_factor) rather than in/out, as PyTorch's do.
    antialias=True is not implemented."""
    op = "interpolate"
    if mode in _NEAREST + ("area",):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    else:
        align_corners = bool(align_corners)
    dims = input.ndim - 2
    sizes, scales = _output_size(input, size, scale_factor, recompute_scale_factor, dims)
    if antialias and (mode not in ("bilinear", "bicubic") or dims != 2):
        raise ValueError(f"{op}: Anti-alias option is restricted to bilinear and bicubic "
                         "modes and requires a 4-D tensor as input")
    if not 1 <= dims <= 3 or (mode not in _NEAREST + ("area",) and _DIMS.get(mode) != dims):
        if mode in _DIMS and 1 <= dims <= 3 and mode != "bicubic":
            raise NotImplementedError(f"{op}: Got {input.ndim}D input, but {mode} mode needs "
                                      f"{_DIMS[mode] + 2}D input")
        raise NotImplementedError(f"{op}: Input Error: Only 3D, 4D and 5D input Tensors "
                                  f"supported (got {input.ndim}D) for the modes: {_MODES} "
                                  f"(got {mode})")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not implemented")
    dtype = np.dtype(input.dtype)
    if dtype.kind != "f" and not (dtype == np.uint8 and mode in _NEAREST):
        raise NotImplementedError(f"{op}: mode {mode!r} is not implemented for "
                                  f"{backend.dtype_name(dtype)} input")
    spatial = tuple(input.shape[2:])
    if min(spatial) <= 0 or min(sizes) < (0 if mode == "area" else 1):  # area may be empty
        raise RuntimeError(f"{op}: Input and output sizes should be greater than 0, but got "
                           f"input {spatial} output {tuple(sizes)}")
    if input.shape[1] == 0:
        raise RuntimeError(f"{op}: Non-empty {input.ndim}D data tensor expected but got a "
                           f"tensor with sizes {list(input.shape)}")
    xp = backend.array_module(backend.device_of_array(input._data))
    work = compute_dtype(dtype)  # float16 in float32, as PyTorch's kernels' opmath
    tables = tuple((axis, axis_table(xp, *_table(mode, n, out, scale, align_corners, work, dims),
                                     n, work))
                   for axis, (n, out, scale) in enumerate(zip(spatial, sizes, scales), start=2))
    if work == dtype:
        return _FUNCTIONS[mode, dims].apply(input, tables=tables)
    return to_dtype(_FUNCTIONS[mode, dims].apply(to_dtype(input, work), tables=tables), dtype)


# PyTorch's deprecated spellings, still found in older code.
def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """F.upsample: interpolate under its old name."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """F.upsample_nearest: interpolate(mode='nearest')."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """F.upsample_bilinear: interpolate(mode='bilinear', align_corners=True)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
