"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2, trained from scratch.

Encoding takes three steps:

1. a regular expression splits the text into pre-tokens ("words"): runs of letters,
   runs of digits, runs of punctuation, each with at most one leading space, and runs
   of whitespace;
2. each word becomes its UTF-8 bytes, so ids 0..255 are the 256 byte values and any
   string at all can be encoded (no unknown token);
3. learned merges, applied in the order they were learned, fuse adjacent pairs of ids
   into new ids 256, 257, ... Merges never cross word boundaries.

Training learns the merges: count every adjacent pair of ids over all words, fuse the
most frequent pair into a new id, repeat until the vocabulary is full. Counting over
unique words weighted by their frequency, and updating the counts of only the words a
merge touched, makes this fast enough to train on a megabyte of text in seconds.

Unlike GPT-2's files, which store tokens as printable strings through a byte-to-unicode
table, minifm stores the merges as pairs of ids in JSON: nothing to escape.
"""

import heapq
import json
import re
from collections import Counter, defaultdict

# GPT-2's pattern (for the third-party `regex` module) is
#     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Python's `re` has no \p{...} classes, so here letters are [^\W\d_] (word characters that
# are not decimal digits or "_") and numbers are \d (decimal digits). The differences:
# numeric characters that are not decimal digits (such as "²", "½", "Ⅻ") group with
# letters here and with digits in GPT-2, and \s means str.isspace(), which also counts
# the separators U+001C..U+001F that Unicode's White_Space property leaves out.
# Every character is a letter, a digit, whitespace or "other", so the pattern covers
# all of any text: joining the pre-tokens gives the text back.
PRETOKENIZE_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)
_PRETOKENIZE = re.compile(PRETOKENIZE_PATTERN)


def pretokenize(text):
    """Split ``text`` into the words BPE merges within (GPT-2's pre-tokenizer)."""
    return _PRETOKENIZE.findall(text)


def _merge(ids, pair, new_id):
    """``ids`` with every non-overlapping occurrence of ``pair``, left to right, fused."""
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _checked_special_tokens(tokens):
    tokens = list(tokens)
    if any(not isinstance(s, str) or not s for s in tokens):
        raise ValueError("ByteLevelBPETokenizer: special tokens must be non-empty strings")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"ByteLevelBPETokenizer: special tokens {tokens} repeat")
    return tokens


class ByteLevelBPETokenizer:
    """GPT-2-style byte-level BPE with optional special tokens.

    Ids 0..255 are bytes, ids 256.. are merges in the order learned, and the special
    tokens (strings such as ``"<|endoftext|>"`` that are never split) come last. Train
    one with ``ByteLevelBPETokenizer().train(text, vocab_size)``.
    """

    def __init__(self, merges=(), special_tokens=()):
        self.merges = [tuple(pair) for pair in merges]
        self.special_tokens = _checked_special_tokens(special_tokens)
        self._build()

    def _build(self):
        """Derive the lookup tables from ``merges`` and ``special_tokens``."""
        self._merge_id = {}
        self._bytes = [bytes([b]) for b in range(256)]
        for pair in self.merges:
            a, b = pair
            if not (0 <= a < len(self._bytes) and 0 <= b < len(self._bytes)):
                raise ValueError(
                    f"ByteLevelBPETokenizer: merge {pair} uses an id not defined before it"
                )
            self._merge_id[pair] = len(self._bytes)
            self._bytes.append(self._bytes[a] + self._bytes[b])
        first = len(self._bytes)
        self._special_id = {s: first + i for i, s in enumerate(self.special_tokens)}
        self._special_of_id = {i: s for s, i in self._special_id.items()}
        longest_first = sorted(self.special_tokens, key=len, reverse=True)
        self._special_split = (
            re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")
            if self.special_tokens else None
        )
        self._cache = {}

    @property
    def vocab_size(self):
        return len(self._bytes) + len(self.special_tokens)

    def train(self, text, vocab_size, special_tokens=()):
        """Learn merges from ``text`` until the vocabulary has ``vocab_size`` ids.

        ``vocab_size`` counts the 256 bytes, the merges and the special tokens. Training
        stops early, with a smaller vocabulary, when no adjacent pair is left to merge.
        Ties between equally frequent pairs go to the smaller pair of ids. Returns self.
        """
        special_tokens = _checked_special_tokens(special_tokens)
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(
                f"ByteLevelBPETokenizer.train: vocab_size={vocab_size} is smaller than the "
                f"256 byte tokens plus {len(special_tokens)} special tokens"
            )
        chunks = [text]
        if special_tokens:
            chunks = re.split("|".join(map(re.escape, special_tokens)), text)
        word_counts = Counter(w for chunk in chunks for w in pretokenize(chunk))
        words = [list(w.encode("utf-8")) for w in word_counts]
        freqs = list(word_counts.values())

        pair_counts = Counter()
        words_with = defaultdict(set)  # pair -> indices of the words that may contain it
        for i, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += freq
                words_with[pair].add(i)
        # A max-heap of (count, pair) with lazy deletion: an entry whose count no longer
        # matches pair_counts is stale and skipped when popped.
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)

        merges = []
        while len(merges) < n_merges and heap:
            neg_count, pair = heapq.heappop(heap)
            if pair_counts.get(pair) != -neg_count:
                continue
            new_id = 256 + len(merges)
            merges.append(pair)
            delta = Counter()
            for i in words_with.pop(pair):
                word = words[i]
                merged = _merge(word, pair, new_id)
                if len(merged) == len(word):
                    continue
                for p in zip(word, word[1:]):
                    delta[p] -= freqs[i]
                for p in zip(merged, merged[1:]):
                    delta[p] += freqs[i]
                    words_with[p].add(i)
                words[i] = merged
            for p, d in delta.items():
                if d == 0:
                    continue
                pair_counts[p] += d
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]

        self.merges = merges
        self.special_tokens = special_tokens
        self._build()
        return self

    def _encode_word(self, word):
        """The ids of one pre-token: its bytes with the merges applied by rank."""
        ids = self._cache.get(word)
        if ids is None:
            ids = list(word.encode("utf-8"))
            while len(ids) > 1:
                # The earliest-learned merge among the adjacent pairs goes first.
                pair = min(zip(ids, ids[1:]), key=lambda p: self._merge_id.get(p, 1 << 62))
                if pair not in self._merge_id:
                    break
                ids = _merge(ids, pair, self._merge_id[pair])
            self._cache[word] = ids
        return ids

    def encode(self, text):
        """The list of ids of ``text``; special tokens in it become their single id."""
        parts = self._special_split.split(text) if self._special_split else [text]
        ids = []
        for k, part in enumerate(parts):
            if k % 2 == 1:  # re.split puts the captured special tokens at odd positions
                ids.append(self._special_id[part])
            else:
                for word in pretokenize(part):
                    ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids):
        """The text of ``ids``; byte sequences that are not valid UTF-8 decode to U+FFFD."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        pieces = []
        for i in ids:
            if isinstance(i, int) and 0 <= i < len(self._bytes):
                pieces.append(self._bytes[i])
            elif i in self._special_of_id:
                pieces.append(self._special_of_id[i].encode("utf-8"))
            else:
                raise ValueError(
                    f"ByteLevelBPETokenizer.decode: id {i!r} is not in [0, {self.vocab_size})"
                )
        return b"".join(pieces).decode("utf-8", errors="replace")

    def to_dict(self):
        """The tokenizer as a JSON-able dict: its merges and special tokens."""
        return {
            "type": "byte_level_bpe",
            "merges": [list(pair) for pair in self.merges],
            "special_tokens": self.special_tokens,
        }

    @classmethod
    def from_dict(cls, state):
        """The tokenizer described by ``to_dict()``'s dict."""
        if state.get("type") != "byte_level_bpe":
            raise ValueError(f"ByteLevelBPETokenizer: the state holds a {state.get('type')!r} tokenizer")
        return cls(state["merges"], state["special_tokens"])

    def save(self, path):
        """Write ``to_dict()`` to ``path`` as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path):
        """Read a tokenizer written by ``save``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
