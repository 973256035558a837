"""Save a batch of images as one PNG grid, with NumPy and the standard library only.

PNG is simple enough to write by hand: an 8-byte signature, then chunks, each
(length, type, data, CRC-32 of type + data). IHDR gives the width, height, bit depth
and colour type; IDAT holds the pixel rows, each prefixed by a filter byte (0: none),
compressed with zlib; IEND closes the file. That is all a viewer needs.

`make_grid` and `save_image` follow torchvision.utils (same names and arguments), plus a
`scale` argument of minifm's own: an integer nearest-neighbour zoom, so that a grid of
16x16 digits is large enough to look at.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_grid(images, nrow=8, padding=2, value_range=None, pad_value=0.0):
    """Tile images (N, C, H, W) with C = 1 or 3 into one (C, rows * (H + p) + p, ...) array.

    nrow images per row, `padding` pixels of `pad_value` around each. With value_range
    (low, high), values are first mapped linearly from it to [0, 1]; the result is clipped
    to [0, 1] either way.
    """
    images = np.asarray(images.numpy() if hasattr(images, "numpy") else images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"make_grid: expected images of shape (N, 1 or 3, H, W), got {images.shape}")
    if value_range is not None:
        low, high = value_range
        images = (images - low) / (high - low)
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
                   pad_value, dtype=np.float64)
    for k in range(n):
        top = padding + (k // ncol) * (h + padding)
        left = padding + (k % ncol) * (w + padding)
        grid[:, top:top + h, left:left + w] = images[k]
    return np.clip(grid, 0.0, 1.0)


def save_image(images, path, nrow=8, padding=2, value_range=None, pad_value=0.0, scale=1):
    """Write images (N, C, H, W) as a PNG grid to `path` (see make_grid); returns path."""
    grid = make_grid(images, nrow, padding, value_range, pad_value)
    if scale != 1:
        grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    pixels = np.round(grid * 255).astype(np.uint8)
    write_png(path, pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    return path


def write_png(path, pixels):
    """Write uint8 pixels, (H, W) grayscale or (H, W, 3) RGB, as an 8-bit PNG file."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"write_png: expected uint8 pixels of shape (H, W) or (H, W, 3), "
                         f"got {pixels.dtype} of shape {pixels.shape}")
    height, width = pixels.shape[:2]
    color_type = 0 if pixels.ndim == 2 else 2  # 0: grayscale, 2: RGB
    rows = pixels.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(PNG_SIGNATURE)
        f.write(_chunk(b"IHDR", header))
        f.write(_chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)))
        f.write(_chunk(b"IEND", b""))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
