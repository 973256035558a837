"""minifm.models against PyTorch: GPT against nanoGPT, BERT and DCGAN against the equivalent
torch modules of tests/torch_models.py. Weights are copied across with load_state_dict,
then outputs, losses and every parameter gradient are compared. Behaviour tests cover
the KV cache, Hugging Face GPT-2 conversion, BERT's masking and its padding mask."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
import torch_models as tm  # noqa: E402
from conftest import assert_close, assert_grads_close, load_from_torch, to_numpy  # noqa: E402
from minifm.models import (  # noqa: E402
    GPT, BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel,
    Discriminator, GPTConfig, Generator, convert_hf_gpt2_state_dict, mask_tokens,
)

SMALL_GPT = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65, dropout=0.0)
SMALL_BERT = dict(vocab_size=30, hidden_size=32, num_layers=2, num_heads=2,
                  intermediate_size=64, max_position_embeddings=16, dropout=0.0)


def gpt_pair(seed=0, **overrides):
    config = dict(SMALL_GPT, **overrides)
    torch.manual_seed(seed)
    torch_model = tm.GPT(tm.GPTConfig(**config))
    return load_from_torch(GPT(GPTConfig(**config)), torch_model), torch_model


def token_batch(vocab, shape, seed):
    return np.random.default_rng(seed).integers(0, vocab, size=shape)


# ============================================================================ GPT
def test_gpt_names_and_state_dict_match_nanogpt():
    torch.manual_seed(0)
    torch_model = tm.GPT(tm.GPTConfig(**SMALL_GPT))
    model = GPT(GPTConfig(**SMALL_GPT))
    assert list(model.state_dict()) == list(torch_model.state_dict())
    names = [n for n, _ in model.named_parameters()]
    assert names == [n for n, _ in torch_model.named_parameters()]
    model.load_state_dict(torch_model.state_dict())  # torch tensors, lm_head.weight included
    for name, value in torch_model.state_dict().items():
        assert_close(model.state_dict()[name], value, msg=name)
    # load_state_dict copied into the tied parameter: the tie survives
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.get_num_params() == sum(p.numel() for p in torch_model.parameters()) - 16 * 32
    total = sum(p.numel() for p in torch_model.parameters())
    assert model.get_num_params(non_embedding=False) == total


def test_gpt_forward_backward_matches_nanogpt():
    model, torch_model = gpt_pair()
    idx = token_batch(65, (3, 16), seed=1)
    targets = token_batch(65, (3, 16), seed=2)
    targets[0, :4] = -1  # ignored, as in nanoGPT

    logits, loss = model(minifm.tensor(idx), minifm.tensor(targets))
    t_logits, t_loss = torch_model(torch.from_numpy(idx), torch.from_numpy(targets))
    assert logits.shape == (3, 16, 65)
    assert_close(logits, t_logits, atol=1e-5, rtol=1e-4)
    assert_close(loss, t_loss, atol=1e-6, rtol=1e-5)

    loss.backward()
    t_loss.backward()
    assert_grads_close(model, torch_model, atol=1e-6, rtol=1e-4)

    # without targets: the last position only, no loss
    with minifm.no_grad():
        last, none = model(minifm.tensor(idx[:, :5]))
    t_last, _ = torch_model(torch.from_numpy(idx[:, :5]))
    assert none is None and last.shape == (3, 1, 65)
    assert_close(last, t_last, atol=1e-5, rtol=1e-4)


def test_gpt_init_follows_gpt2():
    minifm.manual_seed(0)
    model = GPT(GPTConfig(n_layer=4, n_head=2, n_embd=64, block_size=32, vocab_size=256))
    params = dict(model.named_parameters())
    c_proj = np.concatenate([to_numpy(p.detach()).ravel() for n, p in params.items()
                             if n.endswith("c_proj.weight")])
    c_fc = to_numpy(params["transformer.h.0.mlp.c_fc.weight"].detach())
    assert abs(c_proj.std() - 0.02 / math.sqrt(8)) < 0.001
    assert abs(c_fc.std() - 0.02) < 0.001
    assert abs(to_numpy(params["transformer.wte.weight"].detach()).std() - 0.02) < 0.001
    for name, p in params.items():
        if name.endswith(".bias"):
            assert not to_numpy(p.detach()).any(), name
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            assert (to_numpy(p.detach()) == 1).all(), name


def test_gpt_dropout_only_in_training():
    minifm.manual_seed(0)
    model = GPT(GPTConfig(**dict(SMALL_GPT, dropout=0.2)))
    idx = minifm.tensor(token_batch(65, (2, 16), seed=7))
    with minifm.no_grad():
        first, second = (to_numpy(model(idx, idx)[0]) for _ in range(2))
        assert np.abs(first - second).max() > 1e-3
        model.eval()
        first, second = (to_numpy(model(idx, idx)[0]) for _ in range(2))
        np.testing.assert_array_equal(first, second)


def test_gpt_rejects_too_long_sequence():
    model, _ = gpt_pair()
    with pytest.raises(ValueError, match="block size"):
        model(minifm.zeros(1, 17, dtype=minifm.int64))


def test_kv_cache_logits_match_full_forward():
    model, _ = gpt_pair()
    model.eval()
    idx = minifm.tensor(token_batch(65, (2, 12), seed=3))
    with minifm.no_grad():
        caches = model.new_kv_caches(2, 12)
        model(idx[:, :8], kv_caches=caches)             # prefill 8 tokens
        model(idx[:, 8:10], kv_caches=caches)           # a chunk of 2 after a cache
        for t in (10, 11):                              # then one token at a time
            cached, _ = model(idx[:, t:t + 1], kv_caches=caches)
            full, _ = model(idx[:, :t + 1])
            assert_close(cached, full, atol=1e-5, rtol=1e-4)
    assert caches[0].length == 12


@pytest.mark.parametrize("top_k", [None, 5])
def test_cached_generation_equals_uncached(top_k):
    model, _ = gpt_pair()
    model.eval()
    prompt = minifm.tensor(token_batch(65, (2, 3), seed=4))
    # 3 + 20 tokens outgrow block_size 16: the cache gives way to crop-and-recompute
    outs = [model.generate(prompt, 20, temperature=0.8, top_k=top_k,
                           generator=minifm.Generator().manual_seed(7), use_cache=use_cache)
            for use_cache in (True, False)]
    assert outs[0].shape == (2, 23)
    np.testing.assert_array_equal(to_numpy(outs[0]), to_numpy(outs[1]))
    np.testing.assert_array_equal(to_numpy(outs[0][:, :3]), to_numpy(prompt))


def test_greedy_generation_matches_nanogpt():
    model, torch_model = gpt_pair()
    model.eval()
    torch_model.eval()
    prompt = token_batch(65, (2, 4), seed=5)
    out = model.generate(minifm.tensor(prompt), 18, top_k=1)  # top_k=1 is argmax
    expected = torch_model.generate(torch.from_numpy(prompt), 18, top_k=1)
    np.testing.assert_array_equal(to_numpy(out), expected.numpy())


def test_crop_block_size():
    model, torch_model = gpt_pair()
    model.crop_block_size(8)
    assert model.config.block_size == 8 and model.transformer.wpe.weight.shape == (8, 32)
    assert_close(model.transformer.wpe.weight.detach(), torch_model.transformer.wpe.weight[:8])
    idx = minifm.zeros(1, 8, dtype=minifm.int64)
    logits, _ = model(idx, idx)
    assert logits.shape == (1, 8, 65)
    with pytest.raises(ValueError):
        model.crop_block_size(9)


def test_configure_optimizers_decays_2d_params_only():
    model, _ = gpt_pair()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))
    decay, nodecay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and nodecay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in nodecay["params"])
    # wte (tied to lm_head), wpe and four matrices per layer; the tied weight counted once
    assert len(decay["params"]) == 2 + 4 * 2
    assert len(decay["params"]) + len(nodecay["params"]) == len(list(model.parameters()))


def hf_state_dict(torch_model, prefix="transformer."):
    """What Hugging Face's GPT-2 state dict looks like for the same weights: Conv1D weights
    stored transposed, plus the causal-mask buffers."""
    sd = {}
    T = torch_model.config.block_size
    for key, value in torch_model.state_dict().items():
        if key.endswith(("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                         "mlp.c_proj.weight")):
            value = value.t().contiguous()
        sd[key.replace("transformer.", prefix, 1)] = value.clone()
        if key.endswith("attn.c_proj.bias"):
            layer = key[:-len("c_proj.bias")].replace("transformer.", prefix, 1)
            sd[layer + "bias"] = torch.tril(torch.ones(1, 1, T, T))
            sd[layer + "masked_bias"] = torch.tensor(-1e4)
    if not prefix:
        del sd["lm_head.weight"]  # GPT2Model has no LM head
    return sd


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_hf_gpt2_state_dict_conversion(prefix):
    torch.manual_seed(1)
    config = dict(SMALL_GPT, n_embd=48, n_head=3)
    torch_model = tm.GPT(tm.GPTConfig(**config))
    sd = hf_state_dict(torch_model, prefix)
    converted = convert_hf_gpt2_state_dict(sd)
    assert set(converted) == set(torch_model.state_dict())
    model = GPT.from_hf_gpt2_state_dict(sd, GPTConfig(**config))
    assert model.lm_head.weight is model.transformer.wte.weight
    idx = token_batch(65, (2, 16), seed=6)
    logits, loss = model(minifm.tensor(idx), minifm.tensor(idx))
    t_logits, t_loss = torch_model(torch.from_numpy(idx), torch.from_numpy(idx))
    assert_close(logits.detach(), t_logits, atol=1e-5, rtol=1e-4)
    assert_close(loss.detach(), t_loss, atol=1e-6, rtol=1e-5)


# ============================================================================ BERT
def bert_inputs(seed=0, B=3, T=10):
    ids = token_batch(30, (B, T), seed) % 26 + 4   # ids 0..3 are special (0 = [PAD])
    ids[:, 0] = 2                                   # [CLS]
    ids[1, 7:] = 0                                  # padding
    ids[2, 4:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    return ids, types


def test_bert_shapes():
    minifm.manual_seed(0)
    config = BertConfig(**SMALL_BERT)
    ids, types = (minifm.tensor(a) for a in bert_inputs())
    assert BertModel(config)(ids, types).shape == (3, 10, 32)
    logits, loss = BertForMaskedLM(config)(ids, types)
    assert logits.shape == (3, 10, 30) and loss is None
    logits, loss = BertForSequenceClassification(config, num_labels=3)(
        ids, labels=minifm.tensor([0, 2, 1]))
    assert logits.shape == (3, 3) and loss.shape == ()


@pytest.mark.parametrize("kind", ["mlm", "cls"])
def test_bert_forward_backward_matches_torch(kind):
    torch.manual_seed(0)
    config = dict(SMALL_BERT)
    if kind == "mlm":
        torch_model = tm.BertForMaskedLM(tm.BertConfig(**config))
        model = BertForMaskedLM(BertConfig(**config))
    else:
        torch_model = tm.BertForSequenceClassification(tm.BertConfig(**config), num_labels=3)
        model = BertForSequenceClassification(BertConfig(**config), num_labels=3)
    load_from_torch(model, torch_model)
    ids, types = bert_inputs()
    if kind == "mlm":
        inputs, labels = mask_tokens(minifm.tensor(ids), 3, 30, special_ids=(0, 2),
                                     generator=minifm.Generator().manual_seed(0),
                                     mlm_probability=0.5)
        inputs, labels = to_numpy(inputs), to_numpy(labels)
    else:
        inputs, labels = ids, np.array([0, 2, 1])
    logits, loss = model(minifm.tensor(inputs), minifm.tensor(types), labels=minifm.tensor(labels))
    t_logits, t_loss = torch_model(torch.from_numpy(inputs), torch.from_numpy(types),
                                   labels=torch.from_numpy(labels))
    assert_close(logits, t_logits, atol=1e-5, rtol=1e-4)
    assert_close(loss, t_loss, atol=1e-6, rtol=1e-5)
    loss.backward()
    t_loss.backward()
    assert_grads_close(model, torch_model, atol=1e-6, rtol=1e-4)
    if kind == "mlm":
        assert model.lm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_bert_padding_does_not_change_real_tokens():
    minifm.manual_seed(0)
    model = BertModel(BertConfig(**dict(SMALL_BERT, dropout=0.1)))
    model.eval()
    ids = bert_inputs()[0][:1, :6]
    padded = np.concatenate([ids, np.zeros((1, 4), dtype=ids.dtype)], axis=1)
    garbage = np.concatenate([ids, np.array([[9, 17, 5, 21]])], axis=1)
    with minifm.no_grad():
        alone = to_numpy(model(minifm.tensor(ids)))
        with_pad = to_numpy(model(minifm.tensor(padded)))
        # explicit mask: whatever sits in the masked positions does not matter
        mask = minifm.tensor(padded != 0)
        with_garbage = to_numpy(model(minifm.tensor(garbage), attention_mask=mask))
    np.testing.assert_allclose(with_pad[:, :6], alone, atol=1e-5)
    np.testing.assert_allclose(with_garbage[:, :6], alone, atol=1e-5)
    # and unmasked, the extra tokens do change them
    unmasked = to_numpy(model(minifm.tensor(garbage), attention_mask=minifm.ones(1, 10)))
    assert np.abs(unmasked[:, :6] - alone).max() > 1e-3


def test_mask_tokens_statistics():
    vocab, mask_id, special = 100, 3, (0, 1, 2)
    ids = token_batch(vocab, (400, 128), seed=123)  # not the masking seed: same stream
    ids[:, 0] = 1
    ids[:, -8:] = 0
    ids = minifm.tensor(ids)
    inputs, labels = mask_tokens(ids, mask_id, vocab, special, minifm.Generator().manual_seed(0))
    ids, inputs, labels = to_numpy(ids), to_numpy(inputs), to_numpy(labels)
    is_special = np.isin(ids, special)
    chosen = labels != -100
    assert not (chosen & is_special).any()
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])  # untouched elsewhere
    n = chosen.sum()
    assert abs(n / (~is_special).sum() - 0.15) < 0.005
    masked = (inputs == mask_id) & chosen
    kept = (inputs == ids) & chosen
    randomized = chosen & ~masked & ~kept
    assert abs(masked.sum() / n - 0.8) < 0.015
    assert abs(kept.sum() / n - 0.1 - 0.1 / vocab) < 0.012   # a random token can be the same
    assert abs(randomized.sum() / n - 0.1 + 0.1 / vocab) < 0.012
    assert inputs.min() >= 0 and inputs.max() < vocab
    # the generator makes it reproducible
    again, _ = mask_tokens(minifm.tensor(ids), mask_id, vocab, special,
                           minifm.Generator().manual_seed(0))
    np.testing.assert_array_equal(to_numpy(again), inputs)


# ============================================================================ DCGAN
@pytest.mark.parametrize("image_size", [16, 32])
def test_dcgan_shapes(image_size):
    minifm.manual_seed(0)
    G = Generator(nz=8, ngf=4, nc=1, image_size=image_size)
    D = Discriminator(nc=1, ndf=4, image_size=image_size)
    fake = G(minifm.randn(5, 8, 1, 1))
    assert fake.shape == (5, 1, image_size, image_size)
    assert np.abs(to_numpy(fake.detach())).max() <= 1.0
    assert D(fake).shape == (5,)
    with pytest.raises(ValueError, match="power of two"):
        Generator(image_size=24)


def test_dcgan_weights_init():
    minifm.manual_seed(0)
    G = Generator(nz=32, ngf=32, nc=3, image_size=32)
    conv = to_numpy(G.main[0].weight.detach())
    bn_weight = np.concatenate([to_numpy(m.weight.detach()) for m in G.modules()
                                if isinstance(m, nn.BatchNorm2d)])
    assert abs(conv.std() - 0.02) < 0.001 and abs(conv.mean()) < 0.001
    assert abs(bn_weight.mean() - 1.0) < 0.01 and 0.01 < bn_weight.std() < 0.03
    assert all(not to_numpy(m.bias.detach()).any() for m in G.modules()
               if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("image_size", [16, 32])
def test_dcgan_forward_backward_matches_torch(image_size):
    torch.manual_seed(0)
    tG = tm.Generator(nz=8, ngf=4, nc=1, image_size=image_size)
    tD = tm.Discriminator(nc=1, ndf=4, image_size=image_size)
    G = load_from_torch(Generator(nz=8, ngf=4, nc=1, image_size=image_size), tG)
    D = load_from_torch(Discriminator(nc=1, ndf=4, image_size=image_size), tD)
    z = np.random.default_rng(0).standard_normal((4, 8, 1, 1)).astype(np.float32)

    fake, t_fake = G(minifm.tensor(z)), tG(torch.from_numpy(z))       # train mode
    assert_close(fake, t_fake, atol=1e-5, rtol=1e-4)
    logits, t_logits = D(fake), tD(t_fake)
    assert_close(logits, t_logits, atol=1e-5, rtol=1e-4)
    (logits.sum()).backward()
    t_logits.sum().backward()
    assert_grads_close(G, tG, atol=1e-5, rtol=1e-3)
    assert_grads_close(D, tD, atol=1e-5, rtol=1e-3)
    # the batch statistics were folded into the running ones the same way
    t_state = tG.state_dict()
    for key, value in G.state_dict().items():
        if "running" in key:
            assert_close(value, t_state[key], atol=1e-6, rtol=1e-5, msg=key)
