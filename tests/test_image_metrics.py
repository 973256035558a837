"""minifm.metrics.psnr and ssim against scikit-image's peak_signal_noise_ratio and
structural_similarity (Gaussian window, sigma 1.5, population covariance: Wang et al.'s
SSIM), on noisy, blurred and shifted images, grayscale and multichannel, in [0, 1] and
in 0..255."""
import math

import numpy as np
import pytest

from minifm import metrics

skm = pytest.importorskip("skimage.metrics")


def reference_ssim(a, b, data_range, channel_axis=None):
    return skm.structural_similarity(a, b, data_range=data_range, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False,
                                     channel_axis=channel_axis)


def smooth_image(rng, shape):
    """A random image with structure at several scales (sums of blurred noise), in [0, 1]."""
    image = np.zeros(shape)
    for size in (1, 3, 7):
        noise = rng.random(shape)
        kernel = np.ones(size) / size
        for axis in (-2, -1):
            noise = np.apply_along_axis(np.convolve, axis, noise, kernel, mode="same")
        image += noise
    return (image - image.min()) / (image.max() - image.min())


def distortions(rng, image):
    """The same image noisy, blurred and shifted by a pixel, clipped to [0, 1]."""
    noisy = image + 0.05 * rng.standard_normal(image.shape)
    blurred = (image + np.roll(image, 1, -1) + np.roll(image, 1, -2)) / 3
    shifted = np.roll(image, 1, -1)
    return {name: np.clip(x, 0, 1) for name, x in
            {"noisy": noisy, "blurred": blurred, "shifted": shifted}.items()}


@pytest.mark.parametrize("shape", [(11, 11), (32, 45), (64, 40)])
def test_grayscale_metrics_equal_scikit_image(shape):
    rng = np.random.default_rng(sum(shape))
    image = smooth_image(rng, shape)
    for name, other in distortions(rng, image).items():
        assert metrics.psnr(image, other, data_range=1.0) == pytest.approx(
            skm.peak_signal_noise_ratio(image, other, data_range=1.0), rel=1e-12), name
        assert metrics.ssim(image, other, data_range=1.0) == pytest.approx(
            reference_ssim(image, other, 1.0), rel=1e-12, abs=1e-12), name


@pytest.mark.parametrize("channel_axis", [0, -1])
def test_multichannel_metrics_equal_scikit_image(channel_axis):
    rng = np.random.default_rng(3)
    image = np.moveaxis(smooth_image(rng, (3, 30, 26)), 0, channel_axis)
    other = distortions(rng, image)["noisy"]
    assert metrics.ssim(image, other, data_range=1.0, channel_axis=channel_axis) == \
        pytest.approx(reference_ssim(image, other, 1.0, channel_axis), rel=1e-12)
    assert metrics.psnr(image, other, data_range=1.0) == pytest.approx(
        skm.peak_signal_noise_ratio(image, other, data_range=1.0), rel=1e-12)


def test_eight_bit_images_with_their_data_range():
    rng = np.random.default_rng(4)
    image = np.round(255 * smooth_image(rng, (24, 24))).astype(np.uint8)
    other = np.round(255 * distortions(rng, image / 255.0)["blurred"]).astype(np.uint8)
    assert metrics.psnr(image, other, data_range=255) == pytest.approx(
        skm.peak_signal_noise_ratio(image, other, data_range=255), rel=1e-12)
    assert metrics.ssim(image, other, data_range=255) == pytest.approx(
        reference_ssim(image, other, 255), rel=1e-12)


def test_identical_images():
    image = smooth_image(np.random.default_rng(5), (16, 16))
    assert metrics.psnr(image, image, data_range=1.0) == math.inf
    assert metrics.ssim(image, image, data_range=1.0) == pytest.approx(1.0, abs=1e-12)


def test_refusals():
    a = np.zeros((16, 16))
    with pytest.raises(ValueError, match=r"psnr: the images differ in shape: \(16, 16\) and "
                                         r"\(16, 15\)"):
        metrics.psnr(a, a[:, :15], data_range=1.0)
    with pytest.raises(ValueError, match="data_range must be > 0"):
        metrics.ssim(a, a, data_range=0)
    with pytest.raises(ValueError, match="10x16 pixels are smaller than the 11x11 window"):
        metrics.ssim(a[:10], a[:10], data_range=1.0)
    with pytest.raises(ValueError, match="expected images of shape"):
        metrics.ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 16)), data_range=1.0)
