"""Dropout: zero each element with probability p during training (scaling the survivors by
1/(1-p) so the expected value is unchanged); the identity in eval mode. Dropout1d/2d/3d zero
whole channels, AlphaDropout (and FeatureAlphaDropout, per channel) keeps the mean and
variance of selu's outputs. The masks are drawn from the device's minifm generator, so
`minifm.manual_seed` makes them reproducible."""
from __future__ import annotations

from . import functional as F
from .module import Module


class _DropoutNd(Module):
    function = None  # the F.<dropout> it calls

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return type(self).function(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


def _dropout(name, function, doc):
    return type(name, (_DropoutNd,), {"function": staticmethod(function), "__doc__": doc})


Dropout = _dropout("Dropout", F.dropout, "Zero each element with probability p.")
Dropout1d = _dropout("Dropout1d", F.dropout1d, "Zero whole channels of (N, C, L) or (C, L).")
Dropout2d = _dropout("Dropout2d", F.dropout2d, "Zero whole channels of (N, C, H, W).")
Dropout3d = _dropout("Dropout3d", F.dropout3d,
                     "Zero whole channels of (N, C, D, H, W) or (C, D, H, W).")
AlphaDropout = _dropout("AlphaDropout", F.alpha_dropout, "Alpha dropout, for selu networks.")
FeatureAlphaDropout = _dropout("FeatureAlphaDropout", F.feature_alpha_dropout,
                               "Alpha dropout of whole channels.")
