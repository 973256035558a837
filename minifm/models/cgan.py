"""A class-conditional DCGAN (Mirza & Osindero, 2014, on Radford et al.'s networks): both
networks are told the class, so the generator draws a digit of the class asked for and
the discriminator judges whether an image is a real example of its class.

The networks are DCGAN's (minifm/models/dcgan.py), each with one input widened:

- the generator's noise z (N, nz, 1, 1) is concatenated with a learned embedding of the
  label (N, embed_dim, 1, 1), so its first transposed convolution takes nz + embed_dim
  channels;
- the discriminator's image (N, nc, S, S) gets one more channel: a learned S x S map per
  class (an nn.Embedding of S * S numbers, reshaped), so every convolution of the first
  layer sees the class at every pixel.

The layer stacks (`main`) keep DCGAN's indices, and the embeddings are `label_embedding`
in both, so the state_dict keys are DCGAN's plus `label_embedding.weight`.
"""
from __future__ import annotations

import minifm
import minifm.nn as nn

from .dcgan import Discriminator, Generator


class ConditionalGenerator(Generator):
    """(z of shape (N, nz, 1, 1), labels (N,) int64) -> images (N, nc, S, S) in [-1, 1]."""

    def __init__(self, nz=100, ngf=64, nc=1, image_size=32, num_classes=10, embed_dim=10):
        super().__init__(nz + embed_dim, ngf, nc, image_size)
        self.label_embedding = nn.Embedding(num_classes, embed_dim)

    def forward(self, z, labels):
        embedded = self.label_embedding(labels).view(labels.shape[0], -1, 1, 1)
        return self.main(minifm.cat([z, embedded], 1))


class ConditionalDiscriminator(Discriminator):
    """(images (N, nc, S, S), labels (N,) int64) -> logits (N,): real of that class > 0.

    `norm` as in DCGAN's Discriminator ("layer" or "none" for a WGAN-GP critic).
    """

    def __init__(self, nc=1, ndf=64, image_size=32, num_classes=10, norm="batch"):
        super().__init__(nc + 1, ndf, image_size, norm)
        self.image_size = image_size
        self.label_embedding = nn.Embedding(num_classes, image_size * image_size)

    def forward(self, x, labels):
        side = self.image_size
        label_map = self.label_embedding(labels).view(labels.shape[0], 1, side, side)
        return self.main(minifm.cat([x, label_map], 1)).view(-1)
