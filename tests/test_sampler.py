"""Samplers (torch.utils.data's API) and the DataLoader driven by one: weighted draws
follow their weights, a seed repeats them, a mid-epoch resume replays the epoch, and
group-balanced weights draw an under-represented group as often as the others."""
import numpy as np
import pytest

import minifm
from minifm.data import (
    DataLoader, RandomSampler, SequentialSampler, TensorDataset, WeightedRandomSampler,
    group_balanced_weights,
)

torch = pytest.importorskip("torch")


def indices_of(sampler):
    return list(iter(sampler))


def test_weighted_draws_follow_the_weights():
    weights = [1.0, 0.0, 3.0, 6.0]
    sampler = WeightedRandomSampler(weights, 20000, generator=minifm.Generator(seed=0))
    drawn = indices_of(sampler)
    assert len(sampler) == len(drawn) == 20000
    frequencies = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(frequencies, np.array(weights) / sum(weights), atol=0.01)


def test_a_seed_repeats_the_draws_and_each_iteration_draws_anew():
    def sampler():
        return WeightedRandomSampler([1, 2, 3], 50, generator=minifm.Generator(seed=3))
    first = sampler()
    assert indices_of(first) == indices_of(sampler())
    assert indices_of(first) != indices_of(sampler())  # the second pass of `first`


def test_without_replacement_each_index_once():
    drawn = indices_of(WeightedRandomSampler([5, 1, 1, 1, 1], 5, replacement=False,
                                             generator=minifm.Generator(seed=1)))
    assert sorted(drawn) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kwargs", [dict(num_samples=0), dict(num_samples=2.0),
                                    dict(num_samples=True), dict(replacement=1),
                                    dict(weights=[[1.0, 2.0]])])
def test_bad_arguments_are_refused_as_pytorch_refuses_them(kwargs):
    args = {"weights": [1.0, 2.0], "num_samples": 3, **kwargs}
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.WeightedRandomSampler(**args)
    with pytest.raises(ValueError) as ours:
        WeightedRandomSampler(**args)
    assert str(ours.value).split(" but ")[0] == str(theirs.value).split(" but ")[0]


def test_sequential_and_random_samplers():
    data = list(range(7))
    assert indices_of(SequentialSampler(data)) == list(range(7))
    assert sorted(indices_of(RandomSampler(data, generator=minifm.Generator(seed=0)))) == data
    more = RandomSampler(data, num_samples=10, generator=minifm.Generator(seed=0))
    assert len(more) == 10 and sorted(indices_of(more)[:7]) == data
    repeats = RandomSampler(data, replacement=True, num_samples=30,
                            generator=minifm.Generator(seed=0))
    assert len(indices_of(repeats)) == 30 and set(indices_of(repeats)) <= set(data)


def dataset(n=20):
    return TensorDataset(minifm.arange(n))


def test_loader_batches_the_sampler_indices():
    sampler = WeightedRandomSampler([1.0] * 20, 10, generator=minifm.Generator(seed=0))
    expected = indices_of(WeightedRandomSampler([1.0] * 20, 10, generator=minifm.Generator(seed=0)))
    loader = DataLoader(dataset(), batch_size=4, sampler=sampler)
    assert len(loader) == 3
    assert [i for (x,) in loader for i in x.tolist()] == expected
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(dataset(), sampler=sampler, shuffle=True)


def test_loader_with_a_weighted_sampler_resumes_mid_epoch():
    def loader():
        gen = minifm.Generator(seed=5)
        sampler = WeightedRandomSampler(np.linspace(1, 2, 20), 12, generator=gen)
        return DataLoader(dataset(), batch_size=4, sampler=sampler), gen

    straight, _ = loader()
    epochs = [[x.tolist() for (x,) in straight] for _ in range(2)]

    stopped, gen = loader()
    batches = iter(stopped)
    assert next(batches)[0].tolist() == epochs[0][0]
    state, gen_state = stopped.state_dict(), gen.get_state()
    resumed, resumed_gen = loader()
    resumed.load_state_dict(state)
    resumed_gen.set_state(gen_state)
    assert [x.tolist() for (x,) in resumed] == epochs[0][1:]
    assert [x.tolist() for (x,) in resumed] == epochs[1]


def test_group_balanced_weights_draw_each_group_equally():
    groups = np.array(["b"] * 10 + ["a"] * 90)
    weights = group_balanced_weights(groups)
    assert np.isclose(weights[groups == "a"].sum(), weights[groups == "b"].sum())
    drawn = indices_of(WeightedRandomSampler(weights, 10000, generator=minifm.Generator(seed=0)))
    assert abs(np.mean(groups[drawn] == "b") - 0.5) < 0.02
