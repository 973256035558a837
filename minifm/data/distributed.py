"""DistributedSampler: each rank's share of a dataset's indices, for one epoch
(torch.utils.data.distributed.DistributedSampler's semantics).

All ranks draw the same permutation (seeded by seed + epoch), pad it by repeating its
start until its length divides by num_replicas (or, with drop_last, cut it down), and
rank r takes every num_replicas-th index from position r. So each rank gets the same
number of samples, and together they cover the dataset once per epoch (plus the padding).
The permutation comes from minifm.randperm, not PyTorch's generator: the semantics are
PyTorch's, the order for a given seed is not.
"""
from __future__ import annotations

import math

from .. import backend
from .. import distributed as dist
from ..creation import randperm
from .sampler import Sampler


class DistributedSampler(Sampler):
    """Iterate over this rank's indices of `dataset`; call set_epoch(epoch) before each
    epoch so that shuffling differs between epochs. num_replicas and rank default to the
    process group's world size and rank."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            generator = backend.Generator(seed=self.seed + self.epoch)
            indices = randperm(n, generator=generator).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            padding = self.total_size - n
            indices += (indices * math.ceil(padding / n))[:padding] if padding else []
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = epoch
