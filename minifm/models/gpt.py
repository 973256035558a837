"""GPT: nanoGPT's decoder-only transformer, module for module, on minifm.nn.

The module tree, the parameter names (`transformer.h.0.attn.c_attn.weight`, ...), the
GPT-2 initialization and `forward(idx, targets) -> (logits, loss)` are those of Karpathy's
nanoGPT `model.py`, so a nanoGPT state dict loads as is. Two additions:

- `generate` keeps a KV cache: the prompt runs once (prefill), then each new token attends
  to the keys and values cached for the tokens before it, instead of re-running the whole
  sequence. Once the sequence outgrows `block_size`, the context is cropped to its last
  `block_size` tokens; every position shifts then, so the cache is stale and generation
  falls back to nanoGPT's crop-and-recompute.
- `convert_hf_gpt2_state_dict` reads Hugging Face GPT-2 checkpoints. GPT-2 itself used
  the tanh approximation of GELU; nanoGPT, and this model, use the exact one (as nanoGPT's
  `from_pretrained` does), which moves the logits of the real weights very slightly.

And two of Hugging Face's forward arguments, to look inside the model (minifm.explain):
`output_attentions=True` also returns every layer's attention probabilities, and
`inputs_embeds` takes the token embeddings in place of the token ids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import minifm
import minifm.nn as nn
import minifm.nn.functional as F
from minifm.nn.attention import attention_weights


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers, as in GPT-2


class KVCache:
    """The keys and values one attention layer has seen, in buffers preallocated for
    `capacity` positions: (batch, n_head, capacity, head_size)."""

    def __init__(self, batch_size, n_head, head_size, capacity, dtype, device):
        shape = (batch_size, n_head, capacity, head_size)
        self.keys = minifm.zeros(shape, dtype=dtype, device=device)
        self.values = minifm.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    def update(self, k, v):
        """Append k, v of shape (B, nh, T, hs); return all keys and values so far."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.keys.shape[2]:
            raise RuntimeError(f"KVCache: {end} positions exceed the capacity "
                               f"{self.keys.shape[2]}")
        self.keys[:, :, start:end] = k
        self.values[:, :, start:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"GPT: n_embd ({config.n_embd}) must be divisible by n_head "
                             f"({config.n_head})")
        # key, query and value projections for all heads, in one matrix
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x, kv_cache=None, output_attentions=False):
        """(B, T, C) -> (B, T, C); with output_attentions, (that, the attention probabilities
        (B, nh, T, past + T)), computed explicitly rather than by the fused kernel."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, nh, T, hs): the heads become a batch dimension
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.update(k, v)
        mask = None
        if past:  # T new queries after `past` cached positions: query i sees keys 0..past+i
            mask = minifm.ones(T, past + T, dtype=minifm.bool, device=x.device).tril(past)
        if output_attentions:
            att = attention_weights(q, k, attn_mask=mask, is_causal=not past)
            y = self.attn_dropout(att) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=not past,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        y = self.resid_dropout(self.c_proj(y))
        return (y, att) if output_attentions else y


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, kv_cache=None, output_attentions=False):
        """x -> x; with output_attentions, (x, the attention probabilities)."""
        out = self.attn(self.ln_1(x), kv_cache, output_attentions)
        y, att = out if output_attentions else (out, None)
        x = x + y
        x = x + self.mlp(self.ln_2(x))
        return (x, att) if output_attentions else x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.vocab_size is None or config.block_size is None:
            raise ValueError("GPT: config needs a vocab_size and a block_size")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf, 2017): the output projection is the token embedding.
        self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        # GPT-2 scales the init of the projections into the residual stream by
        # 1/sqrt(number of residual additions), so the stream's variance does not grow.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding=True):
        """The number of parameters. The position embeddings are left out by default; the
        token embeddings stay in, since they are also the weights of the final layer."""
        n_params = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n_params -= self.transformer.wpe.weight.numel()
        return n_params

    def forward(self, idx=None, targets=None, kv_caches=None, output_attentions=False,
                inputs_embeds=None):
        """idx (B, T) of token ids -> (logits, loss). With targets, logits (B, T, vocab)
        and the mean cross-entropy (targets of -1 are ignored); without, the logits of the
        last position only, (B, 1, vocab), and loss None. `kv_caches` (one KVCache per
        layer) makes idx the continuation of the tokens already cached.

        output_attentions=True returns (logits, loss, attentions): a tuple of each layer's
        attention probabilities (B, n_head, T, past + T), from the reference path.
        inputs_embeds (B, T, n_embd) stands in for idx: the token embeddings themselves
        (the position embeddings are still added), to take gradients with respect to."""
        if (idx is None) == (inputs_embeds is None):
            raise ValueError("GPT: give either idx or inputs_embeds")
        tok_emb = self.transformer.wte(idx) if inputs_embeds is None else inputs_embeds
        t = tok_emb.size(1)
        past = 0 if kv_caches is None else kv_caches[0].length
        if past + t > self.config.block_size:
            raise ValueError(f"GPT: cannot forward a sequence of length {past + t}, the block "
                             f"size is only {self.config.block_size}")
        pos = minifm.arange(past, past + t, dtype=minifm.int64, device=tok_emb.device)
        pos_emb = self.transformer.wpe(pos)  # (t, n_embd)
        x = self.transformer.drop(tok_emb + pos_emb)
        attentions = []
        for i, block in enumerate(self.transformer.h):
            out = block(x, None if kv_caches is None else kv_caches[i], output_attentions)
            x, att = out if output_attentions else (out, None)
            attentions.append(att)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        else:
            # inference: only the last position's logits are needed
            logits = self.lm_head(x[:, [-1], :])
            loss = None
        return (logits, loss, tuple(attentions)) if output_attentions else (logits, loss)

    def crop_block_size(self, block_size):
        """Shrink the context length (e.g. to fine-tune a pretrained model on shorter text)."""
        if block_size > self.config.block_size:
            raise ValueError(f"crop_block_size: {block_size} is larger than the current block "
                             f"size {self.config.block_size}")
        self.config.block_size = block_size
        self.transformer.wpe.weight = nn.Parameter(
            self.transformer.wpe.weight.detach()[:block_size].clone())

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        """AdamW with weight decay on the 2-D parameters only (the matmul weights and the
        embeddings); biases and LayerNorm gains are not decayed."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay_params = [p for p in params if p.dim() >= 2]
        nodecay_params = [p for p in params if p.dim() < 2]
        optim_groups = [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": nodecay_params, "weight_decay": 0.0},
        ]
        return minifm.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)

    def new_kv_caches(self, batch_size, capacity):
        """Empty KV caches, one per layer, for `capacity` positions (at most block_size):
        pass them as `kv_caches` to forward, the prompt first, then new tokens."""
        head_size = self.config.n_embd // self.config.n_head
        w = self.transformer.wte.weight  # a float table even when lm_head is quantized
        return [KVCache(batch_size, self.config.n_head, head_size, capacity, w.dtype, w.device)
                for _ in range(self.config.n_layer)]

    @minifm.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None,
                 use_cache=True):
        """Extend idx (B, T) by max_new_tokens sampled tokens, feeding each back in.
        Call model.eval() first. use_cache=False recomputes the whole context every step
        (nanoGPT's way); both give the same tokens for the same generator."""
        block_size = self.config.block_size
        caches = None
        for _ in range(max_new_tokens):
            if caches is not None and idx.size(1) <= block_size:
                logits, _ = self(idx[:, -1:], kv_caches=caches)
            else:
                # (re)compute the context; a cache pays off only if there is room to grow
                caches = None
                if use_cache and idx.size(1) < block_size:
                    capacity = min(block_size, idx.size(1) + max_new_tokens)
                    caches = self.new_kv_caches(idx.size(0), capacity)
                logits, _ = self(idx[:, -block_size:], kv_caches=caches)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = minifm.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = minifm.multinomial(probs, num_samples=1, generator=generator)
            idx = minifm.cat((idx, idx_next), dim=1)
        return idx

    @classmethod
    def from_hf_gpt2_state_dict(cls, state_dict, config):
        """A GPT holding the weights of a Hugging Face GPT-2 state dict (see
        `convert_hf_gpt2_state_dict`); config must match its shapes."""
        model = cls(config)
        model.load_state_dict(convert_hf_gpt2_state_dict(state_dict))
        return model


# Hugging Face's GPT-2 implements these layers as Conv1D, which stores the weight as
# (in_features, out_features): the transpose of nn.Linear's.
_CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                   "mlp.c_proj.weight")
# causal-mask buffers, not parameters
_HF_BUFFERS = (".attn.bias", ".attn.masked_bias")


def convert_hf_gpt2_state_dict(state_dict):
    """A nanoGPT-named state dict of minifm Tensors from a Hugging Face GPT-2 one
    (GPT2LMHeadModel, or GPT2Model whose keys lack the 'transformer.' prefix). Values may
    be torch tensors, NumPy arrays or minifm Tensors."""
    out = {}
    for key, value in state_dict.items():
        if key.endswith(_HF_BUFFERS):
            continue
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if key.endswith(_CONV1D_WEIGHTS):
            array = array.T
        if key != "lm_head.weight" and not key.startswith("transformer."):
            key = "transformer." + key
        out[key] = minifm.tensor(np.ascontiguousarray(array))
    if "lm_head.weight" not in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out
