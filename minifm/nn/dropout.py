"""Dropout: zero each element with probability p during training (scaling the survivors by
1/(1-p) so the expected value is unchanged); the identity in eval mode. The mask is drawn
from the device's minifm generator, so `minifm.manual_seed` makes it reproducible."""
from __future__ import annotations

from . import functional as F
from .module import Module


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
