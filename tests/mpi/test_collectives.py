"""minifm.distributed's collectives against their definitions, in 2 ranks."""
from __future__ import annotations

import numpy as np
import pytest

import minifm
import minifm.distributed as dist


def rank_values(rank):
    """A different float64 matrix on each rank."""
    return np.arange(6.0).reshape(2, 3) * (rank + 1) - 2 * rank


EVERY_RANK = [rank_values(r) for r in range(2)]


@pytest.mark.parametrize("op, expected", [
    (dist.ReduceOp.SUM, sum(EVERY_RANK)),
    (dist.ReduceOp.AVG, sum(EVERY_RANK) / 2),
    (dist.ReduceOp.MAX, np.maximum(*EVERY_RANK)),
    (dist.ReduceOp.MIN, np.minimum(*EVERY_RANK)),
])
def test_all_reduce_in_place(op, expected):
    t = minifm.tensor(rank_values(dist.get_rank()))
    assert dist.all_reduce(t, op=op) is None
    np.testing.assert_array_equal(t.numpy(), expected)


def test_all_reduce_of_a_non_contiguous_view_writes_through_to_its_base():
    base = minifm.tensor(rank_values(dist.get_rank()))
    dist.all_reduce(base.t())
    np.testing.assert_array_equal(base.numpy(), sum(EVERY_RANK))


def test_async_all_reduce_completes_on_wait():
    t = minifm.tensor(rank_values(dist.get_rank()), dtype=minifm.float32)
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    assert work.wait() and work.is_completed()
    np.testing.assert_allclose(t.numpy(), sum(EVERY_RANK) / 2)
    assert t.dtype == minifm.float32


@pytest.mark.parametrize("src", [0, 1])
def test_broadcast(src):
    t = minifm.tensor(rank_values(dist.get_rank()))
    dist.broadcast(t, src=src)
    np.testing.assert_array_equal(t.numpy(), EVERY_RANK[src])


def test_all_gather():
    out = [minifm.zeros(2, 3, dtype=minifm.float64) for _ in range(2)]
    dist.all_gather(out, minifm.tensor(rank_values(dist.get_rank())))
    for got, expected in zip(out, EVERY_RANK):
        np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("dst", [0, 1])
def test_reduce_reaches_dst_only(dst):
    mine = rank_values(dist.get_rank())
    t = minifm.tensor(mine)
    dist.reduce(t, dst=dst, op=dist.ReduceOp.SUM)
    np.testing.assert_array_equal(t.numpy(), sum(EVERY_RANK) if dist.get_rank() == dst else mine)


def test_barrier_and_world():
    assert dist.barrier() is None
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    assert (dist.get_rank(), dist.get_world_size()) in ((0, 2), (1, 2))


def test_all_gather_refuses_a_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="world of 2 ranks"):
        dist.all_gather([minifm.zeros(1)], minifm.zeros(1))
