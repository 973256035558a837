"""output_attentions (Hugging Face's name) on GPT and BERT: every layer's attention
probabilities, checked against softmax(Q K^T / sqrt(d) + mask) computed in PyTorch from
the PyTorch twin's own queries and keys (tests/torch_models.py, same weights). The default
forward (the fused kernel) is unchanged, and both paths give the same logits."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import torch_models as tm  # noqa: E402
from conftest import assert_close, load_from_torch  # noqa: E402
from minifm.models import BertConfig, BertForMaskedLM, GPT, GPTConfig  # noqa: E402
from minifm.nn.attention import attention_weights  # noqa: E402

GPT_CONFIG = dict(block_size=16, vocab_size=23, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
BERT_CONFIG = dict(vocab_size=23, hidden_size=32, num_layers=2, num_heads=4,
                   intermediate_size=64, max_position_embeddings=16, dropout=0.0)


def torch_probabilities(q, k, mask):
    """softmax(q k^T / sqrt(d) + mask), mask True where attention is allowed."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def record_qk(attention_modules, split_qk):
    """Forward hooks on the twin's attention modules that record each one's (q, k)."""
    records = []

    def hook(module, inputs, output):
        records.append(split_qk(module, inputs[0]))
    handles = [m.register_forward_hook(hook) for m in attention_modules]
    return records, handles


def gpt_qk(module, x):
    B, T, C = x.shape
    q, k, _ = module.c_attn(x).split(module.n_embd, dim=2)
    return tuple(t.view(B, T, module.n_head, C // module.n_head).transpose(1, 2) for t in (q, k))


def bert_qk(module, x):
    B, T, C = x.shape
    return tuple(p(x).view(B, T, module.num_heads, C // module.num_heads).transpose(1, 2)
                 for p in (module.query, module.key))


def test_gpt_attentions_match_torch_softmax():
    torch.manual_seed(0)
    twin = tm.GPT(tm.GPTConfig(**GPT_CONFIG))
    model = load_from_torch(GPT(GPTConfig(**GPT_CONFIG)), twin)
    idx = np.random.default_rng(0).integers(0, 23, size=(3, 11))
    records, handles = record_qk([b.attn for b in twin.transformer.h], gpt_qk)
    with torch.no_grad():
        torch_logits, _ = twin(torch.from_numpy(idx))
    for h in handles:
        h.remove()

    logits, loss, attentions = model(minifm.tensor(idx), output_attentions=True)
    assert loss is None and len(attentions) == GPT_CONFIG["n_layer"]
    causal = torch.ones(11, 11, dtype=torch.bool).tril()
    for att, (q, k) in zip(attentions, records):
        assert tuple(att.shape) == (3, 4, 11, 11)
        assert_close(att, torch_probabilities(q, k, causal), atol=1e-6, rtol=1e-5)
        assert np.all(np.triu(att.detach().numpy(), 1) == 0)  # nothing seen from the future
    assert_close(logits, torch_logits, atol=1e-5, rtol=1e-4)


def test_gpt_default_output_unchanged_and_paths_agree():
    model = GPT(GPTConfig(**GPT_CONFIG))
    idx = minifm.tensor(np.random.default_rng(1).integers(0, 23, size=(2, 9)))
    out = model(idx, idx)
    assert len(out) == 2
    logits, loss, _ = model(idx, idx, output_attentions=True)
    assert_close(logits, out[0], atol=1e-5, rtol=1e-4)
    assert_close(loss, out[1], atol=1e-6, rtol=1e-5)


def test_gpt_attentions_with_kv_cache_cover_the_cached_keys():
    model = GPT(GPTConfig(**GPT_CONFIG)).eval()
    idx = minifm.tensor(np.random.default_rng(2).integers(0, 23, size=(1, 8)))
    full = model(idx, output_attentions=True)[2]
    caches = model.new_kv_caches(1, 8)
    model(idx[:, :5], kv_caches=caches)
    last = model(idx[:, 5:], kv_caches=caches, output_attentions=True)[2]
    for whole, tail in zip(full, last):
        assert tuple(tail.shape) == (1, 4, 3, 8)
        assert_close(tail, whole[:, :, 5:], atol=1e-6, rtol=1e-5)


def test_gpt_attentions_are_differentiable():
    model = GPT(GPTConfig(**GPT_CONFIG))
    idx = minifm.tensor(np.random.default_rng(3).integers(0, 23, size=(1, 6)))
    _, _, attentions = model(idx, output_attentions=True)
    attentions[-1][0, :, -1, 0].sum().backward()
    assert model.transformer.h[0].attn.c_attn.weight.grad is not None


@pytest.mark.parametrize("padded", [False, True])
def test_bert_attentions_match_torch_softmax(padded):
    torch.manual_seed(1)
    twin = tm.BertForMaskedLM(tm.BertConfig(**BERT_CONFIG)).eval()
    model = load_from_torch(BertForMaskedLM(BertConfig(**BERT_CONFIG)), twin).eval()
    ids = np.random.default_rng(4).integers(1, 23, size=(2, 10))
    if padded:
        ids[1, 6:] = 0  # [PAD]: masked out as keys
    records, handles = record_qk([layer.attention for layer in twin.bert.layers], bert_qk)
    with torch.no_grad():
        torch_logits, _ = twin(torch.from_numpy(ids))
    for h in handles:
        h.remove()

    logits, _, attentions = model(minifm.tensor(ids), output_attentions=True)
    keys = torch.from_numpy(ids != 0)[:, None, None, :]
    for att, (q, k) in zip(attentions, records):
        assert tuple(att.shape) == (2, 4, 10, 10)
        assert_close(att, torch_probabilities(q, k, keys), atol=1e-6, rtol=1e-5)
    if padded:
        assert np.all(attentions[0].detach().numpy()[1, :, :, 6:] == 0)
    assert_close(logits, torch_logits, atol=1e-5, rtol=1e-4)
    assert len(model(minifm.tensor(ids))) == 2


def test_inputs_embeds_equal_token_ids():
    gpt = GPT(GPTConfig(**GPT_CONFIG))
    idx = minifm.tensor(np.random.default_rng(5).integers(1, 23, size=(2, 7)))
    assert_close(gpt(inputs_embeds=gpt.transformer.wte(idx))[0], gpt(idx)[0])
    bert = BertForMaskedLM(BertConfig(**BERT_CONFIG)).eval()
    embeds = bert.bert.embeddings.word_embeddings(idx)
    assert_close(bert(inputs_embeds=embeds)[0], bert(idx)[0])
    with pytest.raises(ValueError, match="either idx or inputs_embeds"):
        gpt(idx, inputs_embeds=gpt.transformer.wte(idx))


def test_attention_weights_masks():
    q, k = minifm.randn(2, 3, 5, 4), minifm.randn(2, 3, 6, 4)
    allowed = minifm.rand(5, 6) > 0.3
    allowed[:, 0] = True
    expected = torch_probabilities(torch.from_numpy(q.numpy()), torch.from_numpy(k.numpy()),
                                   torch.from_numpy(allowed.numpy()))
    assert_close(attention_weights(q, k, attn_mask=allowed), expected, atol=1e-6, rtol=1e-5)
    additive = minifm.zeros(5, 6).masked_fill(~allowed, float("-inf"))
    assert_close(attention_weights(q, k, attn_mask=additive), expected, atol=1e-6, rtol=1e-5)
    causal = torch_probabilities(torch.from_numpy(q.numpy()), torch.from_numpy(k.numpy()),
                                 torch.ones(5, 6, dtype=torch.bool).tril())
    assert_close(attention_weights(q, k, is_causal=True), causal, atol=1e-6, rtol=1e-5)
