"""The text and tokenizer shared by the language tasks (gpt, bert): a corpus from --data
or the embedded default, and a tokenizer made from it or rebuilt from a checkpoint."""
from __future__ import annotations

import json
import os

from ...data import ByteLevelBPETokenizer, CharTokenizer, default_corpus, load_text


def tokenizer_from_state(state):
    """Rebuild a tokenizer from the JSON state its save() writes."""
    if state["type"] == "char":
        return CharTokenizer(state["chars"])
    return ByteLevelBPETokenizer(state["merges"], state["special_tokens"])


def tokenizer_state(tokenizer, scratch_dir):
    """The tokenizer's JSON state (what its save() writes), kept in the checkpoint."""
    path = os.path.join(scratch_dir, "tokenizer.json")
    tokenizer.save(path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def corpus_and_tokenizer(task, cfg, state, load_data):
    """(text, tokenizer). The text is None when only the model is needed (sampling from a
    checkpoint); the tokenizer comes from the checkpoint's state when there is one, else
    from the text: its characters (cfg.tokenizer == "char") or a byte-level BPE trained to
    cfg.bpe_vocab_size tokens ("bpe")."""
    text = None
    if load_data or state is None:
        text = load_text(cfg.data) if cfg.data else default_corpus(cfg.corpus_bytes)
    if state is not None:
        return text, tokenizer_from_state(state["tokenizer"])
    if cfg.tokenizer == "char":
        return text, CharTokenizer.from_text(text)
    if cfg.tokenizer == "bpe":
        tokenizer = ByteLevelBPETokenizer()
        tokenizer.train(text, cfg.bpe_vocab_size)
        return text, tokenizer
    raise ValueError(f"{task} task: tokenizer must be 'char' or 'bpe', got {cfg.tokenizer!r}")
