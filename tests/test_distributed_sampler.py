"""DistributedSampler against its definition and PyTorch's (one process: the ranks are
given explicitly). tests/mpi checks the default rank and world size under mpiexec."""
from __future__ import annotations

import itertools

import pytest

import minifm
from minifm.data import DataLoader, DistributedSampler, TensorDataset
from minifm.utils.data import DistributedSampler as Aliased


def shares(n, replicas, **kwargs):
    return [list(DistributedSampler(range(n), replicas, rank, **kwargs)) for rank in range(replicas)]


@pytest.mark.parametrize("n, replicas, drop_last", list(itertools.product(
    (7, 8, 12, 2), (1, 3, 4), (False, True))))
def test_ranks_get_equal_shares_that_cover_the_dataset(n, replicas, drop_last):
    parts = shares(n, replicas, drop_last=drop_last, seed=3)
    sizes = {len(p) for p in parts}
    assert len(sizes) == 1 and sizes == {len(DistributedSampler(range(n), replicas, 0, drop_last=drop_last))}
    seen = [i for p in parts for i in p]
    if drop_last:
        assert len(seen) == len(set(seen)) == replicas * (n // replicas)
    else:
        assert set(seen) == set(range(n)) and len(seen) == replicas * -(-n // replicas)


@pytest.mark.parametrize("n, replicas, drop_last", [(7, 3, False), (7, 3, True), (2, 4, False),
                                                    (10, 4, False), (10, 4, True)])
def test_order_without_shuffle_equals_pytorchs(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(replicas):
        expected = list(TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last))
        assert list(DistributedSampler(range(n), replicas, rank, shuffle=False,
                                       drop_last=drop_last)) == expected
    assert torch  # the oracle ran


def test_shuffling_follows_seed_and_epoch():
    a, b = DistributedSampler(range(50), 2, 0, seed=1), DistributedSampler(range(50), 2, 0, seed=1)
    assert list(a) == list(b) and list(a) != list(range(0, 50, 2))
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(DistributedSampler(range(50), 2, 0, seed=2)) != first


def test_feeds_a_dataloader_and_refuses_a_bad_rank():
    data = TensorDataset(minifm.arange(10))
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, 2, 1, shuffle=False))
    assert [b[0].tolist() for b in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(data, 2, 2)
    assert Aliased is DistributedSampler


def test_defaults_need_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
