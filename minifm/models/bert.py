"""BERT (Devlin et al., 2018): a bidirectional transformer encoder, pretrained by masked
language modeling, fine-tuned by putting a classifier on its [CLS] output.

Unlike GPT, every token attends to every other (no causal mask), only padding is masked
out, and the LayerNorm comes after each residual addition (post-LN, as in the original
Transformer). The module names are minifm's own (short, flat), not Hugging Face's; two
forward arguments are Hugging Face's, to look inside the model (minifm.explain):
`output_attentions=True` also returns every layer's attention probabilities, and
`inputs_embeds` takes the token embeddings in place of the token ids.
"""
from __future__ import annotations

from dataclasses import dataclass

import minifm
import minifm.nn as nn
import minifm.nn.functional as F
from minifm.nn.attention import attention_weights


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 128
    type_vocab_size: int = 2  # segments A and B of a sentence pair
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0


class BertEmbeddings(nn.Module):
    """token + position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, token_type_ids, inputs_embeds=None):
        """inputs_embeds, if given, replaces word_embeddings(input_ids)."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        pos = minifm.arange(inputs_embeds.size(1), dtype=minifm.int64,
                            device=inputs_embeds.device)
        x = (inputs_embeds + self.position_embeddings(pos)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.layer_norm(x))


class BertSelfAttention(nn.Module):
    """Multi-head attention over the whole sequence; attn_mask hides the padding keys."""

    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_heads:
            raise ValueError(f"BERT: hidden_size ({config.hidden_size}) must be divisible by "
                             f"num_heads ({config.num_heads})")
        h = config.hidden_size
        self.num_heads = config.num_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dense = nn.Linear(h, h)
        self.dropout_p = config.dropout
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, attn_mask, output_attentions=False):
        """(B, T, C) -> (B, T, C); with output_attentions, (that, the attention
        probabilities (B, num_heads, T, T)), computed explicitly rather than fused."""
        B, T, C = x.shape
        q, k, v = (proj(x).view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))
        dropout_p = self.dropout_p if self.training else 0.0
        if output_attentions:
            att = attention_weights(q, k, attn_mask=attn_mask)
            y = F.dropout(att, dropout_p) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        y = self.dropout(self.dense(y.transpose(1, 2).contiguous().view(B, T, C)))
        return (y, att) if output_attentions else y


class BertLayer(nn.Module):
    """A post-LN encoder layer: x = norm(x + attn(x)), then x = norm(x + ffn(x))."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertSelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.gelu = nn.GELU()
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, attn_mask, output_attentions=False):
        """x -> x; with output_attentions, (x, the attention probabilities)."""
        out = self.attention(x, attn_mask, output_attentions)
        y, att = out if output_attentions else (out, None)
        x = self.attention_norm(x + y)
        x = self.output_norm(x + self.dropout(self.output(self.gelu(self.intermediate(x)))))
        return (x, att) if output_attentions else x


def init_bert_weights(module):
    """BERT's init: N(0, 0.02) for Linear and Embedding weights, zero biases (LayerNorm
    keeps its ones and zeros)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class BertModel(nn.Module):
    """The encoder: (B, T) token ids -> (B, T, hidden_size) contextual vectors."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList([BertLayer(config) for _ in range(config.num_layers)])

    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None,
                output_attentions=False, inputs_embeds=None):
        """attention_mask (B, T): 1/True for real tokens, 0/False for padding; by default
        every token that is not pad_token_id (every token, given inputs_embeds (B, T,
        hidden_size) in place of input_ids). output_attentions=True returns (x, a tuple of
        each layer's attention probabilities (B, num_heads, T, T))."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("BERT: give either input_ids or inputs_embeds")
        B, T = input_ids.shape if inputs_embeds is None else inputs_embeds.shape[:2]
        device = (input_ids if inputs_embeds is None else inputs_embeds).device
        if T > self.config.max_position_embeddings:
            raise ValueError(f"BERT: sequence length {T} exceeds "
                             f"max_position_embeddings {self.config.max_position_embeddings}")
        if token_type_ids is None:
            token_type_ids = minifm.zeros(B, T, dtype=minifm.int64, device=device)
        if attention_mask is None:
            attention_mask = (minifm.ones(B, T, dtype=minifm.bool, device=device)
                              if input_ids is None else input_ids != self.config.pad_token_id)
        # (B, 1, 1, T): the same key mask for every head and every query
        attn_mask = attention_mask.bool()[:, None, None, :]
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        attentions = []
        for layer in self.layers:
            out = layer(x, attn_mask, output_attentions)
            x, att = out if output_attentions else (out, None)
            attentions.append(att)
        return (x, tuple(attentions)) if output_attentions else x


class BertLMHead(nn.Module):
    """dense + GELU + LayerNorm, then a decoder to the vocabulary that shares its weight
    with the token embeddings, plus a bias of its own."""

    def __init__(self, config, word_embeddings):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.gelu = nn.GELU()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight
        self.bias = nn.Parameter(minifm.zeros(config.vocab_size))

    def forward(self, x):
        return self.decoder(self.layer_norm(self.gelu(self.dense(x)))) + self.bias


class BertForMaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.bert = BertModel(config)
        self.lm_head = BertLMHead(config, self.bert.embeddings.word_embeddings)
        self.apply(init_bert_weights)

    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None,
                output_attentions=False, inputs_embeds=None):
        """-> (logits (B, T, vocab), loss): loss is the cross-entropy over the positions
        whose label is not -100 (see `mask_tokens`), None without labels. With
        output_attentions, (logits, loss, attentions), as BertModel."""
        out = self.bert(input_ids, token_type_ids, attention_mask, output_attentions,
                        inputs_embeds)
        hidden, attentions = out if output_attentions else (out, None)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1),
                                   ignore_index=-100)
        return (logits, loss, attentions) if output_attentions else (logits, loss)


class BertForSequenceClassification(nn.Module):
    """BERT + a pooler (Linear + tanh on the [CLS] vector, the first position) + a
    classifier."""

    def __init__(self, config, num_labels=2):
        super().__init__()
        self.bert = BertModel(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.apply(init_bert_weights)

    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None,
                output_attentions=False, inputs_embeds=None):
        """-> (logits (B, num_labels), loss); with output_attentions, (logits, loss,
        attentions), as BertModel."""
        out = self.bert(input_ids, token_type_ids, attention_mask, output_attentions,
                        inputs_embeds)
        hidden, attentions = out if output_attentions else (out, None)
        pooled = minifm.tanh(self.pooler(hidden[:, 0]))
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return (logits, loss, attentions) if output_attentions else (logits, loss)


def mask_tokens(input_ids, mask_token_id, vocab_size, special_ids=(), generator=None,
                mlm_probability=0.15):
    """BERT's masking for masked language modeling -> (inputs, labels).

    Each token that is not special is chosen with probability mlm_probability. Of the
    chosen, 80% become mask_token_id, 10% a random token, 10% stay as they are (so the
    model cannot learn that only [MASK] positions matter). labels hold the original id at
    the chosen positions and -100 (ignored by the loss) elsewhere.
    """
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mask_tokens: mlm_probability must be in [0, 1], got {mlm_probability}")
    shape, device = tuple(input_ids.shape), input_ids.device
    special = minifm.zeros(shape, dtype=minifm.bool, device=device)
    for sid in special_ids:
        special = special | (input_ids == sid)
    chosen = (minifm.rand(shape, generator=generator, device=device) < mlm_probability) & ~special
    labels = minifm.where(chosen, input_ids, -100)

    masked = chosen & (minifm.rand(shape, generator=generator, device=device) < 0.8)
    # half of the remaining 20%: a random token
    randomized = chosen & ~masked & (minifm.rand(shape, generator=generator, device=device) < 0.5)
    random_ids = minifm.randint(vocab_size, size=shape, generator=generator, device=device)
    inputs = minifm.where(masked, mask_token_id, input_ids)
    inputs = minifm.where(randomized, random_ids, inputs)
    return inputs, labels
