"""Character-level tokenizer: one token per distinct character of a text.

The vocabulary is the sorted set of characters seen when the tokenizer was built, so
the same text always gives the same ids (as in nanoGPT's shakespeare_char). It is the
simplest tokenizer there is and the right one for small corpora: no merges to learn,
and every id is a character a reader can see.
"""

import json


class CharTokenizer:
    """Maps each character of a fixed vocabulary to its index in that vocabulary.

    Build one from text with ``CharTokenizer.from_text(text)`` or from an explicit
    vocabulary with ``CharTokenizer(chars)``.
    """

    def __init__(self, chars):
        chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer: the vocabulary must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: the vocabulary has repeated characters")
        self.chars = chars
        self._id_of = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text):
        """The tokenizer whose vocabulary is the sorted unique characters of ``text``."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        """The list of ids of the characters of ``text``."""
        try:
            return [self._id_of[c] for c in text]
        except KeyError as err:
            c = err.args[0]
            raise ValueError(
                f"CharTokenizer.encode: character {c!r} (U+{ord(c):04X}) at position "
                f"{text.index(c)} is not in the vocabulary of {self.vocab_size} characters"
            ) from None

    def decode(self, ids):
        """The text spelled by ``ids`` (a list, NumPy array or Tensor of ints)."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        for i in ids:
            if not (isinstance(i, int) and 0 <= i < self.vocab_size):
                raise ValueError(
                    f"CharTokenizer.decode: id {i!r} is not in [0, {self.vocab_size})"
                )
        return "".join(self.chars[i] for i in ids)

    def to_dict(self):
        """The tokenizer as a JSON-able dict: its vocabulary."""
        return {"type": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, state):
        """The tokenizer described by ``to_dict()``'s dict."""
        if state.get("type") != "char":
            raise ValueError(f"CharTokenizer: the state holds a {state.get('type')!r} tokenizer")
        return cls(state["chars"])

    def save(self, path):
        """Write ``to_dict()`` to ``path`` as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path):
        """Read a tokenizer written by ``save``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
