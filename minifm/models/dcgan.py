"""DCGAN (Radford, Metz & Chintala, 2015): a generator of transposed convolutions and a
discriminator of strided convolutions, with the paper's guidelines: no pooling, batch norm
in both nets (except the generator's output and the discriminator's input layer), ReLU
and a Tanh output in the generator, LeakyReLU(0.2) in the discriminator.

The layer stacks follow PyTorch's DCGAN example (`main` is an nn.Sequential), sized for
any power-of-two image from 8x8 up: the generator grows a 4x4 map by doubling its side
with each stage while halving the channels; the discriminator mirrors it.

Difference from the paper: the discriminator returns logits, not sigmoid probabilities.
Train it with `F.binary_cross_entropy_with_logits` (nn.BCEWithLogitsLoss), which is
sigmoid + BCE computed stably; apply `minifm.sigmoid` to get the probability D(x).

The same network, with `norm="layer"` or `norm="none"`, is a WGAN-GP critic (Gulrajani et
al., 2017): its output is then a score, not a logit. The gradient penalty constrains the
gradient of the critic with respect to each input separately, and batch norm makes every
output depend on the whole batch, so the paper drops it from the critic and recommends
layer normalization instead.
"""
from __future__ import annotations

import math

import minifm.nn as nn


def _stages(image_size):
    """How many times a 4x4 map doubles to reach image_size."""
    stages = int(math.log2(image_size)) - 2 if image_size >= 8 else 0
    if stages < 1 or 2 ** (stages + 2) != image_size:
        raise ValueError(f"DCGAN: image_size must be a power of two >= 8, got {image_size}")
    return stages


class Generator(nn.Module):
    """z of shape (N, nz, 1, 1) -> images (N, nc, image_size, image_size) in [-1, 1]."""

    def __init__(self, nz=100, ngf=64, nc=1, image_size=32):
        super().__init__()
        stages = _stages(image_size)
        ch = ngf * 2 ** (stages - 1)
        layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),  # 1x1 -> 4x4
                  nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(stages - 1):  # each doubles the side, halves the channels
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(weights_init)

    def forward(self, z):
        return self.main(z)


NORMS = ("batch", "layer", "none")


class Discriminator(nn.Module):
    """images (N, nc, image_size, image_size) -> logits (N,): real > 0 > fake.

    `norm` normalizes the inner stages: "batch" (DCGAN), or for a WGAN-GP critic "layer"
    (LayerNorm over each image's (channels, height, width), as in Gulrajani et al.) or
    "none". The layer stack keeps the same indices in all three, so their weights line up.
    """

    def __init__(self, nc=1, ndf=64, image_size=32, norm="batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"DCGAN: norm must be one of {', '.join(NORMS)}, got {norm!r}")
        stages = _stages(image_size)
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        ch, side = ndf, image_size // 2
        for _ in range(stages - 1):  # each halves the side, doubles the channels
            ch, side = ch * 2, side // 2
            layers += [nn.Conv2d(ch // 2, ch, 4, 2, 1, bias=False), _normalization(norm, ch, side),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]  # 4x4 -> 1x1: one logit
        self.main = nn.Sequential(*layers)
        self.apply(weights_init)

    def forward(self, x):
        return self.main(x).view(-1)


def _normalization(norm, channels, side):
    """The normalization layer of a discriminator stage with this output shape."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.LayerNorm((channels, side, side))
    return nn.Identity()


def weights_init(module):
    """The paper's init, for `model.apply(weights_init)` (both nets apply it when built):
    conv weights N(0, 0.02), batch-norm gains N(1, 0.02) and biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
