"""DistributedSampler in 2 ranks: the process group's rank and size by default, and the
two ranks' shares of one epoch are disjoint and cover the dataset."""
from __future__ import annotations

import minifm
import minifm.distributed as dist
from minifm.data import DistributedSampler


def test_the_ranks_shares_cover_the_dataset_once():
    sampler = DistributedSampler(range(10), seed=4)
    assert (sampler.num_replicas, sampler.rank) == (2, dist.get_rank())
    sampler.set_epoch(3)
    mine = minifm.tensor(list(sampler))
    shares = [minifm.zeros_like(mine) for _ in range(2)]
    dist.all_gather(shares, mine)
    assert sorted(shares[0].tolist() + shares[1].tolist()) == list(range(10))
