"""SRGAN's discriminator (Ledig et al., 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network"), shrunk for small patches.

The paper's network: eight 3x3 convolutions whose stride alternates 1, 2 and whose
channels double every second layer (64 to 512), batch norm after all but the first,
LeakyReLU(0.2) throughout, then Dense(1024), LeakyReLU, Dense(1) and a sigmoid. Here:
six convolutions (ndf, ndf, 2 ndf, 2 ndf, 4 ndf, 4 ndf channels, strides 1, 2, 1, 2, 1,
2), so a patch shrinks 8x; global average pooling in place of the paper's flatten (any
patch size works); Linear(4 ndf, 8 ndf), LeakyReLU, Linear(8 ndf, 1). Like minifm's DCGAN
discriminator it returns logits (train it with F.binary_cross_entropy_with_logits).
"""
from __future__ import annotations

import minifm.nn as nn


class SRDiscriminator(nn.Module):
    """High-resolution images (N, in_channels, H, W) -> logits (N,): real > 0 > generated."""

    def __init__(self, in_channels=1, ndf=32):
        super().__init__()
        layers, channels = [], in_channels
        for i, (width, stride) in enumerate([(ndf, 1), (ndf, 2), (2 * ndf, 1), (2 * ndf, 2),
                                             (4 * ndf, 1), (4 * ndf, 2)]):
            layers.append(nn.Conv2d(channels, width, 3, stride, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(channels, 2 * channels), nn.LeakyReLU(0.2),
                                        nn.Linear(2 * channels, 1))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1)).view(-1)
