"""Load a tokenizer saved by either of minifm's tokenizer classes.

Each tokenizer's dict (``to_dict()``, what ``save`` writes as JSON) records its kind in a
"type" field, so a file or a checkpoint's copy of it is enough to rebuild the tokenizer.
"""

import json

from .bpe import ByteLevelBPETokenizer
from .char_tokenizer import CharTokenizer

_TOKENIZERS = {"char": CharTokenizer, "byte_level_bpe": ByteLevelBPETokenizer}


def tokenizer_from_dict(state):
    """The CharTokenizer or ByteLevelBPETokenizer whose ``to_dict()`` gave ``state``."""
    kind = state.get("type")
    if kind not in _TOKENIZERS:
        raise ValueError(
            f"unknown tokenizer type {kind!r}; expected one of {sorted(_TOKENIZERS)}"
        )
    return _TOKENIZERS[kind].from_dict(state)


def load_tokenizer(path):
    """The CharTokenizer or ByteLevelBPETokenizer saved at ``path``."""
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    try:
        return tokenizer_from_dict(state)
    except ValueError as err:
        raise ValueError(f"load_tokenizer: {path}: {err}") from None
