"""Tokenizers: character-level and byte-level BPE, checked against naive reference
implementations and by round trips on arbitrary unicode (hypothesis)."""

import json
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from minifm.data import (
    ByteLevelBPETokenizer, CharTokenizer, default_corpus, load_tokenizer, pretokenize,
)
from minifm.data.bpe import _merge

SAMPLE = (
    "The quick brown fox jumps over the lazy dog. The dog's owner said: 'That's the "
    "fifth time this week!'\n\n    def quick(x):\n        return x ** 2  # 1234 squared\n"
    "Ünïcödé wörds, 日本語のテキスト, emoji 🙂🙂, numbers 3.14159 and 2718281828.\n"
) * 3


@pytest.fixture(scope="module")
def corpus():
    return default_corpus(max_bytes=30_000)


@pytest.fixture(scope="module")
def bpe(corpus):
    return ByteLevelBPETokenizer().train(corpus + SAMPLE, vocab_size=400)


# ----------------------------------------------------------------------------- CharTokenizer
def test_char_vocab_is_sorted_unique_chars():
    tok = CharTokenizer.from_text("hello world")
    assert tok.chars == sorted(set("hello world"))
    assert tok.vocab_size == 8
    assert tok.encode("hello") == [tok.chars.index(c) for c in "hello"]
    assert tok.decode(tok.encode("old hero")) == "old hero"


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1))
def test_char_round_trip(text):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_char_unknown_character_error_names_it():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 2"):
        tok.encode("abz")


@pytest.mark.parametrize("bad", [-1, 3, 1.5])
def test_char_decode_rejects_bad_ids(bad):
    with pytest.raises(ValueError, match="not in \\[0, 3\\)"):
        CharTokenizer.from_text("abc").decode([0, bad])


def test_char_rejects_bad_vocabulary():
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="repeated"):
        CharTokenizer("aba")


def test_char_save_load(tmp_path):
    tok = CharTokenizer.from_text("héllo\nwörld 🙂")
    path = tmp_path / "char.json"
    tok.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == "char"
    for loaded in (CharTokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.chars == tok.chars
        assert loaded.encode("wörld 🙂") == tok.encode("wörld 🙂")


# ----------------------------------------------------------------------------- pre-tokenizer
@pytest.mark.parametrize("text, words", [
    ("Hello world's  test 123!!", ["Hello", " world", "'s", " ", " test", " 123", "!!"]),
    ("a  \n", ["a", "  \n"]),
    ("foo_bar(x)", ["foo", "_", "bar", "(", "x", ")"]),
    ("they'll  go\n\n  now", ["they", "'ll", " ", " go", "\n\n ", " now"]),
    ("x² ½", ["x²", " ½"]),  # documented difference: GPT-2 splits "x" and "²"
])
def test_pretokenize_matches_gpt2_splits(text, words):
    assert pretokenize(text) == words


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_pretokenize_covers_every_character(text):
    assert "".join(pretokenize(text)) == text


# ----------------------------------------------------------------------------- BPE training
def naive_bpe_merges(text, n_merges):
    """Reference trainer: recount every pair of every word occurrence at every step."""
    words = [list(w.encode("utf-8")) for w in pretokenize(text)]
    merges = []
    for _ in range(n_merges):
        counts = Counter(p for w in words for p in zip(w, w[1:]))
        if not counts:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges.append(pair)
        words = [_merge(w, pair, 256 + len(merges) - 1) for w in words]
    return merges


def naive_bpe_encode(tok, text):
    """Reference encoder: apply every merge, in the order learned, to every word."""
    ids = []
    for word in pretokenize(text):
        word_ids = list(word.encode("utf-8"))
        for k, pair in enumerate(tok.merges):
            word_ids = _merge(word_ids, pair, 256 + k)
        ids.extend(word_ids)
    return ids


def test_training_matches_naive_reference():
    text = default_corpus(max_bytes=4_000) + SAMPLE
    tok = ByteLevelBPETokenizer().train(text, vocab_size=256 + 120)
    assert tok.merges == naive_bpe_merges(text, 120)


def test_vocab_size_is_respected():
    tok = ByteLevelBPETokenizer().train(SAMPLE, vocab_size=300, special_tokens=["<|endoftext|>"])
    assert tok.vocab_size == 300
    assert len(tok.merges) == 300 - 256 - 1
    assert tok.encode("<|endoftext|>") == [299]


def test_training_stops_when_nothing_is_left_to_merge():
    tok = ByteLevelBPETokenizer().train("ab ab", vocab_size=1000)
    assert tok.vocab_size == 258  # "ab", then " ab"
    assert tok.encode("ab ab") == [256, 257]


def test_vocab_size_too_small_is_an_error():
    with pytest.raises(ValueError, match="vocab_size=256 is smaller than the 256 byte tokens"):
        ByteLevelBPETokenizer().train(SAMPLE, 256, special_tokens=["<s>"])


def test_more_merges_give_fewer_tokens(corpus):
    counts = [len(ByteLevelBPETokenizer().train(corpus, v).encode(corpus)) for v in (256, 320, 512)]
    assert counts[0] == len(corpus.encode("utf-8"))
    assert counts[0] > counts[1] > counts[2]


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_bpe_round_trips_arbitrary_unicode(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text
    assert bpe.encode(bpe.decode(ids)) == ids


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcdefghij klmnop\n_()=:.'\"0123é日"), max_size=200))
def test_bpe_encode_matches_naive_reference(bpe, text):
    assert bpe.encode(text) == naive_bpe_encode(bpe, text)


def test_decode_invalid_utf8_uses_replacement_character(bpe):
    assert bpe.decode([0xE6, 0x97]) == "\ufffd"  # the first two bytes of a 3-byte character
    assert bpe.decode([ord("a"), 0xFF, ord("b")]) == "a\ufffdb"


def test_decode_rejects_ids_outside_the_vocabulary(bpe):
    with pytest.raises(ValueError, match=r"id 400 is not in \[0, 400\)"):
        bpe.decode([1, 400])
    with pytest.raises(ValueError, match=r"id -1"):
        bpe.decode([-1])


def test_special_tokens_are_never_split_or_merged():
    special = "<|endoftext|>"
    text = (SAMPLE + special) * 3
    tok = ByteLevelBPETokenizer().train(text, vocab_size=350, special_tokens=[special, "<pad>"])
    eot, pad = tok.vocab_size - 2, tok.vocab_size - 1
    ids = tok.encode("hi" + special + "<pad>" + special)
    assert ids[-3:] == [eot, pad, eot]
    assert tok.decode(ids) == "hi" + special + "<pad>" + special
    assert all("<|" not in tok.decode([i]) for i in range(256, eot))


def test_bad_special_tokens_are_rejected():
    with pytest.raises(ValueError, match="non-empty strings"):
        ByteLevelBPETokenizer(special_tokens=[""])
    with pytest.raises(ValueError, match="repeat"):
        ByteLevelBPETokenizer(special_tokens=["<s>", "<s>"])


def test_bpe_save_load_gives_identical_encodings(tmp_path, corpus):
    tok = ByteLevelBPETokenizer().train(corpus, vocab_size=300, special_tokens=["<|endoftext|>"])
    path = tmp_path / "bpe.json"
    tok.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["type"] == "byte_level_bpe" and len(state["merges"]) == len(tok.merges)
    text = corpus[:3000] + "<|endoftext|>" + SAMPLE
    for loaded in (ByteLevelBPETokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, ByteLevelBPETokenizer)
        assert loaded.vocab_size == tok.vocab_size
        assert loaded.encode(text) == tok.encode(text)


def test_load_rejects_another_tokenizer_type(tmp_path):
    path = tmp_path / "char.json"
    CharTokenizer.from_text("abc").save(path)
    with pytest.raises(ValueError, match="holds a 'char' tokenizer"):
        ByteLevelBPETokenizer.load(path)
    path.write_text('{"type": "wordpiece"}')
    with pytest.raises(ValueError, match="unknown tokenizer type 'wordpiece'"):
        load_tokenizer(path)


def test_merges_must_refer_to_earlier_ids():
    with pytest.raises(ValueError, match=r"merge \(256, 1\) uses an id not defined before it"):
        ByteLevelBPETokenizer(merges=[(256, 1)])
