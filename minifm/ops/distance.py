"""Lengths, angles and distances of vectors along a dim: F.normalize, F.cosine_similarity,
F.pairwise_distance, F.pdist. Composites of linalg.vector_norm (whose gradient is 0 at a
zero vector, as PyTorch's) and elementwise ops, so their gradients of every order come from
those ops."""
from __future__ import annotations

import numpy as np

from .elementwise import clamp
from .linalg import vector_norm
from .shape import broadcast_to


def _broadcast(op, x1, x2):
    try:
        shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the shapes {tuple(x1.shape)} and {tuple(x2.shape)} do not "
                           "broadcast") from None
    return broadcast_to(x1, shape), broadcast_to(x2, shape)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim: unit vectors, a zero vector left at zero."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    return input / clamp(vector_norm(input, p, dim, keepdim=True), min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1/||x1|| * x2/||x2||) along dim, the inputs broadcast against each other. Each
    norm is raised to at least eps, and as in PyTorch (which clamps them in place under
    no_grad) that clamp passes gradients straight through. Dividing before multiplying
    keeps the result in [-1, 1]."""
    x1, x2 = _broadcast("cosine_similarity", x1, x2)
    n1, n2 = vector_norm(x1, 2, dim, keepdim=True), vector_norm(x2, 2, dim, keepdim=True)
    n1 = n1 + (clamp(n1, min=eps) - n1).detach()
    n2 = n2 + (clamp(n2, min=eps) - n2).detach()
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim, the inputs broadcast (PyTorch adds eps to
    the difference, so equal vectors are eps * d^(1/p) apart, never at norm's kink)."""
    x1, x2 = _broadcast("pairwise_distance", x1, x2)
    return vector_norm(x1 - x2 + eps, p, -1, keepdim)


def pdist(input, p=2.0):
    """The p-norm distances between the rows of an (N, M) input, each pair i < j once, in
    row-major order: an N(N-1)/2 vector (the condensed form of cdist(input, input))."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got {p}")
    i, j = np.triu_indices(input.shape[0], 1)
    if input.shape[1] == 0:  # rows of no features are at distance 0, for every p (PyTorch's)
        return (input[i] - input[j]).sum(-1)
    return vector_norm(input[i] - input[j], p, -1)
