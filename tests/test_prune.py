"""minifm.nn.utils.prune against torch.nn.utils.prune.

Twin modules get the same weights in both frameworks; every deterministic method
(L1 unstructured, Ln structured, global L1, custom masks, and iterative compositions of
them) must give the very same masks, state_dict keys and outputs. The random methods draw
from minifm's own generator, so they are checked by their properties: the count pruned,
whole channels, composition with earlier masks, and repeatability under manual_seed.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.utils.prune as tprune  # noqa: E402

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from minifm.nn.utils import prune  # noqa: E402

from conftest import assert_close, to_numpy, to_torch  # noqa: E402


def twin_linear(in_features=12, out_features=8, seed=0):
    """A minifm Linear and a torch Linear holding the same weights."""
    ours = nn.Linear(in_features, out_features)
    theirs = torch.nn.Linear(in_features, out_features)
    rng = np.random.default_rng(seed)
    for p, q in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
        value = rng.standard_normal(tuple(p.shape)).astype(np.float32)
        p._data[...] = value
        q.data = torch.from_numpy(value.copy())
    return ours, theirs


def twin_conv(seed=0):
    ours = nn.Conv2d(3, 6, 3)
    theirs = torch.nn.Conv2d(3, 6, 3)
    value = np.random.default_rng(seed).standard_normal((6, 3, 3, 3)).astype(np.float32)
    ours.weight._data[...] = value
    theirs.weight.data = torch.from_numpy(value.copy())
    return ours, theirs


def assert_same_mask(ours, theirs, name="weight"):
    np.testing.assert_array_equal(to_numpy(getattr(ours, name + "_mask")),
                                  to_numpy(getattr(theirs, name + "_mask")))
    assert_close(getattr(ours, name), getattr(theirs, name))


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 1.0, 0, 7, 96])
def test_l1_unstructured_equals_torch(amount):
    ours, theirs = twin_linear()
    prune.l1_unstructured(ours, "weight", amount=amount)
    tprune.l1_unstructured(theirs, "weight", amount=amount)
    assert_same_mask(ours, theirs)


@pytest.mark.parametrize("n", [1, 2, float("inf"), -float("inf")])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("amount", [0.25, 3])
def test_ln_structured_equals_torch(n, dim, amount):
    ours, theirs = twin_conv()
    prune.ln_structured(ours, "weight", amount=amount, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    assert_same_mask(ours, theirs)


def test_ln_structured_frobenius_equals_torch():
    ours, theirs = twin_linear()
    prune.ln_structured(ours, "weight", amount=0.5, n="fro", dim=0)
    tprune.ln_structured(theirs, "weight", amount=0.5, n="fro", dim=0)
    assert_same_mask(ours, theirs)


def test_global_unstructured_equals_torch():
    (a, ta), (b, tb), (c, tc) = twin_linear(12, 8, 0), twin_linear(8, 4, 1), twin_conv(2)
    # a layer pruned before keeps its mask as the default of the global ranking
    prune.l1_unstructured(b, "weight", amount=0.2)
    tprune.l1_unstructured(tb, "weight", amount=0.2)
    ours = [(a, "weight"), (b, "weight"), (c, "weight"), (a, "bias")]
    theirs = [(ta, "weight"), (tb, "weight"), (tc, "weight"), (ta, "bias")]
    prune.global_unstructured(ours, pruning_method=prune.L1Unstructured, amount=0.6)
    tprune.global_unstructured(theirs, pruning_method=tprune.L1Unstructured, amount=0.6)
    for (m, name), (tm, _) in zip(ours, theirs):
        assert_same_mask(m, tm, name)
    fractions = [float(to_numpy(getattr(m, n + "_mask")).mean()) for m, n in ours]
    assert len(set(fractions)) > 1  # layers keep different fractions


def test_iterative_pruning_composes_masks_as_torch():
    """Unstructured on the survivors, structured on the channels not wholly pruned, and a
    custom mask on the whole tensor, in one PruningContainer."""
    ours, theirs = twin_linear(16, 10)
    custom = (np.arange(160).reshape(10, 16) % 7 != 0).astype(np.float32)
    steps = [
        ("l1_unstructured", dict(amount=0.3)),
        ("ln_structured", dict(amount=0.4, n=2, dim=0)),
        ("l1_unstructured", dict(amount=5)),
        ("ln_structured", dict(amount=2, n=1, dim=1)),
    ]
    for fn, kwargs in steps:
        getattr(prune, fn)(ours, "weight", **kwargs)
        getattr(tprune, fn)(theirs, "weight", **kwargs)
        assert_same_mask(ours, theirs)
    prune.custom_from_mask(ours, "weight", mask=minifm.tensor(custom))
    tprune.custom_from_mask(theirs, "weight", mask=torch.from_numpy(custom))
    assert_same_mask(ours, theirs)
    container = [h for h, _ in ours._forward_pre_hooks][0]
    assert isinstance(container, prune.PruningContainer) and len(container) == 5
    assert len(ours._forward_pre_hooks) == 1


def test_importance_scores_rank_instead_of_the_weights():
    ours, theirs = twin_linear()
    scores = np.random.default_rng(5).random((8, 12)).astype(np.float32)
    prune.l1_unstructured(ours, "weight", amount=0.5, importance_scores=minifm.tensor(scores))
    tprune.l1_unstructured(theirs, "weight", amount=0.5,
                           importance_scores=torch.from_numpy(scores))
    assert_same_mask(ours, theirs)


def test_state_dict_keys_and_forward_equal_torch():
    ours, theirs = twin_linear()
    prune.l1_unstructured(ours, "weight", amount=0.5)
    tprune.l1_unstructured(theirs, "weight", amount=0.5)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["bias", "weight_orig", "weight_mask"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = np.random.default_rng(1).standard_normal((3, 12)).astype(np.float32)
    assert_close(ours(minifm.tensor(x)), theirs(torch.from_numpy(x)))


def test_identity_and_custom_from_mask():
    ours, theirs = twin_linear()
    prune.identity(ours, "bias")
    tprune.identity(theirs, "bias")
    assert_same_mask(ours, theirs, "bias")
    mask = np.random.default_rng(2).integers(0, 2, (8, 12)).astype(np.float32)
    prune.custom_from_mask(ours, "weight", mask=minifm.tensor(mask))
    tprune.custom_from_mask(theirs, "weight", mask=torch.from_numpy(mask))
    assert_same_mask(ours, theirs)


def test_pruned_weights_stay_zero_through_optimizer_steps():
    ours, theirs = twin_linear()
    prune.l1_unstructured(ours, "weight", amount=0.6)
    tprune.l1_unstructured(theirs, "weight", amount=0.6)
    opt = minifm.optim.AdamW(ours.parameters(), lr=0.05, weight_decay=0.1)
    topt = torch.optim.AdamW(theirs.parameters(), lr=0.05, weight_decay=0.1)
    zeros = to_numpy(ours.weight_mask) == 0
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.standard_normal((4, 12)).astype(np.float32)
        for model, optimizer, xin in ((ours, opt, minifm.tensor(x)),
                                      (theirs, topt, torch.from_numpy(x))):
            optimizer.zero_grad()
            (model(xin) ** 2).sum().backward()
            optimizer.step()
        np.testing.assert_array_equal(to_numpy(ours.weight_orig.grad)[zeros], 0)
        ours(minifm.tensor(x))  # the pre-hook recomputes weight from the stepped weight_orig
        theirs(torch.from_numpy(x))
        assert np.all(to_numpy(ours.weight)[zeros] == 0)
        assert_close(ours.weight, theirs.weight)
        assert_close(ours.weight_orig, theirs.weight_orig)


def test_remove_makes_pruning_permanent():
    ours, theirs = twin_linear()
    for m, p in ((ours, prune), (theirs, tprune)):
        p.l1_unstructured(m, "weight", amount=0.5)
        p.ln_structured(m, "weight", amount=2, n=2, dim=0)
    orig = ours.weight_orig
    assert prune.is_pruned(ours) and tprune.is_pruned(theirs)
    prune.remove(ours, "weight")
    tprune.remove(theirs, "weight")
    assert not prune.is_pruned(ours)
    assert ours.weight is orig and isinstance(ours.weight, nn.Parameter)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert ours._forward_pre_hooks == []
    assert_close(ours.weight, theirs.weight)
    # trained further, the zeros are free to move: nothing masks them any more
    ours.weight.grad = minifm.ones(8, 12)
    minifm.optim.SGD(ours.parameters(), lr=0.1).step()
    assert np.count_nonzero(to_numpy(ours.weight) == 0) == 0


def test_is_pruned_looks_through_the_tree():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert not prune.is_pruned(model)
    prune.random_unstructured(model[2], "weight", amount=0.5)
    assert prune.is_pruned(model)
    assert "2.weight_mask" in model.state_dict()


def test_random_unstructured_prunes_the_count_and_composes():
    m = nn.Linear(20, 10)
    prune.random_unstructured(m, "weight", amount=0.3)
    mask = to_numpy(m.weight_mask)
    assert (mask == 0).sum() == 60
    prune.random_unstructured(m, "weight", amount=0.5)  # half of the 140 survivors
    new = to_numpy(m.weight_mask)
    assert (new == 0).sum() == 60 + 70 and np.all(new[mask == 0] == 0)


def test_random_structured_prunes_whole_channels():
    m = nn.Conv2d(3, 8, 3)
    prune.random_structured(m, "weight", amount=3, dim=0)
    per_channel = to_numpy(m.weight_mask).reshape(8, -1)
    assert sorted(per_channel.min(axis=1)) == sorted(per_channel.max(axis=1))
    assert (per_channel.max(axis=1) == 0).sum() == 3
    prune.random_structured(m, "weight", amount=0.4, dim=0)  # 2 of the 5 left
    assert (to_numpy(m.weight_mask).reshape(8, -1).max(axis=1) == 0).sum() == 5


def test_random_pruning_repeats_under_manual_seed():
    masks = []
    for _ in range(2):
        minifm.manual_seed(7)
        m = nn.Linear(10, 10)
        prune.random_unstructured(m, "weight", amount=0.5)
        masks.append(to_numpy(m.weight_mask))
    np.testing.assert_array_equal(*masks)


def test_global_random_unstructured_prunes_the_count():
    a, b = nn.Linear(10, 5), nn.Linear(5, 4)
    prune.global_unstructured([(a, "weight"), (b, "weight")],
                              pruning_method=prune.RandomUnstructured, amount=30)
    assert sum((to_numpy(m.weight_mask) == 0).sum() for m in (a, b)) == 30


def test_prune_method_on_a_bare_tensor():
    t = minifm.tensor([[1.0, -3.0], [0.5, 2.0]])
    out = prune.L1Unstructured(amount=2).prune(t)
    expected = tprune.L1Unstructured(amount=2).prune(to_torch(t))
    assert_close(out, expected)


@pytest.mark.parametrize("amount, error", [(-1, ValueError), (1.5, ValueError),
                                           ("half", TypeError), (97, ValueError)])
def test_bad_amounts_are_refused_as_torch_does(amount, error):
    ours, theirs = twin_linear()
    with pytest.raises(error):
        tprune.l1_unstructured(theirs, "weight", amount=amount)
    with pytest.raises(error):
        prune.l1_unstructured(ours, "weight", amount=amount)


def test_errors_leave_the_module_as_it_was():
    m = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="has to be pruned"):
        prune.remove(m, "weight")
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(m, "bias", amount=1, n=2, dim=0)
    assert list(m.state_dict()) == ["weight", "bias"] and not prune.is_pruned(m)
    prune.l1_unstructured(m, "weight", amount=3)
    with pytest.raises(ValueError, match="smaller than"):
        prune.l1_unstructured(m, "weight", amount=10)  # only 9 left unpruned
    assert [type(h) for h, _ in m._forward_pre_hooks] == [prune.L1Unstructured]
    assert (to_numpy(m.weight_mask) == 0).sum() == 3
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured([(m, "weight")], pruning_method=prune.LnStructured,
                                  amount=1, n=2, dim=0)
