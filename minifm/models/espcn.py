"""ESPCN (Shi et al., 2016, "Real-Time Single Image and Video Super-Resolution Using an
Efficient Sub-Pixel Convolutional Neural Network"): super-resolution by r in both
directions.

Every convolution works at the low resolution, and only the last step makes the image
larger: the last layer outputs r^2 * C channels per low-resolution pixel, and
PixelShuffle(r) rearranges each pixel's r^2 values of a channel into an r x r block of the
output (the "sub-pixel convolution"). Earlier networks (SRCNN) upscaled the input
bicubically first and then ran every convolution at the high resolution, r^2 times the
work for the same receptive field.

The layers are the paper's: a 5x5 convolution to n1 = 64 channels, a 3x3 one to n2 = 32,
each followed by tanh, and a 3x3 one to r^2 * C channels. One difference: the
convolutions are zero-padded ('same'), so an H x W input gives an rH x rW output, where
the paper's unpadded network loses a border of 4 low-resolution pixels and is trained
against the centre of the target.
"""
from __future__ import annotations

import minifm.nn as nn

from ..ops.activation import tanh


class ESPCN(nn.Module):
    """Low-resolution images (N, in_channels, H, W) -> (N, in_channels, rH, rW), r =
    upscale_factor; values on the scale of the training targets (no output activation)."""

    def __init__(self, upscale_factor=2, in_channels=1, n1=64, n2=32):
        super().__init__()
        self.upscale_factor = upscale_factor
        self.conv1 = nn.Conv2d(in_channels, n1, 5, padding=2)
        self.conv2 = nn.Conv2d(n1, n2, 3, padding=1)
        self.conv3 = nn.Conv2d(n2, in_channels * upscale_factor ** 2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x):
        x = tanh(self.conv1(x))
        x = tanh(self.conv2(x))
        return self.pixel_shuffle(self.conv3(x))
