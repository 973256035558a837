"""scikit-learn's two sample photographs as super-resolution data: fixed regions for
training, validation and test, low-resolution inputs made by bicubic downscaling, and
random training patches.

The photographs (china.jpg, a temple above a lake, and flower.jpg, a dahlia; 427 x 640
RGB JPEGs) ship inside scikit-learn (no download; reading them needs Pillow).
scikit-learn is needed for this data only, not by minifm itself.

Regions: every photo is cut into horizontal bands of full width (640 columns), in
high-resolution rows: training rows 0-159 and 320-425, validation rows 160-223, test rows
224-319 (the 427th row is dropped). The held-out bands cross the middle of both photos,
the temple's balconies and the lake, the dahlia's petals, so the test has detail to
restore, and no training patch overlaps them.

Channels: "y" is the luma of ITU-R BT.601 as MATLAB's rgb2ycbcr computes it, Y = (16 +
65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 1] (so Y lies in [16/255,
235/255]), the channel on which ESPCN and most super-resolution papers train and report;
"rgb" keeps the three colour channels, in [0, 1].

Low resolution: each region is downscaled by the factor r on its own with
`F.interpolate(region, size=(H/r, W/r), mode="bicubic", align_corners=False)`, PyTorch's
bicubic (Keys' kernel with a = -0.75) without antialiasing, then clipped to [0, 1]: for
r = 2 each low-resolution pixel is a 4 x 4 weighted sum of high-resolution ones. MATLAB's
imresize (which many papers use) widens the kernel to antialias, so PSNRs here do not
compare with published tables, only with each other. A region's height and width are cut
to multiples of r first.
"""
from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..creation import from_numpy, randint
from ..nn import functional as F

PHOTOS = ("china.jpg", "flower.jpg")
ROW_BANDS = {"train": ((0, 160), (320, 426)), "val": ((160, 224),), "test": ((224, 320),)}
CHANNELS = ("y", "rgb")


def rgb_to_y(rgb):
    """The BT.601 luma (MATLAB's rgb2ycbcr) of RGB values in [0, 1], channels first:
    (3, ...) -> (1, ...), in [16/255, 235/255]."""
    r, g, b = rgb[0], rgb[1], rgb[2]
    return ((16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0)[None]


def load_sample_photos(channels="y"):
    """{name: image} of scikit-learn's two photographs, each float32 (C, 427, 640) in
    [0, 1], C = 1 for channels "y" (the luma), 3 for "rgb"."""
    if channels not in CHANNELS:
        raise ValueError(f"load_sample_photos: channels must be one of {CHANNELS}, got "
                         f"{channels!r}")
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as exc:
        raise ImportError(
            "load_sample_photos needs scikit-learn and Pillow: pip install scikit-learn "
            "pillow (or install minifm with the 'examples' extra)"
        ) from exc
    photos = {}
    for name in PHOTOS:
        rgb = load_sample_image(name).astype(np.float64).transpose(2, 0, 1) / 255.0
        photos[name] = (rgb_to_y(rgb) if channels == "y" else rgb).astype(np.float32)
    return photos


@no_grad()
def bicubic_resize(images, size):
    """images (N, C, H, W) or (C, H, W), a NumPy array, resized to size (h, w) with
    PyTorch's bicubic interpolation (align_corners=False, no antialiasing); values are
    not clipped (bicubic overshoots at edges)."""
    batch = images if images.ndim == 4 else images[None]
    out = F.interpolate(from_numpy(np.ascontiguousarray(batch)), size=tuple(size),
                        mode="bicubic", align_corners=False).numpy()
    return out if images.ndim == 4 else out[0]


def downscale(hr, scale):
    """The low-resolution version of a high-resolution region (C, H, W), H and W
    multiples of scale: bicubic by 1/scale, clipped to [0, 1]."""
    c, h, w = hr.shape
    return np.clip(bicubic_resize(hr, (h // scale, w // scale)), 0.0, 1.0)


def photo_regions(channels="y", scale=2):
    """{"train" | "val" | "test": [(low-res, high-res), ...]}: the split's regions of both
    photos in the order of PHOTOS (two bands each for training, one for val and test),
    each a pair of float32 arrays (C, H/scale, W/scale) and (C, H, W)."""
    regions = {split: [] for split in ROW_BANDS}
    for image in load_sample_photos(channels).values():
        width = image.shape[2] - image.shape[2] % scale
        for split, bands in ROW_BANDS.items():
            for top, bottom in bands:
                bottom -= (bottom - top) % scale
                hr = np.ascontiguousarray(image[:, top:bottom, :width])
                regions[split].append((downscale(hr, scale), hr))
    return regions


def random_patches(pairs, lr_size, n, generator):
    """n aligned training patches from the (low-res, high-res) region pairs `pairs`:
    (lr (n, C, p, p), hr (n, C, s p, s p)), p = lr_size, s the pairs' scale.

    Every placement of a p x p window inside a low-resolution region is equally likely
    (regions weigh by their number of placements), and each patch is flipped left-right
    and upside-down with probability 1/2 each; `generator` (a minifm Generator) draws it
    all.
    """
    scale = pairs[0][1].shape[1] // pairs[0][0].shape[1]
    counts = np.array([(lr.shape[1] - lr_size + 1) * (lr.shape[2] - lr_size + 1)
                       for lr, _ in pairs])
    if counts.min() < 1:
        smallest = min(min(lr.shape[1:]) for lr, _ in pairs)
        raise ValueError(f"random_patches: a patch of {lr_size} low-resolution pixels does "
                         f"not fit in a region of {smallest}")
    draws = randint(0, int(counts.sum()), (n,), generator=generator).numpy()
    flips = randint(0, 2, (n, 2), generator=generator).numpy().astype(bool)
    region = np.searchsorted(np.cumsum(counts), draws, side="right")
    offset = draws - np.concatenate([[0], np.cumsum(counts)[:-1]])[region]
    lr_patches, hr_patches = [], []
    for k, index, (flip_rows, flip_cols) in zip(region, offset, flips):
        lr, hr = pairs[k]
        i, j = divmod(int(index), lr.shape[2] - lr_size + 1)
        a = lr[:, i:i + lr_size, j:j + lr_size]
        b = hr[:, scale * i:scale * (i + lr_size), scale * j:scale * (j + lr_size)]
        if flip_rows:
            a, b = a[:, ::-1], b[:, ::-1]
        if flip_cols:
            a, b = a[:, :, ::-1], b[:, :, ::-1]
        lr_patches.append(a)
        hr_patches.append(b)
    return np.stack(lr_patches), np.stack(hr_patches)
