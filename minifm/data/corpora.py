"""Text corpora for language models, and nanoGPT's contiguous train/val split.

``default_corpus`` needs no download: every Python installation with its sources
carries megabytes of real, varied text, the standard library. Which files it picks
depends only on the Python version, so a run is reproducible on any machine with the
same Python.
"""

import os
import sysconfig


def load_text(path, encoding="utf-8"):
    """The contents of the text file at ``path``, decoded with ``encoding``.

    A file that is not valid in that encoding is refused with the byte offset of the
    first bad byte, so it can be found (``head -c OFFSET file | tail``) or the right
    encoding chosen.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_text: no text file at {os.path.abspath(path)!r}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"load_text: {os.path.abspath(path)!r} is not valid {encoding}: byte "
            f"0x{data[err.start]:02x} at offset {err.start} ({err.reason}); give the file's "
            f"encoding (encoding=, or --encoding on the command line), e.g. latin-1"
        ) from None


def default_corpus(max_bytes=1_000_000):
    """Up to ``max_bytes`` UTF-8 bytes of Python source from the standard library.

    The top-level ``.py`` files of the standard library, in sorted order, each after a
    ``# file: name.py`` line, are taken whole while they fit; the next file is cut at the
    last line that fits.
    """
    if max_bytes <= 0:
        raise ValueError(f"default_corpus: max_bytes must be positive, got {max_bytes}")
    stdlib = sysconfig.get_paths()["stdlib"]
    names = []
    if os.path.isdir(stdlib):
        names = sorted(n for n in os.listdir(stdlib) if n.endswith(".py"))
    if not names:
        raise FileNotFoundError(
            f"default_corpus: no Python standard library sources (.py files) in {stdlib!r}; "
            "this Python ships without them. Use load_text(path) on a text file instead."
        )
    pieces, size = [], 0
    for name in names:
        with open(os.path.join(stdlib, name), encoding="utf-8", errors="replace") as f:
            lines = [f"# file: {name}\n"] + f.readlines()
        if not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        for line in lines:
            n = len(line.encode("utf-8"))
            if size + n > max_bytes:
                return "".join(pieces)
            pieces.append(line)
            size += n
    return "".join(pieces)


def train_val_test_split(tokens, val_frac=0.1, test_frac=0.0):
    """Contiguous (train, val, test) slices of ``tokens``, in that order, as in nanoGPT.

    Slicing keeps neighbouring text together, so no validation block overlaps a training
    block. With the defaults, train is the first 90% and val the last 10%; test is empty.
    """
    if not (0 <= val_frac <= 1 and 0 <= test_frac <= 1 and val_frac + test_frac <= 1):
        raise ValueError(
            f"train_val_test_split: need 0 <= val_frac, test_frac and val_frac + test_frac "
            f"<= 1, got val_frac={val_frac}, test_frac={test_frac}"
        )
    n = len(tokens)
    train_end = int(n * (1 - val_frac - test_frac))
    val_end = int(n * (1 - test_frac))
    return tokens[:train_end], tokens[train_end:val_end], tokens[val_end:]


def min_corpus_tokens(min_tokens, val_frac=0.1, test_frac=0.0):
    """The fewest tokens for which ``train_val_test_split`` gives a train split, and a val
    and test split wherever their fraction is above 0, of at least ``min_tokens`` each."""
    def long_enough(n):
        train, val, test = (len(p) for p in train_val_test_split(range(n), val_frac, test_frac))
        return (train >= min_tokens and (val_frac == 0 or val >= min_tokens)
                and (test_frac == 0 or test >= min_tokens))

    n = min_tokens
    while not long_enough(n):  # a few thousand tries at most: each is two int products
        n += 1
    return n
