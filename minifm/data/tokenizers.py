"""Load a tokenizer saved by either of minifm's tokenizer classes.

Each tokenizer's JSON file records its kind in a "type" field, so a checkpoint needs to
keep only the file's path to rebuild its tokenizer.
"""

import json

from .bpe import ByteLevelBPETokenizer
from .char_tokenizer import CharTokenizer

_TOKENIZERS = {"char": CharTokenizer, "byte_level_bpe": ByteLevelBPETokenizer}


def load_tokenizer(path):
    """The CharTokenizer or ByteLevelBPETokenizer saved at ``path``."""
    with open(path, encoding="utf-8") as f:
        kind = json.load(f).get("type")
    if kind not in _TOKENIZERS:
        raise ValueError(
            f"load_tokenizer: {path} holds an unknown tokenizer type {kind!r}; "
            f"expected one of {sorted(_TOKENIZERS)}"
        )
    return _TOKENIZERS[kind].load(path)
