"""Gradient buckets: the gradients of several parameters laid end to end in one flat
tensor, so that one message carries them all.

One all-reduce per parameter would pay MPI's per-message latency hundreds of times a
step; one for the whole model could start only when backward has finished. PyTorch's DDP
takes the middle road with buckets of about 25 MB filled in reverse parameter order,
the order in which backward produces the gradients, so the first bucket is ready while
backward is still running through the first layers.
"""
from __future__ import annotations

import numpy as np

from ...creation import zeros
from ...distributed import ReduceOp, all_reduce
from ...tensor import Tensor


class Bucket:
    """Parameters whose gradients travel in one message, and the flat tensor they fill."""

    def __init__(self, params):
        self.params = params
        sizes = [p.numel() for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.flat = zeros(self.offsets[-1], dtype=params[0].dtype, device=params[0].device)

    def slot(self, i):
        """Parameter i's place in the flat tensor (an array view of its shape)."""
        return self.flat._data[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[i].shape)

    def load_grads(self):
        """Fill the flat tensor with the parameters' .grad (zeros where there is none)."""
        for i, p in enumerate(self.params):
            self.slot(i)[...] = 0 if p.grad is None else p.grad._data

    def gradient(self, i):
        """A new tensor holding parameter i's slot (a gradient that owns its memory)."""
        return Tensor._make(self.slot(i).copy(), self.flat.device)


def assign_buckets(params, bucket_cap_mb=25):
    """Buckets of at most bucket_cap_mb megabytes (a larger parameter gets one of its
    own), taking `params` in reverse order; a bucket holds one dtype and device."""
    buckets, current, size = [], [], 0
    cap = bucket_cap_mb * 1024 * 1024
    for p in reversed(params):
        nbytes = p.numel() * p._data.itemsize
        if current and (size + nbytes > cap or (p.dtype, p.device) !=
                        (current[0].dtype, current[0].device)):
            buckets.append(Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(Bucket(current))
    return buckets


def all_reduce_gradients(params, bucket_cap_mb=25):
    """Average the .grad of `params` over all ranks, once backward has finished (the
    ChainerMN way: simple, and nothing overlaps). Every rank must pass the same
    parameters with the same gradients present; a parameter without .grad is left so."""
    for bucket in assign_buckets([p for p in params if p.grad is not None], bucket_cap_mb):
        bucket.load_grads()
        all_reduce(bucket.flat, op=ReduceOp.AVG)
        for i, p in enumerate(bucket.params):
            p.grad._data[...] = bucket.slot(i)
