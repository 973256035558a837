"""Checkpoint I/O (minifm.serialization): the safetensors format, checksums, atomic writes,
hostile files.

The format is checked three ways: against its written rules (a reader and a writer in this
file built on struct, json and torch), against the real `safetensors` library when it is
installed (cross-reading both ways, the same header and bytes), and by fuzzing the loader
with truncated, bit-flipped and lying files, which must be refused whole with a
CheckpointError. tests/test_checkpoint_fuzz.py fuzzes real model and trainer checkpoints.
"""
import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minifm import serialization
from minifm.serialization import CheckpointError, add_checksums, load, load_file, save, save_file
from minifm.tensor import Tensor


# ----------------------------------------------------------------------------- helpers
def nan_payloads():
    """float32 NaNs with a sign bit, a quiet payload and a signalling payload."""
    return np.array([0x7FC00001, 0xFFC00000, 0x7F800001], dtype=np.uint32).view(np.float32)


def sample_arrays():
    """One array per dtype, plus the awkward ones: 0-d, empty, non-contiguous, big-endian."""
    rng = np.random.default_rng(0)
    return {
        "f16": np.array([0.0, -0.0, 1e-7, 65504.0, -np.inf, np.nan, 1 / 3], dtype=np.float16),
        "f32_nans": nan_payloads(),
        "f64": rng.standard_normal((3, 4)),
        "f64_transposed": rng.standard_normal((4, 5)).T[::2],   # non-contiguous view
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "i16": np.array([[-32768, 32767]], dtype=np.int16),
        "i32": np.arange(-6, 6, dtype=np.int32).reshape(2, 3, 2),
        "i64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
        "u8": np.arange(256, dtype=np.uint8),
        "bool": np.array([[True, False], [False, True]]),
        "scalar": np.array(-0.0, dtype=np.float32),                 # 0-d
        "empty": np.zeros((0, 3), dtype=np.float32),
        "empty_i64": np.zeros((2, 0), dtype=np.int64),
        "big_endian": np.array([1.5, -2.25], dtype=">f8"),
    }


def assert_bit_exact(got, expected):
    le = expected.dtype.newbyteorder("<")
    assert got.dtype == le and got.shape == expected.shape
    assert got.tobytes() == np.ascontiguousarray(expected, dtype=le).tobytes()


def assert_same_structure(got, expected):
    """Equal values and types all the way down; tensors and arrays bit-exact; nan == nan."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, Tensor):
        assert_bit_exact(got.numpy(), expected.numpy())
    elif isinstance(expected, np.ndarray):
        assert_bit_exact(got, expected)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same_structure(got[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same_structure(g, e)
    elif isinstance(expected, float):
        same_bits = struct.pack("<d", got) == struct.pack("<d", expected)
        assert same_bits or (math.isnan(got) and math.isnan(expected))
    else:
        assert got == expected


def read_header(data: bytes):
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n])


def minifm_header_bytes(header: dict) -> bytes:
    """The header as minifm writes it: compact UTF-8 JSON, padded with spaces to 8 bytes."""
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    return text + b" " * (-len(text) % 8)


def with_header(data: bytes, header: dict) -> bytes:
    """`data` with its header replaced by `header`, written the way minifm writes headers."""
    n, _ = read_header(data)
    text = minifm_header_bytes(header)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


# ----------------------------------------------------------------------------- array level
def test_round_trip_every_dtype_bit_exact(tmp_path):
    arrays = sample_arrays()
    metadata = {"format": "pt", "note": "ünïcode ✓", "empty": ""}
    save_file(arrays, tmp_path / "a.safetensors", metadata)
    got, got_metadata = load_file(tmp_path / "a.safetensors")
    assert got_metadata == metadata
    assert set(got) == set(arrays)
    for name, array in arrays.items():
        assert_bit_exact(got[name], array)
        assert got[name].flags.owndata and got[name].flags.writeable  # a copy, not a buffer view


def test_file_follows_the_layout_rules(tmp_path):
    save_file(sample_arrays(), tmp_path / "a.safetensors", {"k": "v"})
    data = (tmp_path / "a.safetensors").read_bytes()
    n, header = read_header(data)
    assert n % 8 == 0 and data[8:8 + n].decode().rstrip(" ").endswith("}")
    assert list(header)[0] == "__metadata__" and header.pop("__metadata__")["k"] == "v"
    regions = sorted(entry["data_offsets"] for entry in header.values())
    assert regions[0][0] == 0 and regions[-1][1] == len(data) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(regions, regions[1:]))          # contiguous
    itemsize = {"F16": 2, "F32": 4, "F64": 8, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "U8": 1, "BOOL": 1}
    for entry in header.values():                                            # each tensor aligned
        assert (8 + n + entry["data_offsets"][0]) % itemsize[entry["dtype"]] == 0


@pytest.mark.parametrize("array", [np.zeros(2, np.complex64), np.zeros(2, np.uint16),
                                   np.array(["a"]), np.array([{}], dtype=object)])
def test_refuses_unsupported_dtypes_naming_tensor_and_dtype(tmp_path, array):
    with pytest.raises(ValueError, match=f"'weird'.*{array.dtype}"):
        save_file({"ok": np.zeros(1), "weird": array}, tmp_path / "a.safetensors")
    assert not os.listdir(tmp_path)


def test_refuses_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="'x' is a list"):
        save_file({"x": [1.0]}, tmp_path / "a")
    with pytest.raises(ValueError, match="reserved"):
        save_file({"__metadata__": np.zeros(1)}, tmp_path / "a")
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        save_file({"x": np.zeros(1)}, tmp_path / "a", {"k": 1})
    for key in ("minifm.checksums", "minifm.header_checksum"):
        with pytest.raises(ValueError, match=f"{key!r} is reserved"):
            save_file({"x": np.zeros(1)}, tmp_path / "a", {key: "0"})
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- interoperability
def torch_reference_write(tensors: dict, path):
    """A writer built from the format's rules alone: insertion order, unpadded header."""
    import torch
    names = {"float16": "F16", "float32": "F32", "float64": "F64", "int8": "I8", "int16": "I16",
             "int32": "I32", "int64": "I64", "uint8": "U8", "bool": "BOOL"}
    header, chunks, offset = {"__metadata__": {"by": "torch"}}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": names[str(t.dtype).removeprefix("torch.")], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def torch_reference_read(path):
    torch = pytest.importorskip("torch")
    dtypes = {"F16": torch.float16, "F32": torch.float32, "F64": torch.float64, "I8": torch.int8,
              "I16": torch.int16, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8,
              "BOOL": torch.bool}
    data = path.read_bytes()
    n, header = read_header(data)
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        dtype = dtypes[entry["dtype"]]
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(entry["shape"])
    return out, metadata


def test_matches_a_reference_built_on_torch(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = {k: v for k, v in sample_arrays().items() if k != "big_endian"}
    save_file(arrays, tmp_path / "ours.safetensors", {"k": "v"})
    theirs, metadata = torch_reference_read(tmp_path / "ours.safetensors")
    assert metadata["k"] == "v" and set(theirs) == set(arrays)
    for name, array in arrays.items():
        assert_bit_exact(theirs[name].numpy(), array)

    tensors = {name: torch.from_numpy(np.array(a, order="C")) for name, a in arrays.items()}
    torch_reference_write(tensors, tmp_path / "theirs.safetensors")
    got, metadata = load_file(tmp_path / "theirs.safetensors")
    assert metadata == {"by": "torch"}
    for name, array in arrays.items():
        assert_bit_exact(got[name], array)


def test_cross_reads_with_the_safetensors_library(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open
    arrays = {k: np.array(v, order="C") for k, v in sample_arrays().items() if k != "big_endian"}

    save_file(arrays, tmp_path / "ours.safetensors")
    ours = (tmp_path / "ours.safetensors").read_bytes()
    n, header = read_header(ours)
    same = st_numpy.save(arrays, metadata=header["__metadata__"])  # the library orders the
    assert read_header(same) == (n, header)                         # metadata its own way
    assert same[8 + n:] == ours[8 + n:]                              # the tensors: byte-identical

    save_file(arrays, tmp_path / "ours_meta.safetensors", {"k": "v"})
    theirs = st_numpy.load_file(tmp_path / "ours_meta.safetensors")
    for name, array in arrays.items():
        assert_bit_exact(theirs[name], array)
    with safe_open(tmp_path / "ours_meta.safetensors", "np") as f:
        assert f.metadata()["k"] == "v"
        assert set(f.metadata()) == {"k", "minifm.checksums", "minifm.header_checksum"}

    st_numpy.save_file(arrays, tmp_path / "theirs.safetensors", metadata={"a": "1", "b": "2"})
    got, metadata = load_file(tmp_path / "theirs.safetensors")
    assert metadata == {"a": "1", "b": "2"}
    for name, array in arrays.items():
        assert_bit_exact(got[name], array)


def test_state_dict_is_a_plain_safetensors_file_for_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    state = {"fc.weight": Tensor(np.ones((3, 2), np.float32)), "fc.bias": Tensor(np.zeros(3, np.float32))}
    save(state, tmp_path / "model.safetensors")
    loaded = st_torch.load_file(tmp_path / "model.safetensors")
    assert set(loaded) == {"fc.weight", "fc.bias"} and loaded["fc.weight"].dtype == torch.float32

    torch_state = {"w": torch.arange(6, dtype=torch.int32).reshape(2, 3)}
    st_torch.save_file(torch_state, tmp_path / "torch.safetensors")
    got = load(tmp_path / "torch.safetensors")
    assert list(got) == ["w"] and isinstance(got["w"], Tensor)
    assert got["w"].numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


# ----------------------------------------------------------------------------- object level
def optimizer_like_checkpoint():
    rng = np.random.default_rng(1)
    return {
        "model": {"fc.weight": Tensor(rng.standard_normal((3, 2)).astype(np.float32)),
                  "fc.bias": Tensor(np.array([-0.0, 1.0, np.nan], np.float32))},
        "optim": {
            "state": {0: {"step": 3, "exp_avg": Tensor(np.zeros((3, 2), np.float32))},
                      1: {"step": Tensor(np.array(3.0, np.float32)),
                          "exp_avg": Tensor(nan_payloads())}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False,
                              "params": [0, 1], "foreach": None, "maximize": False}],
        },
        "rng": {"bit_generator": "PCG64", "state": {"state": 2**128 - 1, "inc": 2**127 + 12345}},
        "numbers": [math.inf, -math.inf, math.nan, -0.0, 5e-324, 1e300, 1.0, 1, True, -(2**200)],
        "arrays": (np.arange(3, dtype=np.int16), np.zeros((0,), np.float64)),
        "mixed_keys": {"1": "str key", 1: "int key", -7: None, "": "empty"},
        "empty": [{}, [], ()],
    }


def test_nested_structure_round_trips_exactly(tmp_path):
    obj = optimizer_like_checkpoint()
    save(obj, tmp_path / "ckpt.safetensors")
    assert_same_structure(load(tmp_path / "ckpt.safetensors"), obj)


@pytest.mark.parametrize("obj", [
    Tensor(np.arange(3.0)), np.eye(2), [Tensor(np.ones(1)), Tensor(np.ones(1))], 7, None, "text",
    {"a.b": Tensor(np.ones(1)), "a": {"b": Tensor(np.zeros(1))}},    # both want the name "a.b"
    {"__metadata__": Tensor(np.ones(1))},                              # a name the format reserves
])
def test_top_level_values_and_name_collisions_round_trip(tmp_path, obj):
    save(obj, tmp_path / "x.safetensors")
    assert_same_structure(load(tmp_path / "x.safetensors"), obj)


def test_flat_state_dict_keeps_its_keys_and_order(tmp_path):
    state = {"b.weight": Tensor(np.ones(2, np.float32)), "a.weight": Tensor(np.zeros(3, np.float64))}
    save(state, tmp_path / "m.safetensors")
    arrays, _ = load_file(tmp_path / "m.safetensors")
    assert set(arrays) == set(state)
    assert list(load(tmp_path / "m.safetensors")) == ["b.weight", "a.weight"]


def test_tensor_that_requires_grad_is_saved_as_plain_values(tmp_path):
    weight = Tensor(np.ones(2, np.float32), requires_grad=True)
    save({"w": weight}, tmp_path / "w.safetensors")
    loaded = load(tmp_path / "w.safetensors", map_location="cpu")["w"]
    assert not loaded.requires_grad and str(loaded.device) == "cpu"
    assert loaded.numpy().tolist() == [1.0, 1.0]


def test_map_location_cuda(tmp_path):
    from minifm import backend
    if not backend.cuda_is_available():
        pytest.skip("no CUDA device")
    save({"w": Tensor(np.arange(4, dtype=np.float32)), "a": np.ones(2)}, tmp_path / "w.safetensors")
    loaded = load(tmp_path / "w.safetensors", map_location="cuda")
    assert str(loaded["w"].device) == "cuda:0" and isinstance(loaded["a"], np.ndarray)
    assert loaded["w"].cpu().numpy().tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("obj, match", [
    ({"x": {1, 2}}, r"set \(at obj\['x'\]\)"),
    ({"x": [np.float32(1.0)]}, r"float32 \(at obj\['x'\]\[0\]\)"),
    ({(1, 2): 3}, r"keys must be str or int"),
    ({1.5: 3}, r"keys must be str or int"),
    ({"x": np.zeros(2, np.complex128)}, r"'x' has dtype complex128"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, obj, match):
    with pytest.raises((TypeError, ValueError), match=match):
        save(obj, tmp_path / "x.safetensors")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("structure, match", [
    ('{"tensor": "missing"}', "does not hold"),
    ('[{"tensor": "w"}, {"tensor": "w"}]', "twice"),
    ('[]', "does not refer to"),
    ('{"tensor": "w", "x": 1}', "unexpected node"),
    ('{"set": [1]}', "unexpected node"),
    ('{"float": "1.5"}', "unexpected node"),
    ('{"dict": [["a", 1], ["a", 2]]}', "bad dict item"),
    ('{"dict": [[1.5, {"tensor": "w"}]]}', "bad dict item"),
    ('{"dict": [[true, {"tensor": "w"}]]}', "bad dict item"),
    ('[NaN, {"tensor": "w"}]', "not valid JSON"),
    ('{"dict": [', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON|too deeply"),
    ('{"tuple": ' * 2000 + '[{"tensor": "w"}]' + "}" * 2000, "not valid JSON|too deeply"),
])
def test_load_refuses_a_lying_structure(tmp_path, structure, match):
    save_file({"w": np.ones(2)}, tmp_path / "x.safetensors", {"minifm.structure": structure})
    with pytest.raises(CheckpointError, match=match):
        load(tmp_path / "x.safetensors")


# ----------------------------------------------------------------------------- atomic writes
def make_failure(monkeypatch, where, exc):
    """Make the save fail at one point: mid-buffer, at fsync, or at the final rename."""
    if where == "mid_buffer":
        original, calls = serialization._raw_bytes, []

        def raw_bytes(array):
            calls.append(1)
            if len(calls) == 2:
                raise exc
            return original(array)
        monkeypatch.setattr(serialization, "_raw_bytes", raw_bytes)
    else:
        def boom(*args):
            raise exc
        monkeypatch.setattr(os, {"fsync": "fsync", "rename": "replace"}[where], boom)


@pytest.mark.parametrize("where", ["mid_buffer", "fsync", "rename"])
@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch, where, exc):
    target = tmp_path / "ckpt.safetensors"
    save_file({"old": np.arange(10.0)}, target)
    before = target.read_bytes()
    make_failure(monkeypatch, where, exc)
    with pytest.raises(type(exc)):
        save_file({"a": np.ones(1000), "b": np.ones(1000, np.float32), "c": np.ones(3, np.int8)}, target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]   # no temporary file left behind
    assert load_file(target)[0]["old"].tolist() == list(range(10))


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    save_file({"v": np.zeros(4)}, target)
    save(optimizer_like_checkpoint(), target)
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    assert load(target)["rng"]["state"]["state"] == 2**128 - 1


# ----------------------------------------------------------------------------- hostile files
@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    """A valid file with several tensors and metadata: the seed of every damaged file."""
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1.0, -0.0, np.nan]),
              "idx": np.array([3, 1, 2], dtype=np.int64), "mask": np.array([True, False]),
              "scalar": np.array(7, dtype=np.int16), "none": np.zeros((0, 2), np.float16)}
    path = tmp_path_factory.mktemp("good") / "good.safetensors"
    save_file(arrays, path, {"step": "10", "note": "fuzz"})
    return path.read_bytes()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "case.safetensors"


def try_load(scratch, data: bytes):
    """Load `data` from a file: None when refused with a CheckpointError naming the file,
    else the result, which must be whole: its arrays cover the buffer byte for byte."""
    scratch.write_bytes(data)
    try:
        arrays, metadata = load_file(scratch)
    except CheckpointError as exc:
        assert str(scratch) in str(exc)
        return None
    n = int.from_bytes(data[:8], "little")
    assert sum(a.nbytes for a in arrays.values()) == len(data) - 8 - n
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    return arrays, metadata


def test_truncation_anywhere_is_refused(scratch, good_bytes):
    n = int.from_bytes(good_bytes[:8], "little")
    for size in range(len(good_bytes)):   # every offset: length field, header, buffer
        assert try_load(scratch, good_bytes[:size]) is None, size
    assert n > 8 and len(good_bytes) > 8 + n + 50


def test_flipping_any_byte_is_refused(scratch, good_bytes):
    rng = random.Random(0)
    for position in range(len(good_bytes)):  # the length field, every header and buffer byte
        data = bytearray(good_bytes)
        data[position] ^= rng.randrange(1, 256)
        assert try_load(scratch, bytes(data)) is None, position


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.none() | st.integers(0, 10_000), extra=st.binary(max_size=16))
def test_random_damage_is_refused(scratch, good_bytes, edits, cut, extra):
    data = bytearray(good_bytes)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[:cut % len(data)]
    data = bytes(data) + extra
    loaded = try_load(scratch, data)
    assert (loaded is None) == (data != good_bytes)


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def crafted(header, buffer=b"\0" * 8, length=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + buffer


def one_entry(**changes):
    return crafted({"x": {**entry(), **changes}})


X = json.dumps(entry()).encode()
LYING_FILES = {  # name: (file bytes, what the error must say)
    "empty file": (b"", "0 bytes long"),
    "7 bytes": (b"\x08\0\0\0\0\0\0", "7 bytes long"),
    "header length past the end": (crafted({"x": entry()}, length=1000), "runs past the end"),
    "header length 2**64 - 1": (crafted({"x": entry()}, length=2**64 - 1), "exceeds the limit"),
    "header length over the cap": (struct.pack("<Q", serialization.MAX_HEADER_BYTES + 1) + b"{}",
                                   "exceeds the limit"),
    "not utf-8": (crafted(b'{"\xff": 1}'), "not valid UTF-8"),
    "not json": (crafted(b"{'x': 1}"), "not valid JSON"),
    "NaN in json": (crafted(X.replace(b"[2]", b"[NaN]")), "NaN is not JSON"),
    "duplicate key": (crafted(b'{"x": ' + X + b', "x": ' + X + b"}"), "duplicate keys"),
    "deep nesting": (crafted(b"[" * 200_000 + b"]" * 200_000), "not valid JSON"),
    "huge integer": (crafted(X.replace(b"[2]", b"[" + b"9" * 5000 + b"]")), "not valid JSON"),
    "json array": (crafted([entry()]), "JSON array, not an object"),
    "json number": (crafted(b"5"), "JSON number, not an object"),
    "json null": (crafted(b"null"), "JSON null, not an object"),
    "entry not an object": (crafted({"x": [0, 8]}), "exactly the keys"),
    "unknown key": (one_entry(offset=0), "exactly the keys"),
    "missing key": (crafted({"x": {"dtype": "F32", "shape": [2]}}), "exactly the keys"),
    "bogus dtype": (one_entry(dtype="F8"), "unknown dtype 'F8'"),
    "lowercase dtype": (one_entry(dtype="f32"), "unknown dtype 'f32'"),
    "BF16 (unsupported)": (one_entry(dtype="BF16", shape=[4]), "unknown dtype 'BF16'"),
    "dtype not a string": (one_entry(dtype=4), "unknown dtype 4"),
    "negative shape": (one_entry(shape=[-2]), r"shape \[-2\]"),
    "negative shapes cancelling": (one_entry(shape=[-1, -2]), r"shape \[-1, -2\]"),
    "float in shape": (one_entry(shape=[2.0]), r"shape \[2.0\]"),
    "bool in shape": (one_entry(shape=[True, 2]), r"shape \[True, 2\]"),
    "shape not a list": (one_entry(shape=2), "shape 2;"),
    "65 dims": (one_entry(shape=[1] * 64 + [2]), "at most 64"),
    "huge shape": (crafted({"x": entry(shape=(2**62, 2**62, 0), offsets=(0, 0))}, b""), "too large"),
    "huge empty shape": (crafted({"x": entry(shape=(0, 2**62), offsets=(0, 0))}, b""), "too large"),
    "offsets not a list": (one_entry(data_offsets=8), "data_offsets 8;"),
    "three offsets": (one_entry(data_offsets=[0, 4, 8]), r"expected \[begin, end\]"),
    "float offsets": (one_entry(data_offsets=[0.0, 8]), r"expected \[begin, end\]"),
    "negative begin": (one_entry(data_offsets=[-8, 0]), "outside the 8-byte buffer or reversed"),
    "begin after end": (one_entry(shape=[0], data_offsets=[8, 0]), "or reversed"),
    "end past the buffer": (crafted({"x": entry()}, b"\0" * 4), "outside the 4-byte buffer"),
    "offsets past the buffer": (one_entry(data_offsets=[2**70, 2**70 + 8]), "outside the 8-byte"),
    "wrong byte count": (one_entry(shape=[3]), "needs 12 bytes"),
    "overlap": (crafted({"x": entry(), "y": entry(offsets=(4, 12))}, b"\0" * 12), r"\(overlap\)"),
    "same region twice": (crafted({"x": entry(), "y": entry()}), r"\(overlap\)"),
    "hole": (crafted({"x": entry(), "y": entry(offsets=(12, 20))}, b"\0" * 20), r"\(hole\)"),
    "hole at the start": (crafted({"x": entry(offsets=(4, 12))}, b"\0" * 12), r"\(hole\)"),
    "trailing bytes": (crafted({"x": entry()}, b"\0" * 9), "cover 8 bytes, but the buffer holds 9"),
    "no tensors but bytes": (crafted({}, b"\0"), "cover 0 bytes"),
    "metadata not str -> str": (crafted({"__metadata__": {"step": 3}, "x": entry()}), "__metadata__ must"),
    "metadata an array": (crafted({"__metadata__": ["a"], "x": entry()}), "__metadata__ must"),
    "metadata null": (crafted({"__metadata__": None, "x": entry()}), "__metadata__ must"),
    "NUL padding": (crafted(X + b"\0\0"), "not valid JSON"),
}


@pytest.mark.parametrize("name", LYING_FILES)
def test_lying_header_is_refused_with_the_reason(scratch, name):
    data, reason = LYING_FILES[name]
    scratch.write_bytes(data)
    prefix = re.escape(f"{scratch}: not a valid safetensors file: ")
    with pytest.raises(CheckpointError, match=f"{prefix}.*{reason}"):
        load_file(scratch)


def test_valid_edge_files_load(scratch):
    assert try_load(scratch, crafted({}, buffer=b"")) == ({}, {})
    arrays, _ = try_load(scratch, crafted({"e": entry(shape=(0,), offsets=(0, 0)), "x": entry()}))
    assert arrays["e"].shape == (0,) and arrays["x"].tolist() == [0.0, 0.0]
    arrays, _ = try_load(scratch, crafted(json.dumps({"x": entry()}).encode() + b"   "))  # unaligned header
    assert arrays["x"].shape == (2,)


# ----------------------------------------------------------------------------- checksums
def test_checksums_are_stored_in_the_metadata_as_documented(tmp_path):
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "e": np.zeros(0, np.int8)}
    save_file(arrays, tmp_path / "a.safetensors", {"k": "v"})
    n, header = read_header((tmp_path / "a.safetensors").read_bytes())
    metadata = header["__metadata__"]
    assert list(metadata) == ["k", "minifm.checksums", "minifm.header_checksum"]
    assert json.loads(metadata["minifm.checksums"]) == {
        "algorithm": "sha256",
        "tensors": {name: hashlib.sha256(a.tobytes()).hexdigest() for name, a in arrays.items()}}
    # The header checksum covers the header as written, less the header checksum entry.
    stated = metadata.pop("minifm.header_checksum")
    assert stated == hashlib.sha256(minifm_header_bytes(header)).hexdigest()
    arrays_back, metadata_back = load_file(tmp_path / "a.safetensors")
    assert metadata_back == {"k": "v"}           # the checksums are the file's business
    for name, array in arrays.items():
        assert_bit_exact(arrays_back[name], array)


def test_a_changed_tensor_byte_is_refused_naming_the_tensor(tmp_path):
    path = tmp_path / "a.safetensors"
    save({"fc.weight": Tensor(np.ones((2, 3), np.float32)), "fc.bias": Tensor(np.zeros(3))}, path)
    good = path.read_bytes()
    n, header = read_header(good)
    for name in ("fc.weight", "fc.bias"):
        end = header[name]["data_offsets"][1]
        data = bytearray(good)
        data[8 + n + end - 1] ^= 0x01                      # one bit of the tensor's last byte
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=re.escape(
                f"{path}: damaged file: tensor '{name}' does not match its sha256 checksum")):
            load(path)


def test_an_edited_header_is_refused(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"w": np.ones(2, np.float32)}, path, {"step": "10"})
    good = path.read_bytes()
    n, header = read_header(good)

    header["__metadata__"]["step"] = "11"              # a well-formed edit: only its checksum tells
    path.write_bytes(with_header(good, header))
    with pytest.raises(CheckpointError, match="damaged file: the header does not match its sha256"):
        load_file(path)

    spaced = good[8:8 + n].replace(b'"step":', b'"step": ').rstrip(b" ")  # same JSON, other bytes
    path.write_bytes(struct.pack("<Q", len(spaced)) + spaced + good[8 + n:])
    with pytest.raises(CheckpointError, match="header is not byte for byte as minifm writes it"):
        load_file(path)

    for key in ("minifm.checksums", "minifm.header_checksum"):  # half of the checksums gone
        _, header = read_header(good)
        del header["__metadata__"][key]
        path.write_bytes(with_header(good, header))
        with pytest.raises(CheckpointError, match="has one of minifm's checksum entries but not"):
            load_file(path)


@pytest.mark.parametrize("checksums, match", [
    ('{"algorithm": "md5", "tensors": {"w": "00"}}', "unknown checksum algorithm 'md5'"),
    ('{"algorithm": "sha256", "tensors": {}}', "no checksum for tensor 'w'"),
    ('{"algorithm": "sha256", "tensors": {"w": "0", "v": "0"}}', "checksum for tensor 'v', which"),
    ('{"algorithm": "sha256"}', "malformed minifm.checksums"),
    ('[1]', "malformed minifm.checksums"),
    ('{"algorithm": "sha256", "tensors": {"w": 5}}', "malformed minifm.checksums"),
    ('{', "malformed minifm.checksums"),
])
def test_a_malformed_checksum_entry_is_refused(tmp_path, checksums, match):
    """Files whose header checksum is right but whose checksum entry is wrong: only a writer
    with a bug (or a forger) makes them, and each is refused with its reason."""
    path = tmp_path / "a.safetensors"
    save_file({"w": np.ones(2, np.float32)}, path)
    good = path.read_bytes()
    _, header = read_header(good)
    metadata = header["__metadata__"]
    metadata["minifm.checksums"] = checksums
    del metadata["minifm.header_checksum"]
    metadata["minifm.header_checksum"] = hashlib.sha256(minifm_header_bytes(header)).hexdigest()
    path.write_bytes(with_header(good, header))
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: damaged file: ") + ".*" + match):
        load_file(path)


def write_without_checksums(path, arrays: dict, metadata: dict):
    """A safetensors file as another tool (or minifm before checksums) writes it."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, array in arrays.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": {"float32": "F32", "int64": "I64"}[str(array.dtype)],
                        "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = minifm_header_bytes(header)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def test_a_file_from_an_older_minifm_is_refused_until_given_checksums(tmp_path):
    path = tmp_path / "old.safetensors"
    write_without_checksums(path, {"w": np.arange(3, dtype=np.float32)},
                            {"minifm.structure": '{"dict": [["w", {"tensor": "w"}]]}'})
    with pytest.raises(CheckpointError, match=re.escape(
            f"{path}: written by a minifm without checksums") + ".*add_checksums"):
        load(path)
    assert load_file(path)[0]["w"].tolist() == [0, 1, 2]   # the array level reads any safetensors
    add_checksums(path)                                     # the documented way forward
    assert load(path)["w"].numpy().tolist() == [0, 1, 2]


def test_a_file_from_another_tool_loads_unverified(tmp_path):
    """Another tool's safetensors file has no checksums to check: the format's own checks
    run, and the tensors load (as the weights of a model downloaded from a hub would)."""
    path = tmp_path / "theirs.safetensors"
    write_without_checksums(path, {"w": np.arange(3, dtype=np.float32)}, {"format": "pt"})
    assert load(path)["w"].numpy().tolist() == [0, 1, 2]
    add_checksums(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="tensor 'w' does not match"):
        load(path)


def test_safetensors_library_file_without_checksums(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {"a": np.arange(4, dtype=np.int64), "b": np.ones((2, 2), np.float32)}
    st_numpy.save_file(arrays, tmp_path / "t.safetensors", metadata={"format": "np"})
    got = load(tmp_path / "t.safetensors")
    assert sorted(got) == ["a", "b"]
    for name, array in arrays.items():
        assert_bit_exact(got[name].numpy(), array)


def test_the_safetensors_library_reads_a_minifm_checkpoint(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    obj = optimizer_like_checkpoint()
    save(obj, tmp_path / "ckpt.safetensors")
    theirs = st_numpy.load_file(tmp_path / "ckpt.safetensors")
    ours, _ = load_file(tmp_path / "ckpt.safetensors")
    assert sorted(theirs) == sorted(ours)
    for name in ours:
        assert_bit_exact(theirs[name], ours[name])
    assert_bit_exact(theirs["model.fc.weight"], obj["model"]["fc.weight"].numpy())


# ----------------------------------------------------------------------------- other formats
class LeavesATrace:
    """Unpickling this creates the file `sentinel`: proof that something unpickled."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def other_format_files(tmp_path):
    """name: (file bytes, what the error must say)."""
    torch = pytest.importorskip("torch")
    sentinel = tmp_path / "unpickled"
    payload = {"w": torch.ones(2), "trap": LeavesATrace(sentinel)}
    zip_file, legacy = io.BytesIO(), io.BytesIO()
    torch.save(payload, zip_file)
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, np.ones(3))
    np.savez(npz, w=np.ones(3))
    return sentinel, {
        "torch.save": (zip_file.getvalue(), "this is a PyTorch zip checkpoint"),
        "torch.save legacy": (legacy.getvalue(), "this is a pickle"),
        "pickle.dumps": (pickle.dumps(payload["trap"], protocol=4), "this is a pickle"),
        "np.save": (npy.getvalue(), "this is a NumPy .npy file"),
        "np.savez": (npz.getvalue(), "this is a NumPy .npz archive"),
        "git lfs pointer": (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n",
                            "this is a Git LFS pointer"),
    }


def test_other_formats_are_named_and_never_unpickled(tmp_path):
    sentinel, files = other_format_files(tmp_path)
    path = tmp_path / "model.pt"
    for name, (data, match) in files.items():
        path.write_bytes(data)
        for reader in (load, load_file, lambda p: load(io.BytesIO(p.read_bytes()))):
            with pytest.raises(CheckpointError, match=re.escape(match)) as info:
                reader(path)
            assert "not a safetensors file" in str(info.value), name
    assert not sentinel.exists()
    path.write_bytes(files["torch.save"][0])
    with pytest.raises(CheckpointError, match="minifm never unpickles"):
        load(path)


# ----------------------------------------------------------------------------- as in PyTorch
def test_save_and_load_with_file_objects(tmp_path):
    obj = optimizer_like_checkpoint()
    buffer = io.BytesIO()
    save(obj, buffer)
    size = buffer.tell()
    buffer.seek(0)
    assert_same_structure(load(buffer, weights_only=True, map_location="cpu"), obj)
    assert buffer.tell() == size                        # read to the end, as torch.load does

    with open(tmp_path / "ckpt.safetensors", "wb") as f:
        f.write(b"prefix")
        save(obj, f)
    with open(tmp_path / "ckpt.safetensors", "rb") as f:
        f.seek(len("prefix"))                           # reads from the current position
        assert_same_structure(load(f), obj)
    assert_same_structure(load(io.BytesIO(buffer.getvalue())), obj)


def test_file_objects_in_text_mode_are_refused(tmp_path):
    with open(tmp_path / "x", "w") as f, pytest.raises(TypeError, match="binary mode"):
        save({"w": Tensor(np.ones(1))}, f)
    save({"w": Tensor(np.ones(1))}, tmp_path / "x")
    with open(tmp_path / "x") as f, pytest.raises(TypeError, match="binary mode"):
        load(f)


def test_damage_in_a_file_object_is_named_as_such():
    buffer = io.BytesIO()
    save({"w": Tensor(np.ones(2))}, buffer)
    data = bytearray(buffer.getvalue())
    data[-1] ^= 1
    with pytest.raises(CheckpointError, match=r"^<BytesIO>: damaged file: tensor 'w'"):
        load(io.BytesIO(bytes(data)))


def test_torch_style_arguments(tmp_path):
    from minifm import backend
    path = tmp_path / "w.safetensors"
    save({"w": Tensor(np.arange(3.0))}, path)
    for map_location in ("cpu", backend.device("cpu"), {"cuda:0": "cpu"}, {}, None):
        for weights_only in (True, False, None):
            w = load(path, map_location=map_location, weights_only=weights_only)["w"]
            assert str(w.device) == "cpu" and w.numpy().tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="map_location as a function"):
        load(path, map_location=lambda storage, location: storage)
    with pytest.raises(TypeError, match="map_location"):
        load(path, map_location=3)
    with pytest.raises(ValueError, match="'tpu'"):
        load(path, map_location="tpu")


# ----------------------------------------------------------------------------- killed writes
WRITER = textwrap.dedent("""
    import os
    import sys
    import numpy as np
    from minifm import serialization

    target, stop_mid_write = sys.argv[1], sys.argv[2] == "1"
    def fsync(fd):                       # the bytes are in the temporary file, not yet renamed
        print("mid-write", flush=True)
        sys.stdin.read()                 # wait here to be killed
    if stop_mid_write:
        os.fsync = fsync
    for value in range(1, 10**9):
        serialization.save_file({"a": np.full(500_000, value, np.float64),
                                 "b": np.full(1000, value, np.float32)}, target)
        if value == 1:
            print("written", flush=True)
""")


def start_writer(target, stop_mid_write):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(int(stop_mid_write))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assert_whole(target):
    arrays, _ = load_file(target)
    value = arrays["a"][0]
    assert (arrays["a"] == value).all() and (arrays["b"] == value).all()
    return value


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_write_killed_midway_leaves_the_last_file_and_its_temp_is_cleaned(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    save_file({"a": np.zeros(500_000), "b": np.zeros(1000, np.float32)}, target)
    writer = start_writer(target, stop_mid_write=True)
    assert writer.stdout.readline() == "mid-write\n"
    writer.kill()
    writer.wait()
    writer.stdin.close()
    writer.stdout.close()
    leftovers = [name for name in os.listdir(tmp_path) if name != target.name]
    assert len(leftovers) == 1 and leftovers[0].startswith(".ckpt.safetensors.")
    assert assert_whole(target) == 0                    # the last good file, untouched

    save_file({"a": np.ones(500_000), "b": np.ones(1000, np.float32)}, target)
    assert os.listdir(tmp_path) == [target.name]         # the dead writer's temp file is gone
    assert assert_whole(target) == 1


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_at_random_moments_always_leaves_a_whole_file(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    rng = random.Random(0)
    for _ in range(3):
        writer = start_writer(target, stop_mid_write=False)
        assert writer.stdout.readline() == "written\n"
        time.sleep(rng.uniform(0.0, 0.2))
        writer.kill()
        writer.wait()
        writer.stdout.close()
        writer.stdin.close()
        assert assert_whole(target) >= 1


@pytest.mark.skipif(os.name != "posix", reason="minifm tells dead writers only on POSIX")
def test_temp_files_of_dead_writers_go_and_the_rest_stay(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    dead = f".ckpt.safetensors.{2**31 - 1}.0123456789abcdef.tmp"   # above any pid_max
    alive = f".ckpt.safetensors.{os.getppid()}.0123456789abcdef.tmp"
    others = [".other.safetensors.12.0123456789abcdef.tmp", "ckpt.safetensors.bak"]
    for name in [dead, alive, *others]:
        (tmp_path / name).write_bytes(b"x")
    save_file({"a": np.ones(1)}, target)
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, alive, *others])
