"""Image quality metrics with scikit-image's names for the arguments and its results:
peak signal-to-noise ratio and structural similarity (SSIM).

    psnr(image_true, image_test, data_range=...)   skimage.metrics.peak_signal_noise_ratio
    ssim(image_true, image_test, data_range=...)   skimage.metrics.structural_similarity(
                                                       ..., gaussian_weights=True, sigma=1.5,
                                                       use_sample_covariance=False)

Both take NumPy arrays or minifm Tensors (anything `np.asarray` reads) and compute in
float64. `data_range` (the difference between the largest and smallest possible value: 1
for images in [0, 1], 255 for 8-bit ones) is required: guessing it from the data is how
one paper's PSNR comes out 10 dB from another's.
"""
from __future__ import annotations

import math

import numpy as np


def _pair(name, image_true, image_test, data_range):
    a = np.asarray(image_true, dtype=np.float64)
    b = np.asarray(image_test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{name}: the images differ in shape: {a.shape} and {b.shape}")
    if not data_range > 0:
        raise ValueError(f"{name}: data_range must be > 0, got {data_range}")
    return a, b


def psnr(image_true, image_test, *, data_range):
    """10 log10(data_range^2 / MSE) in dB, the MSE over every element of the images (all
    channels together); inf for identical images."""
    a, b = _pair("psnr", image_true, image_test, data_range)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def gaussian_window(sigma, truncate=3.5):
    """The normalised 1-D Gaussian of standard deviation sigma over integer offsets
    -r..r, r = int(truncate * sigma + 0.5) (scipy.ndimage's radius; 11 taps for 1.5)."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(x, window):
    """x (..., H, W) filtered by the separable 2-D window window[i] * window[j], at the
    positions where the window lies inside the image only ('valid')."""
    k = len(window)
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=-2) @ window
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=-1) @ window


def ssim(image_true, image_test, *, data_range, sigma=1.5, K1=0.01, K2=0.03,
         channel_axis=None):
    """The mean structural similarity of two images (Wang et al., 2004).

    Local means, variances and the covariance are Gaussian-weighted averages (standard
    deviation sigma, 11x11 for sigma 1.5) and the variances are the weighted population
    ones (no n - 1). SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) /
    ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)), C1 = (K1 L)^2, C2 = (K2 L)^2 with
    L = data_range, is averaged over the positions where the window fits inside the image:
    scikit-image filters the whole image, then crops the window's radius from the map
    before averaging, which leaves the same positions. The images are (H, W), or have one
    more axis, channel_axis, of channels whose SSIMs are averaged.
    """
    a, b = _pair("ssim", image_true, image_test, data_range)
    if channel_axis is not None:
        a, b = np.moveaxis(a, channel_axis, 0), np.moveaxis(b, channel_axis, 0)
    if a.ndim != (2 if channel_axis is None else 3):
        raise ValueError(f"ssim: expected images of shape (H, W), or with channel_axis "
                         f"one more axis of channels; got shape {a.shape} with "
                         f"channel_axis={channel_axis}")
    window = gaussian_window(sigma)
    if min(a.shape[-2:]) < len(window):
        raise ValueError(f"ssim: images of {a.shape[-2]}x{a.shape[-1]} pixels are smaller "
                         f"than the {len(window)}x{len(window)} window (sigma {sigma})")
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a ** 2
    var_b = _filter_valid(b * b, window) - mu_b ** 2
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
         / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(s.mean())
