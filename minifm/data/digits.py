"""scikit-learn's 8x8 handwritten digits as image arrays, split, scaled and resized.

The 1,797 grayscale digits ship inside scikit-learn (no download) and are small enough
to train an MLP, a CNN or a DCGAN on a CPU in seconds. DCGAN's strided convolutions want
16x16 or 32x32 images, hence ``upsample``.
"""

import numpy as np

import minifm
import minifm.nn.functional as F


def upsample(images, size, mode="nearest"):
    """Resize ``images`` of shape (N, C, H, W) to (N, C, size, size): a NumPy array through
    ``minifm.nn.functional.interpolate(images, size, mode=mode)`` (mode "nearest" or
    "bilinear", with align_corners=False)."""
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if images.ndim != 4:
        raise ValueError(f"upsample: expected images of shape (N, C, H, W), got {images.shape}")
    return F.interpolate(minifm.tensor(images), size, mode=mode).numpy()


def load_digits(size=8, value_range=(0.0, 1.0), mode="nearest", val_frac=0.1,
                test_frac=0.1, seed=0):
    """The digits as ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` NumPy arrays.

    ``x`` is float32 of shape (N, 1, size, size) with pixel values scaled linearly to
    ``value_range`` ((0, 1), or (-1, 1) to match a tanh generator); ``y`` is int64 labels.
    Images are resized with ``upsample(..., mode)`` when ``size`` is not 8. The split is a
    random permutation from a minifm Generator seeded with ``seed``.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits needs scikit-learn: pip install scikit-learn "
            "(or install minifm with the 'examples' extra)"
        ) from exc
    lo, hi = value_range
    if not lo < hi:
        raise ValueError(
            f"load_digits: value_range must be (low, high) with low < high, got {value_range}"
        )
    if not (0 <= val_frac and 0 <= test_frac and val_frac + test_frac < 1):
        raise ValueError(
            f"load_digits: need 0 <= val_frac, test_frac and val_frac + test_frac < 1, "
            f"got val_frac={val_frac}, test_frac={test_frac}"
        )
    raw = sklearn_load_digits()
    x = raw.images.astype(np.float32)[:, None] / 16.0  # pixel values are 0..16
    x = (lo + (hi - lo) * x).astype(np.float32)
    if size != 8:
        x = upsample(x, size, mode)
    y = raw.target.astype(np.int64)

    n = len(y)
    order = minifm.randperm(n, generator=minifm.Generator(seed=seed)).numpy()
    n_val, n_test = int(n * val_frac), int(n * test_frac)
    parts = {
        "train": order[:n - n_val - n_test],
        "val": order[n - n_val - n_test:n - n_test],
        "test": order[n - n_test:],
    }
    return {name: (x[idx], y[idx]) for name, idx in parts.items()}
