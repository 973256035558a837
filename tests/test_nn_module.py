"""The Module system against torch.nn.Module: registration, traversal order and names,
state_dict keys (equal to PyTorch's for the same tree), load_state_dict and its errors,
modes, zero_grad, apply, to(), deepcopy, repr, the containers, Parameter and the interop
helper that loads a PyTorch state_dict."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from minifm.nn.interop import load_torch_state_dict  # noqa: E402
from conftest import assert_close  # noqa: E402


def build(lib):
    """The same tree in minifm (lib=nn) and torch (lib=torch.nn): nesting, a Sequential,
    a ModuleList, a ModuleDict, a shared (tied) module, buffers of both kinds."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.Linear(4, 4)
            self.norm = lib.LayerNorm(4)
            self.register_buffer("scale", (torch if lib is torch.nn else minifm).ones(4))
            self.register_buffer("cache", (torch if lib is torch.nn else minifm).zeros(2),
                                 persistent=False)

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.Embedding(10, 4)
            self.blocks = lib.ModuleList([Block(), Block()])
            self.head = lib.Sequential(lib.Linear(4, 3), lib.ReLU(), lib.BatchNorm1d(3))
            self.extra = lib.ModuleDict({"b": lib.Linear(3, 2, bias=False), "a": lib.Identity()})
            self.tied = self.blocks[0]
            self.temperature = lib.Parameter((torch if lib is torch.nn else minifm).ones(1))

    return Net()


# ----------------------------------------------------------------------------- traversal
def test_names_and_order_match_torch():
    ours, theirs = build(nn), build(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert (sorted(n for n, _ in ours.named_modules(remove_duplicate=False))
            == sorted(n for n, _ in theirs.named_modules(remove_duplicate=False)))
    assert (list(ours.named_parameters(remove_duplicate=False)).__len__()
            == len(list(theirs.named_parameters(remove_duplicate=False))))
    assert [n for n, _ in ours.blocks.named_parameters(prefix="x")] == \
        [n for n, _ in theirs.blocks.named_parameters(prefix="x")]
    assert len(list(ours.parameters(recurse=False))) == 1
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))


def test_state_dict_keys_match_torch():
    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    pairs = [
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4)),
         torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.BatchNorm1d(4))),
        (nn.TransformerEncoderLayer(8, 2, 16), torch.nn.TransformerEncoderLayer(8, 2, 16)),
        (nn.TransformerDecoderLayer(8, 2, 16, bias=False),
         torch.nn.TransformerDecoderLayer(8, 2, 16, bias=False)),
        (nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True),
         torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True)),
        (nn.BatchNorm2d(3, affine=False, track_running_stats=False),
         torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False)),
    ]
    for a, b in pairs:
        assert list(a.state_dict()) == list(b.state_dict())
        for key, value in a.state_dict().items():
            assert tuple(value.shape) == tuple(b.state_dict()[key].shape), key


def test_state_dict_values_are_detached_views():
    lin = nn.Linear(2, 3)
    state = lin.state_dict()
    assert isinstance(state, OrderedDict)
    assert not state["weight"].requires_grad and not isinstance(state["weight"], nn.Parameter)
    with minifm.no_grad():
        lin.weight.fill_(2.0)
    assert np.all(state["weight"].numpy() == 2.0)  # shares memory, like PyTorch's
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_round_trip_and_from_torch():
    theirs = build(torch.nn)
    ours = build(nn)
    result = load_torch_state_dict(ours, theirs.state_dict())
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value)
    other = build(nn)
    other.load_state_dict(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert_close(other.state_dict()[key], value)
    # values are copied in, not aliased
    with minifm.no_grad():
        ours.embed.weight.fill_(0.0)
    assert not np.all(other.embed.weight.detach().numpy() == 0.0)


def test_load_state_dict_errors_list_every_problem():
    lin = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    state = lin.state_dict()
    state.pop("1.running_var")
    state["0.weight"] = minifm.zeros(5, 3)
    state["2.weight"] = minifm.zeros(1)
    with pytest.raises(RuntimeError) as err:
        lin.load_state_dict(state)
    message = str(err.value)
    assert message.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.running_var"' in message
    assert 'Unexpected key(s) in state_dict: "2.weight"' in message
    assert "size mismatch for 0.weight: copying a param with shape (5, 3) from checkpoint, " \
           "the shape in current model is (4, 3)" in message
    # strict=False: missing/unexpected are returned, shape mismatches still raise
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        lin.load_state_dict(state, strict=False)
    state["0.weight"] = minifm.ones(4, 3)
    missing, unexpected = lin.load_state_dict(state, strict=False)
    assert missing == ["1.running_var"] and unexpected == ["2.weight"]
    assert np.all(lin[0].weight.detach().numpy() == 1.0)
    with pytest.raises(TypeError, match="dict-like"):
        lin.load_state_dict([1, 2])


def test_load_state_dict_casts_dtype_and_accepts_numpy():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2, dtype=np.float64)})
    assert lin.weight.dtype == minifm.float32 and lin.weight.requires_grad
    assert np.all(lin.weight.detach().numpy() == np.eye(2, dtype=np.float32))


def test_interop_errors():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="'weight' is a str"):
        load_torch_state_dict(lin, {"weight": "nope", "bias": np.zeros(2)})
    with pytest.raises(TypeError, match="bfloat16"):
        load_torch_state_dict(lin, {"weight": torch.zeros(2, 2, dtype=torch.bfloat16),
                                    "bias": torch.zeros(2)})
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        load_torch_state_dict(lin, {"weight": torch.zeros(2, 2, requires_grad=True)})


# ----------------------------------------------------------------------------- registration
def test_attribute_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(minifm.ones(2))
    m.child = nn.Linear(2, 2)
    m.register_buffer("stats", minifm.zeros(2))
    m.plain = minifm.zeros(1)  # a plain Tensor attribute is neither parameter nor buffer
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"]
    assert list(m._buffers) == ["stats"] and "plain" not in m.state_dict()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = minifm.zeros(2)
    with pytest.raises(TypeError, match="as child module 'child'"):
        m.child = 3
    with pytest.raises(TypeError, match="as buffer 'stats'"):
        m.stats = 3
    m.stats = minifm.ones(2)  # a new Tensor replaces the buffer
    assert m.state_dict()["stats"].numpy().tolist() == [1.0, 1.0]
    m.w = None
    assert "w" not in m.state_dict() and m.w is None
    del m.child
    assert not hasattr(m, "child") and "child.weight" not in m.state_dict()
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        m.missing
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", minifm.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("q", minifm.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(minifm.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_non_persistent_buffer_moves_but_is_not_saved():
    block = nn.Module()
    block.register_buffer("mask", minifm.ones(3), persistent=False)
    assert "mask" not in block.state_dict()
    assert [n for n, _ in block.named_buffers()] == ["mask"]
    block.double()
    assert block.mask.dtype == minifm.float64


# ----------------------------------------------------------------------------- behaviour
def test_train_eval_zero_grad_requires_grad_apply():
    ours, theirs = build(nn), build(torch.nn)
    assert ours.training and all(m.training for m in ours.modules())
    assert ours.eval() is ours and not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="boolean"):
        ours.train("yes")

    x = minifm.tensor([[1, 2]])
    ours.embed(x).sum().backward()
    assert ours.embed.weight.grad is not None
    ours.zero_grad(set_to_none=False)
    assert np.all(ours.embed.weight.grad.numpy() == 0)
    ours.zero_grad()
    assert ours.embed.weight.grad is None

    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())

    visited, visited_torch = [], []
    ours.apply(lambda m: visited.append(type(m).__name__))
    theirs.apply(lambda m: visited_torch.append(type(m).__name__))
    assert visited == visited_torch  # children first, each module once


def test_to_keeps_parameter_identity_and_casts_floats_only():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    weight = net[0].weight
    net(minifm.randn(4, 2)).sum().backward()
    assert net.to(minifm.float64) is net
    assert net[0].weight is weight and weight.dtype == minifm.float64
    assert weight.grad.dtype == minifm.float64 and weight.requires_grad
    assert net[1].running_mean.dtype == minifm.float64
    assert net[1].num_batches_tracked.dtype == minifm.int64
    net.float()
    assert weight.dtype == minifm.float32
    net.to("cpu")
    net.to(device="cpu", dtype=minifm.float64)
    assert weight.dtype == minifm.float64
    net.to(minifm.zeros(1, dtype=minifm.float32))
    assert weight.dtype == minifm.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(minifm.int64)


def test_deepcopy_is_independent_and_keeps_ties():
    net = build(nn)
    clone = copy.deepcopy(net)
    assert clone.tied is clone.blocks[0] and clone.blocks[0].proj.weight is clone.tied.proj.weight
    assert isinstance(clone.temperature, nn.Parameter) and clone.temperature.requires_grad
    for (name, a), (_, b) in zip(net.state_dict().items(), clone.state_dict().items()):
        assert_close(a, b)
    with minifm.no_grad():
        clone.embed.weight.fill_(0.0)
    assert not np.all(net.embed.weight.detach().numpy() == 0.0)


def test_repr_matches_torch():
    def tree(lib):
        return lib.Sequential(
            lib.Linear(3, 4), lib.ReLU(), lib.BatchNorm1d(4, momentum=None), lib.LayerNorm((4, 2)),
            lib.Dropout(0.25), lib.Embedding(5, 3, padding_idx=0), lib.GELU("tanh"),
            lib.LeakyReLU(0.1, inplace=True), lib.Softmax(dim=-1), lib.Flatten(), lib.Identity(),
            lib.SiLU(), lib.Tanh(), lib.Sigmoid(), lib.BatchNorm2d(2, affine=False),
            lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU()]),
            lib.ModuleDict({"x": lib.Linear(1, 1)}), lib.ModuleList(), lib.Unflatten(1, (2, 2)),
            lib.Sequential(lib.Sequential(lib.Tanh())),
        )

    assert repr(tree(nn)) == repr(tree(torch.nn))
    assert repr(build(nn)) == repr(build(torch.nn))


# ----------------------------------------------------------------------------- containers
def test_sequential_like_torch():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    sliced = seq[1:]
    assert isinstance(sliced, nn.Sequential) and list(sliced._modules) == ["1", "2"]
    x = minifm.randn(4, 2)
    assert_close(seq(x), layers[2](layers[1](layers[0](x))))
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    seq.append(nn.Tanh())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is layers[2]
    seq.insert(0, nn.Identity())
    assert isinstance(seq[0], nn.Identity) and seq[1] is layers[0] and len(seq) == 4
    assert isinstance(seq.pop(0), nn.Identity) and len(seq) == 3
    seq[0] = nn.Sigmoid()
    assert isinstance(seq[0], nn.Sigmoid)
    seq.extend([nn.ReLU()])
    assert len(seq) == 4
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named[-1] is named.act
    assert list(named[:1]._modules) == ["fc"]


def test_module_list_and_dict_like_torch():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.ReLU())
    ml += [nn.Tanh()]
    ml.insert(1, nn.Sigmoid())
    assert [type(m).__name__ for m in ml] == ["Linear", "Sigmoid", "ReLU", "Tanh"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"] and isinstance(ml[0], nn.Sigmoid)
    assert isinstance(ml.pop(), nn.Tanh) and len(ml) == 2
    assert list(ml.state_dict()) == []

    md = nn.ModuleDict({"b": nn.Linear(1, 2), "a": nn.Linear(2, 1)})
    md["c"] = nn.ReLU()
    assert list(md) == ["b", "a", "c"] and "a" in md and len(md) == 3
    assert list(md.keys()) == ["b", "a", "c"] and md["a"].out_features == 1
    assert list(md.state_dict()) == ["b.weight", "b.bias", "a.weight", "a.bias"]
    assert isinstance(md.pop("c"), nn.ReLU) and "c" not in md
    md.update([("d", nn.Tanh())])
    assert [k for k, _ in md.items()] == ["b", "a", "d"]
    del md["b"]
    assert list(md) == ["a", "d"]
    md.clear()
    assert len(md) == 0


# ----------------------------------------------------------------------------- Parameter
def test_parameter():
    data = minifm.ones(2, 3)
    p = nn.Parameter(data)
    assert isinstance(p, minifm.Tensor) and p.requires_grad and p.is_leaf
    assert p._data is data._data  # wraps without copying
    assert repr(p) == "Parameter containing:\n" + repr(minifm.ones(2, 3, requires_grad=True))
    assert type(p * 2) is minifm.Tensor
    frozen = nn.Parameter(minifm.zeros(2, dtype=minifm.int64), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(minifm.zeros(2, dtype=minifm.int64))
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.Parameter([1.0])
    assert nn.Parameter().shape == (0,)
