"""What the language tasks (gpt, bert) share: their text settings, the corpus (from
--data or the embedded default), its tokenizer (made from the text or rebuilt from a
checkpoint) and the split of its tokens into train, val and test."""
from __future__ import annotations

import codecs
from dataclasses import dataclass

import numpy as np

from ...data import (
    ByteLevelBPETokenizer, CharTokenizer, default_corpus, load_text, min_corpus_tokens,
    tokenizer_from_dict, train_val_test_split,
)
from ..settings import (
    ConfigError, require_at_least, require_choices, require_finite, require_fraction, setting,
)

TOKENIZERS = ("char", "bpe")


@dataclass
class TextDataConfig:
    """The text settings of a language task; its config dataclass adds the model's."""

    data: str | None = setting(None, "a text file to train on (default: Python's standard "
                               "library sources, no download)")
    encoding: str = setting("utf-8", "the text encoding of --data")
    corpus_bytes: int = setting(1_000_000, "size of the default corpus in bytes")
    tokenizer: str = setting("char", "one token per character, or a byte-level BPE "
                             "trained on the text", choices=TOKENIZERS)
    bpe_vocab_size: int = setting(512, "vocabulary size of the BPE tokenizer (>= 256)")
    val_frac: float = setting(0.1, "fraction of the text held out for validation")
    test_frac: float = setting(0.05, "fraction of the text held out for the final test")

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        require_at_least(self, 1, "corpus_bytes")
        require_at_least(self, 256, "bpe_vocab_size")
        require_fraction(self, "val_frac", "test_frac")
        if self.val_frac + self.test_frac >= 1:
            raise ConfigError(type(self).__name__, f"val_frac + test_frac = "
                              f"{self.val_frac + self.test_frac:g} leaves no training text; "
                              "it must be < 1", "val_frac", "test_frac")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(type(self).__name__, f"encoding={self.encoding!r} is not a "
                              "known text encoding (utf-8, latin-1, cp1252, ...)",
                              "encoding") from None


def corpus_and_tokenizer(cfg, state, load_data):
    """(text, tokenizer). The text is None when only the model is needed (sampling from a
    checkpoint); the tokenizer comes from the checkpoint's state when there is one, else
    from the text: its characters (cfg.tokenizer == "char") or a byte-level BPE trained to
    cfg.bpe_vocab_size tokens ("bpe")."""
    text = None
    if load_data or state is None:
        text = load_text(cfg.data, cfg.encoding) if cfg.data else default_corpus(cfg.corpus_bytes)
    if state is not None:
        return text, tokenizer_from_dict(state["tokenizer"])
    if cfg.tokenizer == "char":
        return text, CharTokenizer.from_text(text)
    return text, ByteLevelBPETokenizer().train(text, cfg.bpe_vocab_size)


def split_tokens(task, cfg, tokens, min_tokens, setting_name):
    """{"train", "val", "test"} slices of the token list, contiguous as in nanoGPT. A
    corpus too short for a window of `min_tokens` in each split used is refused here,
    before anything is trained or written; the message says how long it must be and
    names the setting (`setting_name`) that sets the window."""
    tokens = np.asarray(tokens, dtype=np.int64)
    needed = min_corpus_tokens(min_tokens, cfg.val_frac, cfg.test_frac)
    if len(tokens) < needed:
        source = repr(cfg.data) if cfg.data else "the default corpus"
        raise ValueError(
            f"{task} task: {source} gives {len(tokens)} tokens, too few for a window of "
            f"{min_tokens} tokens in each of the train, val and test splits (val_frac="
            f"{cfg.val_frac}, test_frac={cfg.test_frac}); it needs at least {needed} tokens "
            f"(characters with the char tokenizer): use more text or a smaller {setting_name}")
    return dict(zip(("train", "val", "test"),
                    train_val_test_split(tokens, cfg.val_frac, cfg.test_frac)))


def encode_prompt(tokenizer, prompt):
    """The ids of a sampling prompt; one the tokenizer cannot encode (a character the
    training text never had) is refused with the character and how to avoid it."""
    try:
        return tokenizer.encode(prompt)
    except ValueError as err:
        raise ValueError(f"the prompt cannot be encoded: {err}; use characters of the "
                         "training text (a bpe tokenizer encodes any text)") from None
