"""minifm.data against torch.utils.data: collation, batching, lengths, random_split sizes;
plus seeded shuffling, mid-epoch resume, nanoGPT-style blocks, corpora and digits."""

import json
import warnings
from collections import namedtuple

import numpy as np
import pytest

import minifm
from minifm.data import (
    DataLoader, Subset, TensorDataset, default_collate, default_corpus, load_digits, load_text,
    min_corpus_tokens, random_blocks, random_split, train_val_test_split, upsample,
)

torch = pytest.importorskip("torch")
import torch.utils.data as tud  # noqa: E402

Point = namedtuple("Point", "x label")


def assert_same(ours, theirs):
    """Equal structure, values and dtypes between a minifm batch and a torch batch."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, minifm.Tensor), type(ours)
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for key in theirs:
            assert_same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs


def to_torch(sample):
    """The same sample with every minifm Tensor replaced by a torch tensor."""
    if isinstance(sample, minifm.Tensor):
        return torch.from_numpy(sample.numpy().copy())
    if isinstance(sample, dict):
        return {k: to_torch(v) for k, v in sample.items()}
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*map(to_torch, sample))
    if isinstance(sample, (list, tuple)):
        return type(sample)(map(to_torch, sample))
    return sample


rng = np.random.default_rng(0)
SAMPLES = {
    "tensor": [minifm.from_numpy(rng.standard_normal((2, 3)).astype(np.float32)) for _ in range(4)],
    "int tensor": [minifm.tensor(i) for i in range(4)],
    "ndarray": [rng.integers(0, 9, (3,)) for _ in range(4)],
    "float": [0.5, 1.25, -2.0],
    "int": [1, 2, 3],
    "bool": [True, False, True],
    "numpy scalar": [np.float32(1.5), np.float32(-2.0)],
    "numpy int scalar": [np.int16(3), np.int16(4)],
    "str": ["a", "bc"],
    "dict": [{"x": np.ones(2), "y": 1, "name": "a"}, {"x": np.zeros(2), "y": 2, "name": "b"}],
    "tuple": [(minifm.tensor([1.0, 2.0]), 0), (minifm.tensor([3.0, 4.0]), 1)],
    "list": [[1, 2.0], [3, 4.0]],
    "namedtuple": [Point(np.ones(2, np.float32), 1), Point(np.zeros(2, np.float32), 0)],
    "nested": [{"a": (1, [np.float64(2.0)])}, {"a": (3, [np.float64(4.0)])}],
}


@pytest.mark.parametrize("kind", SAMPLES)
def test_default_collate_matches_torch(kind):
    batch = SAMPLES[kind]
    assert_same(default_collate(batch), tud.default_collate([to_torch(s) for s in batch]))


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match=r"cannot stack arrays of shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object()])


def datasets(n):
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = np.arange(n, dtype=np.int64)
    ours = TensorDataset(minifm.from_numpy(x), minifm.from_numpy(y))
    theirs = tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return ours, theirs


@pytest.mark.parametrize("n, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True), (7, 1, False),
])
def test_loader_batches_match_torch_in_order(n, batch_size, drop_last):
    ours, theirs = datasets(n)
    loader = DataLoader(ours, batch_size=batch_size, drop_last=drop_last)
    reference = tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(reference)
    batches = list(loader)
    assert len(batches) == len(reference)
    for a, b in zip(batches, reference):
        assert_same(a, b)


def labels_of(loader):
    return [batch[1].numpy().tolist() for batch in loader]


def test_shuffle_is_a_seeded_permutation_per_epoch():
    ours, _ = datasets(23)
    gen = minifm.Generator(seed=0)
    loader = DataLoader(ours, batch_size=5, shuffle=True, generator=gen)
    epochs = [labels_of(loader) for _ in range(3)]
    for epoch in epochs:
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]
        assert sorted(sum(epoch, [])) == list(range(23))
    assert epochs[0] != epochs[1] != epochs[2]
    again = DataLoader(ours, batch_size=5, shuffle=True, generator=minifm.Generator(seed=0))
    assert [labels_of(again) for _ in range(3)] == epochs


def test_shuffle_uses_the_default_generator_when_none_is_given():
    ours, _ = datasets(20)
    minifm.manual_seed(7)
    first = labels_of(DataLoader(ours, batch_size=4, shuffle=True))
    minifm.manual_seed(7)
    assert labels_of(DataLoader(ours, batch_size=4, shuffle=True)) == first


@pytest.mark.parametrize("use_default_generator", [False, True])
@pytest.mark.parametrize("stop_after", [0, 3, 5])
def test_resume_mid_epoch_yields_identical_batches(use_default_generator, stop_after):
    ours, _ = datasets(23)

    def make_loader():
        gen = None if use_default_generator else minifm.Generator(seed=1)
        return DataLoader(ours, batch_size=4, shuffle=True, generator=gen, drop_last=True), gen

    def rng_state(gen):
        return minifm.get_rng_state() if gen is None else gen.get_state()

    minifm.manual_seed(3)
    loader, gen = make_loader()
    labels_of(loader)  # a whole first epoch, so the checkpoint is in epoch 1
    it = iter(loader)
    for _ in range(stop_after):
        next(it)
    checkpoint = json.loads(json.dumps({"loader": loader.state_dict(), "rng": rng_state(gen)}))
    assert checkpoint["loader"]["epoch"] == 1
    assert checkpoint["loader"]["batch_index"] == stop_after
    expected = [b[1].numpy().tolist() for b in it] + labels_of(loader)

    minifm.manual_seed(12345)  # a fresh process: different global state
    resumed, gen = make_loader()
    resumed.load_state_dict(checkpoint["loader"])
    if gen is None:
        minifm.set_rng_state(checkpoint["rng"])
    else:
        gen.set_state(checkpoint["rng"])
    assert labels_of(resumed) + labels_of(resumed) == expected
    assert resumed.state_dict() == {"epoch": 3, "batch_index": 0, "generator_state": None}


def test_a_new_iterator_starts_a_new_epoch():
    ours, _ = datasets(12)
    loader = DataLoader(ours, batch_size=3, shuffle=True, generator=minifm.Generator(seed=0))
    assert loader.state_dict() == {"epoch": 0, "batch_index": 0, "generator_state": None}
    first = next(iter(loader))[1].numpy().tolist()
    state = loader.state_dict()
    assert state["epoch"] == 0 and state["batch_index"] == 1 and state["generator_state"]
    second = next(iter(loader))[1].numpy().tolist()
    assert loader.state_dict()["epoch"] == 1
    assert first != second


def test_load_state_dict_errors():
    ours, _ = datasets(10)
    loader = DataLoader(ours, batch_size=3, shuffle=True)
    with pytest.raises(ValueError, match=r"batch_index 5 is outside this loader's \[0, 4\]"):
        loader.load_state_dict({"epoch": 0, "batch_index": 5, "generator_state": None})
    with pytest.raises(ValueError, match="needs the generator_state"):
        loader.load_state_dict({"epoch": 0, "batch_index": 2, "generator_state": None})
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(ours, batch_size=0)


@pytest.mark.parametrize("n, lengths", [
    (10, [3, 7]), (10, [0.5, 0.5]), (11, [0.3, 0.3, 0.4]), (7, [0.1, 0.2, 0.7]),
    (100, [0.9, 0.1]), (5, [1.0]), (3, [0.25, 0.25, 0.25, 0.25]),
])
def test_random_split_sizes_match_torch(n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about the empty split of n=3
        ours = random_split(list(range(n)), lengths, generator=minifm.Generator(seed=0))
        theirs = tud.random_split(list(range(n)), lengths, torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s) == list(range(n))


def test_random_split_warns_about_empty_splits():
    with pytest.warns(UserWarning, match="split 3 is empty"):
        random_split(list(range(3)), [0.25] * 4)


def test_random_split_is_seeded_and_rejects_bad_lengths():
    data = list(range(20))
    a = random_split(data, [0.5, 0.5], generator=minifm.Generator(seed=4))
    b = random_split(data, [0.5, 0.5], generator=minifm.Generator(seed=4))
    assert [list(s) for s in a] == [list(s) for s in b]
    with pytest.raises(ValueError, match=r"sum to 19, but the dataset has 20 samples"):
        random_split(data, [10, 9])


def test_subset_and_tensor_dataset():
    ours, _ = datasets(6)
    sub = Subset(ours, [4, 1])
    assert len(sub) == 2
    np.testing.assert_array_equal(sub[0][1].numpy(), 4)
    with pytest.raises(ValueError, match=r"same first dimension, got shapes \[\(3,\), \(2,\)\]"):
        TensorDataset(minifm.zeros(3), minifm.zeros(2))


# ----------------------------------------------------------------------------- LM blocks
def test_random_blocks_are_shifted_windows():
    tokens = np.arange(100, dtype=np.uint16) * 3
    x, y = random_blocks(tokens, block_size=8, batch_size=5, generator=minifm.Generator(seed=0))
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == minifm.int64
    x, y = x.numpy(), y.numpy()
    starts = x[:, 0] // 3
    np.testing.assert_array_equal(x, tokens[starts[:, None] + np.arange(8)])
    np.testing.assert_array_equal(y, tokens[starts[:, None] + np.arange(1, 9)])
    again, _ = random_blocks(tokens, 8, 5, generator=minifm.Generator(seed=0))
    np.testing.assert_array_equal(again.numpy(), x)


def test_random_blocks_reach_the_last_token_and_reject_short_streams():
    tokens = np.arange(10)
    _, y = random_blocks(tokens, block_size=9, batch_size=4, generator=minifm.Generator(seed=0))
    np.testing.assert_array_equal(y.numpy(), np.tile(np.arange(1, 10), (4, 1)))
    with pytest.raises(ValueError, match=r"longer than block_size=10, got shape \(10,\)"):
        random_blocks(tokens, block_size=10, batch_size=1)


# ----------------------------------------------------------------------------- corpora
def test_load_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo\n", encoding="utf-8")
    assert load_text(path) == "héllo\n"
    with pytest.raises(FileNotFoundError, match="load_text: no text file at .*missing.txt"):
        load_text(tmp_path / "missing.txt")


def test_load_text_names_the_offset_of_a_byte_the_encoding_refuses(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("naïve café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt' is not valid utf-8: byte 0xef at offset "
                                         r"2 \(invalid continuation byte\); give the file's encoding"):
        load_text(path)
    assert load_text(path, encoding="latin-1") == "naïve café"


@pytest.mark.parametrize("min_tokens, val_frac, test_frac", [
    (17, 0.1, 0.05), (17, 0.1, 0.0), (65, 0.0, 0.0), (3, 0.5, 0.25), (100, 0.3, 0.3)])
def test_min_corpus_tokens_is_the_shortest_corpus_that_splits(min_tokens, val_frac, test_frac):
    n = min_corpus_tokens(min_tokens, val_frac, test_frac)

    def fits(length):
        train, val, test = map(len, train_val_test_split(range(length), val_frac, test_frac))
        return (train >= min_tokens and (val_frac == 0 or val >= min_tokens)
                and (test_frac == 0 or test >= min_tokens))

    assert fits(n) and not fits(n - 1)


def test_default_corpus_is_deterministic_python_source():
    text = default_corpus(max_bytes=50_000)
    assert 49_000 < len(text.encode("utf-8")) <= 50_000
    assert text.startswith("# file: ") and text.endswith("\n")
    assert default_corpus(max_bytes=50_000) == text
    assert default_corpus(max_bytes=100_000).startswith(text)


def test_default_corpus_without_stdlib_sources(tmp_path, monkeypatch):
    import sysconfig
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="no Python standard library sources"):
        default_corpus()


def test_train_val_test_split_is_contiguous_like_nanogpt():
    tokens = np.arange(1001)
    train, val, test = train_val_test_split(tokens)
    assert len(train) == int(1001 * 0.9) and len(test) == 0
    np.testing.assert_array_equal(np.concatenate([train, val]), tokens)
    train, val, test = train_val_test_split(tokens, val_frac=0.1, test_frac=0.2)
    assert (len(train), len(val), len(test)) == (700, 100, 201)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), tokens)
    with pytest.raises(ValueError, match="val_frac=0.7, test_frac=0.5"):
        train_val_test_split(tokens, val_frac=0.7, test_frac=0.5)


# ----------------------------------------------------------------------------- digits
def test_digits_splits_shapes_and_ranges():
    pytest.importorskip("sklearn")
    splits = load_digits()
    sizes = {name: len(y) for name, (x, y) in splits.items()}
    assert sizes == {"train": 1439, "val": 179, "test": 179}
    for x, y in splits.values():
        assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0 and set(y) == set(range(10))
    x_all = np.concatenate([x for x, _ in splits.values()])
    assert len(np.unique(x_all.reshape(len(x_all), -1), axis=0)) > 1700  # disjoint splits

    again = load_digits()
    np.testing.assert_array_equal(again["val"][1], splits["val"][1])
    assert not np.array_equal(load_digits(seed=1)["val"][1], splits["val"][1])

    x, _ = load_digits(size=32, value_range=(-1, 1), mode="bilinear")["train"]
    assert x.shape == (1439, 1, 32, 32) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    with pytest.raises(ValueError, match="low < high"):
        load_digits(value_range=(1, 0))


@pytest.mark.parametrize("size", [16, 32, 12])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_matches_torch_interpolate(size, mode):
    images = rng.random((2, 3, 8, 8)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(images), size=size, mode=mode)
    np.testing.assert_allclose(upsample(images, size, mode), expected.numpy(), rtol=0, atol=1e-6)
