"""Fuzzing the checkpoint reader with real checkpoints: a damaged file never loads.

Two real files are damaged thousands of ways: a small GPT's state_dict saved by
`minifm.save`, and a trainer checkpoint written by `save_checkpoint` (a model, its AdamW
moments, a scheduler, RNG and data states). The damage: single-byte changes anywhere,
truncations, appended bytes, the same header JSON in other bytes (spacing, escapes, padding),
and edits of the header that keep it well-formed JSON with a correct length field, so that
only the checksums can tell. Every damaged file must be
refused with a CheckpointError: no other exception type, and never a result.

The default run changes every header byte and the first and last byte of every tensor,
cuts the file at every header byte and tensor boundary, and tries a thousand random
damages per file (a few seconds); `pytest -m slow` changes and cuts at every byte and tries
five thousand more random damages per file (a few minutes).
"""
import io
import json
import random
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import minifm
from minifm import nn
from minifm.models.gpt import GPT, GPTConfig
from minifm.optim import AdamW
from minifm.optim.lr_scheduler import StepLR
from minifm.serialization import CheckpointError
from minifm.train.checkpoint import read_checkpoint, save_checkpoint


# ----------------------------------------------------------------------------- real files
def tiny_gpt():
    minifm.manual_seed(0)
    return GPT(GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8))


@pytest.fixture(scope="module")
def gpt_state_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt") / "gpt.safetensors"
    minifm.save(tiny_gpt().state_dict(), path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def trainer_checkpoint_bytes(tmp_path_factory):
    """A trainer checkpoint after one step; its model is small, so that a load is fast."""
    minifm.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 1))
    optimizer = AdamW(model.parameters(), lr=1e-3)
    scheduler = StepLR(optimizer, step_size=10)
    model(minifm.randn(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.safetensors"
    save_checkpoint(path, config={"task": {"name": "regression"}, "trainer": {"max_steps": 10}},
                    modules={"model": model}, optimizers={"model": optimizer},
                    schedulers={"model": scheduler},
                    trainer={"step": 1, "best": float("inf"), "skipped_steps": 0},
                    data={"generator": minifm.Generator(seed=1).get_state()})
    return path.read_bytes()


def load_state_dict(data: bytes):
    return minifm.load(io.BytesIO(data))


def load_trainer_checkpoint(data: bytes):
    return read_checkpoint(io.BytesIO(data))


FILES = {"gpt state_dict": ("gpt_state_bytes", load_state_dict),
         "trainer checkpoint": ("trainer_checkpoint_bytes", load_trainer_checkpoint)}


@pytest.fixture(params=list(FILES))
def real_file(request):
    """(the good file's bytes, the reader that must refuse every damaged copy)."""
    fixture, reader = FILES[request.param]
    return request.getfixturevalue(fixture), reader


def assert_refused(reader, data: bytes):
    with pytest.raises(CheckpointError):
        reader(data)


def test_the_good_files_load(gpt_state_bytes, trainer_checkpoint_bytes):
    state = load_state_dict(gpt_state_bytes)
    assert "lm_head.weight" in state and "transformer.h.0.attn.c_attn.weight" in state
    tiny_gpt().load_state_dict(state)
    ckpt = load_trainer_checkpoint(trainer_checkpoint_bytes)
    assert ckpt["trainer"]["step"] == 1 and ckpt["optimizers"]["model"]["state"]


# ----------------------------------------------------------------------------- every position
def telling_positions(data: bytes) -> list[int]:
    """The length field and every header byte, then the first and last byte of every
    tensor: each tensor's bytes are checked the same way, wherever they are."""
    n, header = header_of(data)
    tensor_ends = [8 + n + offset for name, entry in header.items() if name != "__metadata__"
                   for offset in entry["data_offsets"]]
    return sorted(set(range(8 + n)) | {p for p in tensor_ends if p < len(data)}
                  | {p - 1 for p in tensor_ends if p > 8 + n})


def assert_every_change_refused(data: bytes, reader, positions):
    rng = random.Random(0)
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= rng.randrange(1, 256)
        assert_refused(reader, bytes(damaged))


def assert_every_cut_refused(data: bytes, reader, sizes):
    for size in sizes:
        assert_refused(reader, data[:size])


def test_every_telling_byte_change_is_refused(real_file):
    good, reader = real_file
    assert_every_change_refused(good, reader, telling_positions(good))


def test_every_telling_cut_is_refused(real_file):
    good, reader = real_file
    assert_every_cut_refused(good, reader, telling_positions(good))


@pytest.mark.slow
def test_every_byte_change_is_refused(real_file):
    good, reader = real_file
    assert_every_change_refused(good, reader, range(len(good)))


@pytest.mark.slow
def test_every_cut_is_refused(real_file):
    good, reader = real_file
    assert_every_cut_refused(good, reader, range(len(good)))


# ----------------------------------------------------------------------------- random damage
def header_of(data: bytes) -> tuple[int, dict]:
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n])


MINIFM_LAYOUT = {"ensure_ascii": False, "separators": (",", ":")}


def with_header(data: bytes, header: dict, layout=MINIFM_LAYOUT, padding=b" ") -> bytes:
    """`data` with a new header and the right length field. In minifm's own layout (compact
    JSON, space padding), the header's content is the only thing changed."""
    n, _ = header_of(data)
    text = json.dumps(header, **layout).encode()
    text += padding * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def nodes(value, path=()):
    """Every (path, value) in a JSON tree, the root included."""
    yield path, value
    children = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from nodes(child, path + (key,))


def edited_header(header: dict, edit) -> dict | None:
    """A copy of `header` with one node (picked by index) replaced, deleted, renamed (a
    dict key) or with one character changed (a string: this also reaches into the JSON held
    in the metadata's strings, the structure and the checksums). None when the edit does
    not apply to that node or changes nothing. `__metadata__` itself is left alone: see
    test_without_any_metadata_a_state_dict_is_another_tools_file."""
    header = json.loads(json.dumps(header))
    paths = [path for path, _ in nodes(header) if path and path != ("__metadata__",)]
    kind, index, *args = edit
    path = paths[index % len(paths)]
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    key, old = path[-1], parent[path[-1]]
    if kind == "replace":
        if json.dumps(args[0]) == json.dumps(old):
            return None
        parent[key] = args[0]
    elif kind == "delete":
        del parent[key]
    elif kind == "rename":
        if not isinstance(parent, dict) or args[0] in parent:
            return None
        parent[args[0]] = parent.pop(key)
    else:  # "change a character"
        if not (isinstance(old, str) and old):
            return None
        i, char = args[0] % len(old), args[1]
        if old[i] == char:
            return None
        parent[key] = old[:i] + char + old[i + 1:]
    return header


def damaged(good: bytes, damage) -> bytes | None:
    """`good` with one damage applied (see `damages`); None when it changes nothing."""
    kind, arg = damage
    if kind == "bytes":
        data = bytearray(good)
        for position, value in arg:
            data[position % len(good)] = value
        return None if data == good else bytes(data)
    if kind == "cut":
        return good[:arg % len(good)]
    if kind == "append":
        return good + arg
    if kind == "reformat":  # the same JSON in other bytes
        data = with_header(good, header_of(good)[1], *arg)
        return None if data == good else data
    header = edited_header(header_of(good)[1], arg)
    return None if header is None else with_header(good, header)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
node = st.integers(0, 2**16)
# Damages are drawn as small descriptions, applied by `damaged` to whichever file is tested.
damages = st.one_of(
    st.tuples(st.just("bytes"), st.lists(st.tuples(st.integers(0, 2**24), st.integers(0, 255)),
                                          min_size=1, max_size=4)),
    st.tuples(st.just("cut"), st.integers(0, 2**24)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("reformat"), st.tuples(
        st.sampled_from([{"indent": 1}, {"separators": (", ", ": ")}, {"separators": (",", ": ")},
                         {"ensure_ascii": True, "separators": (",", ":")}, MINIFM_LAYOUT]),
        st.sampled_from([b" ", b"\t", b"\n", b"\r"]))),
    st.tuples(st.just("header"), st.one_of(
        st.tuples(st.just("replace"), node, json_values),
        st.tuples(st.just("delete"), node),
        st.tuples(st.just("rename"), node, st.text(max_size=12)),
        st.tuples(st.just("change a character"), node, st.integers(0, 2**16),
                  st.characters(codec="utf-8")))),
)


def fuzz(examples):
    return settings(max_examples=examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


@fuzz(1000)
@given(damage=damages)
def test_random_damage_is_refused(real_file, damage):
    good, reader = real_file
    data = damaged(good, damage)
    assume(data is not None)
    assert_refused(reader, data)


@pytest.mark.slow
@fuzz(5000)
@given(damage=damages)
def test_random_damage_is_refused_many_more(real_file, damage):
    good, reader = real_file
    data = damaged(good, damage)
    assume(data is not None)
    assert_refused(reader, data)


# ----------------------------------------------------------------------------- the one limit
def test_without_any_metadata_a_state_dict_is_another_tools_file(gpt_state_bytes,
                                                                 trainer_checkpoint_bytes):
    """Removing all of minifm's metadata at once (the fuzzer leaves `__metadata__` itself
    alone) leaves a plain safetensors file with no checksums: exactly what other tools
    write, so minifm.load reads its tensors -- the same ones, undamaged. A training
    checkpoint is still refused: without its metadata it is not a checkpoint."""
    _, header = header_of(gpt_state_bytes)
    del header["__metadata__"]
    state = load_state_dict(with_header(gpt_state_bytes, header))
    original = load_state_dict(gpt_state_bytes)
    assert sorted(state) == sorted(original)
    assert all(np.array_equal(state[k].numpy(), original[k].numpy()) for k in state)

    _, header = header_of(trainer_checkpoint_bytes)
    del header["__metadata__"]
    with pytest.raises(CheckpointError, match="not a minifm training checkpoint"):
        load_trainer_checkpoint(with_header(trainer_checkpoint_bytes, header))


def test_read_checkpoint_refuses_other_minifm_files(tmp_path, gpt_state_bytes):
    path = tmp_path / "gpt.safetensors"
    path.write_bytes(gpt_state_bytes)
    with pytest.raises(CheckpointError, match=f"{path}: not a minifm training checkpoint"):
        read_checkpoint(path)


def test_read_checkpoint_names_a_damaged_tensor(tmp_path, trainer_checkpoint_bytes):
    n, header = header_of(trainer_checkpoint_bytes)
    name = "optimizers.model.state.0.exp_avg"
    end = header[name]["data_offsets"][1]
    data = bytearray(trainer_checkpoint_bytes)
    data[8 + n + end - 1] ^= 0x80
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=f"{path}: damaged file: tensor '{name}'"):
        read_checkpoint(path)
