"""minifm.nn layers against torch.nn: the torch layer's weights are copied across (its
state_dict, through NumPy), then outputs, input gradients and every parameter gradient are
compared, in train and in eval mode, in float32 (and float64 for the norms), with
torch.testing's tolerances. Dropout, whose output is random, is tested by its statistics.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from minifm.nn.interop import load_torch_state_dict  # noqa: E402
from conftest import assert_close  # noqa: E402

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def pair(ours, theirs, dtype=np.float32):
    """The two modules with identical weights (torch's, copied into ours), in `dtype`."""
    theirs = theirs.to(TORCH_DTYPE[dtype])
    ours = ours.to(dtype)
    load_torch_state_dict(ours, theirs.state_dict())
    return ours, theirs


def run(module, inputs, lib, cotangents, kwargs=None):
    """Forward on copies of `inputs` (NumPy arrays; floating ones become leaves), then
    backward of sum(output * cotangent). Returns (outputs, leaves)."""
    if lib == "torch":
        leaves = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    else:
        leaves = [minifm.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    out = module(*leaves, **(kwargs or {}))
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
    total = 0
    for o, c in zip(outs, cotangents(outs)):
        total = total + (o * (torch.from_numpy(c) if lib == "torch" else minifm.tensor(c))).sum()
    total.backward()
    return outs, leaves


def check(ours, theirs, inputs, train=True, kwargs=None, torch_kwargs=None, **tol):
    """Compare outputs, input gradients, parameter gradients and buffers of the pair."""
    ours.train(train)
    theirs.train(train)
    rng = np.random.default_rng(7)
    drawn = []

    def cotangents(outs):
        if not drawn:
            drawn.extend(rng.standard_normal(tuple(o.shape)).astype(
                str(o.dtype).removeprefix("torch.")) for o in outs)
        return drawn

    t_outs, t_leaves = run(theirs, inputs, "torch", cotangents,
                           torch_kwargs if torch_kwargs is not None else kwargs)
    m_outs, m_leaves = run(ours, inputs, "minifm", cotangents,
                           _to_minifm(kwargs))
    assert len(m_outs) == len(t_outs)
    for a, b in zip(m_outs, t_outs):
        assert_close(a, b, **tol)
    for a, b in zip(m_leaves, t_leaves):
        if b.grad is not None:
            assert a.grad is not None and a.grad.dtype == a.dtype
            assert_close(a.grad, b.grad, **tol)
    t_params = dict(theirs.named_parameters())
    m_params = dict(ours.named_parameters())
    assert m_params.keys() == t_params.keys()
    for name, p in m_params.items():
        if t_params[name].grad is None:
            assert p.grad is None, name
        else:
            assert p.grad is not None, name
            assert p.grad.shape == p.shape and p.grad.dtype == p.dtype, name
            assert_close(p.grad, t_params[name].grad, msg=lambda m: f"{name}: {m}", **tol)
    t_buffers = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_close(b, t_buffers[name], msg=lambda m: f"{name}: {m}", **tol)


def _to_minifm(kwargs):
    if not kwargs:
        return kwargs
    return {k: minifm.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v
            for k, v in kwargs.items()}


def randn(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- Linear & co.
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_linear(bias, train):
    ours, theirs = pair(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias))
    check(ours, theirs, [randn(2, 4, 5)], train=train)


def test_linear_float64():
    ours, theirs = pair(nn.Linear(5, 3), torch.nn.Linear(5, 3), np.float64)
    check(ours, theirs, [randn(4, 5, dtype=np.float64)])


def test_identity_flatten_unflatten():
    x = randn(2, 3, 4, 5)
    for ours, theirs in [(nn.Identity(7, k=1), torch.nn.Identity(7, k=1)),
                         (nn.Flatten(), torch.nn.Flatten()),
                         (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
                         (nn.Unflatten(1, (3, 1)), torch.nn.Unflatten(1, (3, 1)))]:
        check(ours, theirs, [x])


# ----------------------------------------------------------------------------- activations
ACTIVATIONS = [
    (lambda m: m.ReLU()), (lambda m: m.LeakyReLU(0.2)), (lambda m: m.GELU()),
    (lambda m: m.GELU(approximate="tanh")), (lambda m: m.SiLU()), (lambda m: m.Tanh()),
    (lambda m: m.Sigmoid()), (lambda m: m.Softmax(dim=1)), (lambda m: m.LogSoftmax(dim=-1)),
    (lambda m: m.Softplus(beta=2.0, threshold=5.0)),
]


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_activation_modules(make):
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    check(ours, theirs, [randn(3, 4, 5) * 3])


# ----------------------------------------------------------------------------- Embedding
@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1},
                                    {"scale_grad_by_freq": True, "padding_idx": 0}])
def test_embedding(kwargs):
    ours, theirs = pair(nn.Embedding(7, 4, **kwargs), torch.nn.Embedding(7, 4, **kwargs))
    indices = np.array([[0, 2, 2, 6], [1, 2, 0, 0], [5, 3, 2, 6]])
    check(ours, theirs, [indices])
    assert repr(ours) == repr(theirs)


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    emb = nn.Embedding(5, 3, padding_idx=1)
    assert np.all(emb.weight.detach().numpy()[1] == 0)
    emb(minifm.tensor([1, 1, 3])).sum().backward()
    grad = emb.weight.grad.numpy()
    assert np.all(grad[1] == 0) and np.all(grad[3] == 1) and np.all(grad[[0, 2, 4]] == 0)


def test_embedding_max_norm_renormalizes_looked_up_rows():
    ours, theirs = pair(nn.Embedding(6, 4, max_norm=1.0), torch.nn.Embedding(6, 4, max_norm=1.0))
    check(ours, theirs, [np.array([[0, 1], [1, 4]])])
    assert_close(ours.weight, theirs.weight)  # rows 0, 1, 4 shrunk in place, the rest kept


def test_embedding_from_pretrained_and_errors():
    table = minifm.tensor(randn(4, 3))
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    assert_close(emb(minifm.tensor([3, 0])), table.numpy()[[3, 0]])
    with pytest.raises(IndexError, match="out of range"):
        emb(minifm.tensor([4]))
    with pytest.raises(TypeError, match="integer"):
        emb(minifm.tensor([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)


def test_embedding_backward_matches_add_at_on_large_vocabulary():
    """The sort + reduceat scatter equals np.add.at, repeated indices included."""
    from minifm.ops.embedding import scatter_add_rows
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 1000, 5000)
    rows = rng.standard_normal((5000, 8))
    expected = np.zeros((1000, 8))
    np.add.at(expected, idx, rows)
    np.testing.assert_allclose(scatter_add_rows(np, 1000, idx, rows), expected, atol=1e-12)
    assert scatter_add_rows(np, 3, idx[:0], rows[:0]).shape == (3, 8)


# ----------------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kwargs", [
    ((6,), {}), ((3, 6), {}), ((6,), {"elementwise_affine": False}),
    ((6,), {"bias": False}), ((6,), {"eps": 1e-2}),
])
def test_layer_norm(dtype, shape, kwargs):
    ours, theirs = pair(nn.LayerNorm(shape, **kwargs), torch.nn.LayerNorm(shape, **kwargs), dtype)
    with torch.no_grad():  # non-trivial affine parameters
        for p in theirs.parameters():
            p.add_(torch.randn(p.shape, dtype=p.dtype))
    load_torch_state_dict(ours, theirs.state_dict())
    x = randn(2, 4, 3, 6, dtype=dtype) * 3 + 1
    check(ours, theirs, [x], train=True)
    check(ours, theirs, [x], train=False)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"expected input with shape \(\*, 4\)"):
        nn.LayerNorm(4)(minifm.randn(2, 3))
    with pytest.raises(TypeError, match="dtype"):
        nn.LayerNorm(4)(minifm.randn(2, 4, dtype=minifm.float64))


# ----------------------------------------------------------------------------- BatchNorm
BATCHNORMS = [
    (lambda m, **kw: m.BatchNorm1d(4, **kw), (8, 4)),
    (lambda m, **kw: m.BatchNorm1d(4, **kw), (5, 4, 3)),
    (lambda m, **kw: m.BatchNorm2d(4, **kw), (3, 4, 2, 5)),
]
BN_OPTIONS = [{}, {"momentum": None}, {"affine": False}, {"bias": False},
              {"track_running_stats": False}, {"momentum": 0.3, "eps": 1e-3}]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,shape", BATCHNORMS)
@pytest.mark.parametrize("kwargs", BN_OPTIONS)
def test_batch_norm(dtype, make, shape, kwargs):
    ours, theirs = pair(make(nn, **kwargs), make(torch.nn, **kwargs), dtype)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn(p.shape, dtype=p.dtype))
    load_torch_state_dict(ours, theirs.state_dict())
    for step in range(3):  # running statistics accumulate over several batches
        check(ours, theirs, [randn(*shape, dtype=dtype, seed=step) * 2 + step], train=True)
    check(ours, theirs, [randn(*shape, dtype=dtype, seed=9)], train=False)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(minifm.randn(1, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(minifm.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(minifm.randn(2, 3))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(minifm.randn(2, 4))


# ----------------------------------------------------------------------------- Dropout
def test_dropout_statistics_and_modes():
    minifm.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = minifm.ones(200, 500, requires_grad=True)
    y = drop(x)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 100k draws: the std of the mean is 0.0015
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)  # gradient flows where kept
    drop.eval()
    assert drop(x) is x
    minifm.manual_seed(0)
    np.testing.assert_array_equal(nn.Dropout(0.3)(x).detach().numpy(), y.detach().numpy())
    assert repr(drop) == repr(torch.nn.Dropout(0.3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


# ----------------------------------------------------------------------------- attention
def mha_pair(dtype=np.float32, **kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(8, 2, **kwargs)
    with torch.no_grad():  # non-zero biases, so their gradients and effect are checked
        for name, p in theirs.named_parameters():
            if "bias" in name:
                p.add_(torch.randn(p.shape) * 0.1)
    return pair(nn.MultiheadAttention(8, 2, **kwargs), theirs, dtype)


def causal_mask(n):
    return np.triu(np.ones((n, n), dtype=bool), 1)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_self_attention(need_weights, batch_first):
    ours, theirs = mha_pair(batch_first=batch_first)
    x = randn(2, 5, 8) if batch_first else randn(5, 2, 8)
    for train in (True, False):
        check(ours, theirs, [x, x, x], train=train, kwargs={"need_weights": need_weights})


def test_multihead_self_attention_shares_one_input():
    """query is key is value: the packed projection path, gradients summed into x."""
    ours, theirs = mha_pair(batch_first=True)

    class SelfAttention:
        def __init__(self, mha):
            self.mha = mha

        def __call__(self, x):
            return self.mha(x, x, x, average_attn_weights=False)

        def __getattr__(self, name):
            return getattr(self.mha, name)

    check(SelfAttention(ours), SelfAttention(theirs), [randn(2, 5, 8)])


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["bool", "float", "padding", "both", "3d"])
def test_multihead_attention_masks(need_weights, mask_kind):
    ours, theirs = mha_pair(batch_first=True)
    q, k = randn(2, 4, 8, seed=1), randn(2, 6, 8, seed=2)
    kwargs = {"need_weights": need_weights}
    if mask_kind in ("bool", "both"):
        kwargs["attn_mask"] = torch.from_numpy(np.triu(np.ones((4, 6), dtype=bool), 3))
    if mask_kind == "float":
        kwargs["attn_mask"] = torch.from_numpy(randn(4, 6, seed=3))
    if mask_kind == "3d":
        kwargs["attn_mask"] = torch.from_numpy(randn(4, 4, 6, seed=3))
    if mask_kind in ("padding", "both"):
        kwargs["key_padding_mask"] = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    check(ours, theirs, [q, k, k], kwargs=kwargs)


def test_multihead_attention_causal_hint_and_weights_per_head():
    ours, theirs = mha_pair()
    x = randn(5, 2, 8)
    mask = torch.from_numpy(causal_mask(5))
    check(ours, theirs, [x, x, x], kwargs={"attn_mask": mask, "is_causal": True,
                                           "need_weights": False})
    check(ours, theirs, [x, x, x], kwargs={"attn_mask": mask, "average_attn_weights": False})
    with pytest.raises(RuntimeError, match="is_causal"):
        ours(*(minifm.tensor(x),) * 3, is_causal=True)


@pytest.mark.parametrize("kwargs", [
    {"bias": False}, {"kdim": 3, "vdim": 5}, {"add_bias_kv": True}, {"add_zero_attn": True},
    {"add_bias_kv": True, "add_zero_attn": True},
])
def test_multihead_attention_options(kwargs):
    ours, theirs = mha_pair(batch_first=True, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    q = randn(2, 4, 8, seed=1)
    k, v = randn(2, 6, kwargs.get("kdim", 8), seed=2), randn(2, 6, kwargs.get("vdim", 8), seed=3)
    mask = {"key_padding_mask": torch.tensor([[False] * 6, [False] * 5 + [True]]),
            "attn_mask": torch.from_numpy(np.triu(np.ones((4, 6), dtype=bool), 3))}
    check(ours, theirs, [q, k, v], kwargs=mask)


def test_multihead_attention_unbatched():
    ours, theirs = mha_pair()
    check(ours, theirs, [randn(5, 8, seed=1), randn(3, 8, seed=2), randn(3, 8, seed=3)],
          kwargs={"key_padding_mask": torch.tensor([False, True, False])})


def test_multihead_attention_errors():
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="last dimension 8"):
        mha(minifm.randn(3, 2, 6), minifm.randn(3, 2, 8), minifm.randn(3, 2, 8))
    with pytest.raises(ValueError, match="attn_mask of shape"):
        x = minifm.randn(3, 2, 8)
        mha(x, x, x, attn_mask=minifm.zeros(3, 4))
    with pytest.raises(ValueError, match="key_padding_mask of shape"):
        mha(x, x, x, key_padding_mask=minifm.zeros(3, 2))


# ----------------------------------------------------------------------------- Transformer
LAYER_OPTIONS = [
    {}, {"norm_first": True}, {"activation": "gelu", "batch_first": True},
    {"bias": False, "norm_first": True, "layer_norm_eps": 1e-3},
]


@pytest.mark.parametrize("kwargs", LAYER_OPTIONS)
def test_transformer_encoder_layer(kwargs):
    torch.manual_seed(0)
    ours, theirs = pair(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, **kwargs),
                        torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, **kwargs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    src = randn(2, 5, 8) if kwargs.get("batch_first") else randn(5, 2, 8)
    mask = {"src_mask": torch.from_numpy(causal_mask(5)),
            "src_key_padding_mask": torch.tensor([[False] * 5, [False] * 3 + [True] * 2])}
    for train in (True, False):
        check(ours, theirs, [src], train=train, kwargs=mask)
        check(ours, theirs, [src], train=train)


@pytest.mark.parametrize("kwargs", LAYER_OPTIONS)
def test_transformer_decoder_layer(kwargs):
    torch.manual_seed(0)
    ours, theirs = pair(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, **kwargs),
                        torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, **kwargs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    first = kwargs.get("batch_first")
    tgt = randn(2, 4, 8, seed=1) if first else randn(4, 2, 8, seed=1)
    memory = randn(2, 6, 8, seed=2) if first else randn(6, 2, 8, seed=2)
    masks = {"tgt_mask": torch.from_numpy(causal_mask(4)),
             "memory_key_padding_mask": torch.tensor([[False] * 6, [False] * 4 + [True] * 2])}
    for train in (True, False):
        check(ours, theirs, [tgt, memory], train=train, kwargs=masks)


def test_transformer_encoder_and_decoder_stacks():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    theirs = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(8),
                                         enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                            batch_first=True), 2,
                                 norm=nn.LayerNorm(8))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours, theirs = pair(ours, theirs)
    check(ours, theirs, [randn(2, 5, 8)], kwargs={"mask": torch.from_numpy(causal_mask(5))})

    dec_t = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2)
    dec_m = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2)
    assert list(dec_m.state_dict()) == list(dec_t.state_dict())
    dec_m, dec_t = pair(dec_m, dec_t)
    check(dec_m, dec_t, [randn(4, 2, 8), randn(6, 2, 8)])


def test_dropout_inside_attention_and_layers():
    """Attention-weight dropout acts in training only; in eval a layer built with
    dropout > 0 equals PyTorch's exactly."""
    minifm.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = minifm.randn(4, 50, 8)
    _, weights = mha(x, x, x, average_attn_weights=False)
    zero = (weights.detach().numpy() == 0).mean()
    assert abs(zero - 0.5) < 0.02  # 20k weights
    _, weights = mha.eval()(x, x, x)
    np.testing.assert_allclose(weights.detach().numpy().sum(-1), 1.0, rtol=1e-5)

    torch.manual_seed(0)
    ours, theirs = pair(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3),
                        torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3))
    check(ours, theirs, [randn(5, 2, 8)], train=False)
    ours.train()
    first, second = ours(minifm.tensor(randn(5, 2, 8))), ours(minifm.tensor(randn(5, 2, 8)))
    assert not np.allclose(first.detach().numpy(), second.detach().numpy())
