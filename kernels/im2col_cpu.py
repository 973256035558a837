"""im2col and col2im on the CPU: the copies between a batch of images and the column matrix
of a convolution, for the kernels of conv_cpu.

A chunk of samples (S, C, H, W) has the column matrix (C*kh*kw, S*Ho*Wo): row (c, a, b)
holds the input that kernel position (a, b) of channel c meets at each output position,
0 in the padding. `to_columns` writes it; `add_columns`, its adjoint, adds each entry back
at the input position it was read from (the input gradient). Both are Numba functions that
release the GIL, so conv_cpu calls them from its own compiled loops.

The copy loops index with unsigned integers: Numba checks a signed index for wraparound on
every access, which kept them scalar (one 32x14x14 sample: 118 us signed, 32 us unsigned;
NumPy's strided copy of the same windows 73 us). Padding is never materialized: each row's
valid output range is computed once and the rest written as zeros. On "same" maps (stride 1,
output width = input width: every 3x3 layer of a ResNet) a column row is the input plane
shifted by a constant, so it is one flat copy (col2im: one flat add) plus zeroed row ends,
instead of a loop per output row: one sample's im2col / col2im, 16x32x32 36 / 33 -> 20 / 21
us, 64x16x16 47 / 46 -> 33 / 29 us, four 64x8x8 samples 67 / 80 -> 62 / 62 us. (Separate
tiny loops per row for the zeros and the copy, tried first, were slower than the row-zeroing
loop on 8x8 maps: 102 against 67 us.) The flat offsets are uint64 and may wrap below zero
(the first rows of a padded plane); their sums with the span positions land in range.
The same idea for strided maps, a flat span over each stride phase of the input (copied out
first) where the output is as wide as a phase, was measured and dropped: one sample's
im2col / col2im, k4s2 64x16x16 53 / 48 -> 52 / 42 us, k3s2 64x16x16 27 / 29 -> 35 / 30,
k4s2 128x8x8 53 / 45 -> 72 / 53 (short spans on small maps, plus the phase copy).

Short output rows (wo < GATHER_BELOW) go through a gather table instead of the row loops:
`column_table`'s table lists, for each kernel position and output position, the input
position it reads (see there for the measurements).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, uint64

GATHER_BELOW = 16  # output widths below which the copies go through a gather table


@njit(cache=True)
def _valid_range(size, out, stride, offset):
    """The output positions j in [lo, hi) whose input position j*stride + offset lies in
    [0, size)."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    return min(lo, out), max(min(hi, out), min(lo, out))


# Indices are unsigned (uint64): see the module's docstring.
@njit(cache=True, nogil=True, inline="always")
def _zero(a, start, stop):
    for t in range(start, stop):
        a[t] = 0


@njit(cache=True, nogil=True, inline="always")
def _same_span(i_lo, i_hi, j_lo, j_hi, wo):
    """[lo, hi): the flat positions, in a "same" map, from the first valid entry to the last;
    (0, 0) when none is valid."""
    if i_lo >= i_hi or j_lo >= j_hi:
        return uint64(0), uint64(0)
    return uint64(i_lo * wo + j_lo), uint64((i_hi - 1) * wo + j_hi)


@njit(cache=True, nogil=True, inline="always")
def _zero_row_ends(a, base, i_lo, i_hi, j_lo, j_hi, wo):
    """a[base + i*wo + j] = 0 for the rows i in [i_lo, i_hi) and the columns j outside
    [j_lo, j_hi): the entries a flat span over those rows wraps into."""
    for i in range(i_lo, i_hi):
        row = base + uint64(i * wo)
        _zero(a, row, row + uint64(j_lo))
        _zero(a, row + uint64(j_hi), row + uint64(wo))


@njit(cache=True, nogil=True)
def _im2col(x, samples, channels, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """A chunk of samples: cols (flat: C*kh*kw rows of samples*ho*wo) from x (flat:
    samples*C*h*w); row (c, a, b) holds x[s, c, i*sh - ph + a*dh, j*sw - pw + b*dw] at
    column (s, i, j), 0 outside the input.

    A "same" map (stride 1, wo == w: ResNet's 3x3 layers) is a shifted copy of each input
    plane, one flat span, whose wrapped row ends are zeroed after; other maps copy row by
    row into a zeroed row."""
    plane = ho * wo
    width = samples * plane
    step = uint64(sw)
    same = sh == 1 and sw == 1 and wo == w
    for c in range(channels):
        for a in range(kh):
            i_lo, i_hi = _valid_range(h, ho, sh, a * dh - ph)
            for b in range(kw):
                j_lo, j_hi = _valid_range(w, wo, sw, b * dw - pw)
                row = uint64(((c * kh + a) * kw + b) * width)
                if same:
                    lo, hi = _same_span(i_lo, i_hi, j_lo, j_hi, wo)
                    for n in range(samples):
                        base = row + uint64(n * plane)
                        src = uint64((n * channels + c) * h * w + (a * dh - ph) * w
                                     + b * dw - pw)
                        _zero(cols, base, base + lo)
                        for t in range(lo, hi):
                            cols[base + t] = x[src + t]
                        _zero(cols, base + hi, base + uint64(plane))
                        _zero_row_ends(cols, base, i_lo, i_hi, j_lo, j_hi, wo)
                    continue
                _zero(cols, row, row + uint64(width))
                for n in range(samples):
                    for i in range(i_lo, i_hi):
                        src = uint64(((n * channels + c) * h + i * sh - ph + a * dh) * w
                                     + j_lo * sw + b * dw - pw)
                        dst = uint64(row + n * plane + i * wo + j_lo)
                        for j in range(uint64(j_hi - j_lo)):
                            cols[dst + j] = x[src + j * step]


@njit(cache=True, nogil=True)
def _col2im(cols, samples, channels, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, gx):
    """A chunk of samples, the adjoint of _im2col: gx (flat samples*C*h*w) = the sum of every
    column entry at the input position it was read from. Each (sample, channel) plane is
    finished while it sits in the L1 cache. On a "same" map the entries read from padding
    are zeroed in cols (a scratch buffer) so one flat span adds each row (c, a, b) back."""
    plane = ho * wo
    width = samples * plane
    step = uint64(sw)
    same = sh == 1 and sw == 1 and wo == w
    _zero(gx, uint64(0), uint64(samples * channels * h * w))
    for n in range(samples):
        for c in range(channels):
            for a in range(kh):
                i_lo, i_hi = _valid_range(h, ho, sh, a * dh - ph)
                for b in range(kw):
                    j_lo, j_hi = _valid_range(w, wo, sw, b * dw - pw)
                    row = uint64(((c * kh + a) * kw + b) * width + n * plane)
                    if same:
                        lo, hi = _same_span(i_lo, i_hi, j_lo, j_hi, wo)
                        _zero_row_ends(cols, row, i_lo, i_hi, j_lo, j_hi, wo)
                        dst = uint64((n * channels + c) * h * w + (a * dh - ph) * w
                                     + b * dw - pw)
                        for t in range(lo, hi):
                            gx[dst + t] += cols[row + t]
                        continue
                    for i in range(i_lo, i_hi):
                        dst = uint64(((n * channels + c) * h + i * sh - ph + a * dh) * w
                                     + j_lo * sw + b * dw - pw)
                        src = uint64(row + i * wo + j_lo)
                        for j in range(uint64(j_hi - j_lo)):
                            gx[dst + j * step] += cols[src + j]


@njit(cache=True, nogil=True)
def _im2col_gather(x, samples, channels, plane_in, taps, width, table, cols):
    """_im2col through a gather table: table[tap, p] (taps = kh*kw rows of ho*wo) is the
    position in an input plane that output position p reads at that kernel position, or
    -1 in the padding. For small output maps, where a row of the loops above copies only
    a few elements (see the module's docstring)."""
    plane = table.shape[1]
    for c in range(channels):
        for tap in range(taps):
            row = uint64((c * taps + tap) * width)
            for n in range(samples):
                src = uint64((n * channels + c) * plane_in)
                dst = row + uint64(n * plane)
                for p in range(plane):
                    at = table[tap, p]
                    cols[dst + uint64(p)] = x[src + uint64(at)] if at >= 0 else 0


@njit(cache=True, nogil=True)
def _col2im_scatter(cols, samples, channels, plane_in, taps, width, table, gx):
    """The adjoint of _im2col_gather: gx (flat, zeroed here) += each column entry at the
    input position the table gives."""
    plane = table.shape[1]
    for t in range(uint64(samples * channels * plane_in)):
        gx[t] = 0
    for n in range(samples):
        for c in range(channels):
            dst = uint64((n * channels + c) * plane_in)
            for tap in range(taps):
                src = uint64((c * taps + tap) * width + n * plane)
                for p in range(plane):
                    at = table[tap, p]
                    if at >= 0:
                        gx[dst + uint64(at)] += cols[src + uint64(p)]


@functools.lru_cache(maxsize=64)
def _table(geometry):
    """The gather table of _im2col_gather for this geometry (int64, kh*kw x ho*wo; read
    only). Kept per geometry: building it costs 30-80 us, a training step asks for the same
    few tables every time."""
    _, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo = geometry
    rows = (np.arange(ho) * sh - ph)[None, :, None] + (np.arange(kh) * dh)[:, None, None]
    columns = (np.arange(wo) * sw - pw)[None, None, :] + (np.arange(kw) * dw)[:, None, None]
    inside_rows = (rows >= 0) & (rows < h)                     # (kh, ho, 1)
    inside_columns = (columns >= 0) & (columns < w)            # (kw, 1, wo)
    table = rows[:, None] * w + columns[None]                  # (kh, kw, ho, wo)
    inside = inside_rows[:, None] & inside_columns[None]
    table = np.where(inside, table, -1).reshape(kh * kw, ho * wo)
    table.flags.writeable = False
    return table


_NO_TABLE = np.zeros((0, 0), dtype=np.int64)
_NO_TABLE.flags.writeable = False  # as the tables are: one compiled type for both


def column_table(geometry):
    """The gather table of this geometry where its output rows are short (wo <
    GATHER_BELOW), else an empty table: `to_columns` and `add_columns` then run the row
    loops. Measured, one chunk's im2col / col2im, us, rows against gather: k4s2 32x8x8 x16
    216 / 310 against 107 / 101, k4s2 64x4x4 x16 195 / 388 against 83 / 78, k3s2 64x16x16
    x4 149 / 185 against 98 / 117, 1x1 s2 64x8x8 x16 34 / 57 against 18 / 24; "same" 3x3
    maps (stride 1, one flat span per row of the column matrix) too, once the planes are
    small: 256x2x2 x16 685 / 1152 against 182 / 196, 128x4x4 x8 269 / 364 against 119 /
    134, 64x8x8 x4 120 / 70 against 75 / 67; and the other way for long rows: k5 valid
    8x28x28 x2 92 / 87 against 168 / 187, "same" 32x16x16 28 / 18 against 28 / 34."""
    if geometry[-1] >= GATHER_BELOW:
        return _NO_TABLE
    return _table(geometry)


@njit(cache=True, nogil=True)
def to_columns(x, samples, geometry, table, cols):
    """cols (flat: C*kh*kw rows of samples*Ho*Wo) = the column matrix of x (flat:
    samples*C*H*W), by the table's gathers where it has rows, else the row loops."""
    if table.shape[0] == 0:
        _im2col(x, samples, *geometry, cols)
        return
    channels, h, w, kh, kw = geometry[:5]
    _im2col_gather(x, samples, channels, h * w, kh * kw, samples * table.shape[1], table,
                   cols)


@njit(cache=True, nogil=True)
def add_columns(cols, samples, geometry, table, gx):
    """gx (flat: samples*C*H*W) = the adjoint of to_columns applied to cols (which it may
    overwrite: see _col2im)."""
    if table.shape[0] == 0:
        _col2im(cols, samples, *geometry, gx)
        return
    channels, h, w, kh, kw = geometry[:5]
    _col2im_scatter(cols, samples, channels, h * w, kh * kw, samples * table.shape[1], table,
                    gx)


def geometry(x_shape, kernel_size, stride, padding, dilation, out_size):
    """The copies' geometry: (C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) of a
    convolution of x_shape (N, C, H, W); padding is ((top, bottom), (left, right)) and only
    the leading sides matter (the trailing ones are implied by out_size)."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    return (*x_shape[1:], kh, kw, sh, sw, padding[0][0], padding[1][0], dh, dw, ho, wo)
