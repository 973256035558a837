"""DistributedDataParallel in 2 ranks: each rank trains on half of every batch, and the
parameters must equal those of one process trained on the whole batches."""
from __future__ import annotations

import numpy as np
import pytest

import minifm
import minifm.distributed as dist
from minifm import nn, optim
from minifm.models.gpt import GPT, GPTConfig
from minifm.nn.parallel import DistributedDataParallel as DDP

STEPS = 5


def tiny_gpt(seed):
    """In float64: the key biases' true gradient is zero (softmax ignores a shift), and
    AdamW turns their float32 rounding noise into full-size steps."""
    minifm.manual_seed(seed)
    return GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2,
                         n_embd=16)).to(minifm.float64)


def mlp(seed):
    minifm.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def gpt_batches():
    gen = np.random.default_rng(0)
    return [(minifm.tensor(gen.integers(0, 11, (4, 8))), minifm.tensor(gen.integers(0, 11, (4, 8))))
            for _ in range(STEPS)]


def gpt_loss(model, batch):
    return model(*batch)[1]


def mlp_batches():
    gen = np.random.default_rng(1)
    return [(minifm.tensor(gen.standard_normal((6, 5)), dtype=minifm.float32),
             minifm.tensor(gen.integers(0, 3, 6))) for _ in range(STEPS)]


def mlp_loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def my_half(batch):
    """This rank's half of every tensor in the batch (rows rank*n/2 to (rank+1)*n/2)."""
    n = len(batch[0]) // 2
    return tuple(t[dist.get_rank() * n:(dist.get_rank() + 1) * n] for t in batch)


def train(model, batches, loss_fn, shard):
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        loss_fn(model, my_half(batch) if shard else batch).backward()
        opt.step()


def parameters(module):
    return {name: p.detach().numpy().copy() for name, p in module.named_parameters()}


@pytest.mark.parametrize("make, batches, loss_fn", [(tiny_gpt, gpt_batches, gpt_loss),
                                                    (mlp, mlp_batches, mlp_loss)])
@pytest.mark.parametrize("bucket_cap_mb", [25, 0.0002])
def test_two_ranks_on_half_batches_equal_one_process_on_whole_batches(make, batches, loss_fn,
                                                                      bucket_cap_mb):
    single = make(seed=0)
    train(single, batches(), loss_fn, shard=False)
    ddp = DDP(make(seed=dist.get_rank()), bucket_cap_mb=bucket_cap_mb)  # rank 0's weights win
    assert len(ddp.reducer.buckets) > (1 if bucket_cap_mb < 1 else 0)
    train(ddp, batches(), loss_fn, shard=True)
    expected = parameters(single)
    for name, value in parameters(ddp.module).items():
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=1e-6, err_msg=name)
    assert_same_on_every_rank(ddp.module)


def assert_same_on_every_rank(module):
    for name, p in module.named_parameters():
        gathered = [minifm.zeros_like(p.detach()) for _ in range(2)]
        dist.all_gather(gathered, p.detach())
        np.testing.assert_array_equal(gathered[0].numpy(), gathered[1].numpy(), err_msg=name)


def test_construction_broadcasts_rank_0s_parameters():
    ddp = DDP(mlp(seed=dist.get_rank()))
    assert_same_on_every_rank(ddp.module)
    for name, value in parameters(ddp.module).items():
        np.testing.assert_array_equal(value, parameters(mlp(seed=0))[name])


def test_no_sync_accumulates_locally_then_averages_the_sum():
    """Two micro-batches under no_sync, a third synchronised: the gradient is the sum of
    the three whole-batch gradients, the same on both ranks."""
    batches = mlp_batches()[:3]
    single = mlp(seed=0)
    for batch in batches:
        mlp_loss(single, batch).backward()
    ddp = DDP(mlp(seed=0))
    with ddp.no_sync():
        for batch in batches[:2]:
            mlp_loss(ddp, my_half(batch)).backward()
    local = ddp.module[0].weight.grad.numpy().copy()
    mlp_loss(ddp, my_half(batches[2])).backward()
    for p, q in zip(ddp.module.parameters(), single.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-6)
    assert not np.allclose(local, single[0].weight.grad.numpy())  # no_sync did not average


def test_state_dict_keys_carry_the_module_prefix():
    model = mlp(seed=0)
    ddp = DDP(model)
    assert list(ddp.state_dict()) == ["module." + k for k in model.state_dict()]
    assert ddp.module is model


def test_evaluation_under_no_grad_leaves_the_reducer_idle():
    ddp = DDP(mlp(seed=0))
    with minifm.no_grad():
        ddp(mlp_batches()[0][0])
    assert not ddp.reducer.active
