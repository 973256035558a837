"""Checkpoint files in the safetensors format: safe to load, atomic to write.

Why safetensors: a pickle checkpoint runs code when it is loaded, so opening a file from a
stranger means trusting them. A safetensors file is only data, and every other tool
(PyTorch, JAX, the `safetensors` library) reads it:

    8 bytes      N, the header length, an unsigned little-endian 64-bit integer
    N bytes      a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
                   {"__metadata__": {"key": "value", ...},                (optional, str -> str)
                    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
                    ...}
    the rest     the byte buffer: each tensor's bytes, little-endian and in C order, at
                 [begin, end) counted from the buffer's start; the tensors cover the buffer
                 exactly, with no overlap, no hole and nothing after the last one.

Two levels:

- `save_file(arrays, path, metadata)` / `load_file(path)`: a flat dict of NumPy arrays
  and a str -> str metadata dict, nothing more.
- `save(obj, path)` / `load(path, map_location)` (`minifm.save` / `minifm.load`): any nesting
  of dict, list and tuple holding minifm Tensors, NumPy arrays and JSON scalars -- a model's
  state_dict, an optimizer's, a whole training checkpoint with RNG states.

How `save` lays out an object. Each Tensor and array goes to the tensor section under the
path that leads to it, dot-joined ("model.fc.weight", "optim.state.0.exp_avg"; a name
already taken gets a "#1", "#2", ... suffix, and a lone tensor is called "tensor"). So a
state_dict (a flat str -> Tensor dict) is stored under its own keys: the file is a plain
safetensors state dict that any tool loads. Everything else goes, as JSON, into the
metadata key "minifm.structure", in which each node is one of

    null, true/false, a string, an integer      itself (integers of any size: RNG states)
    a finite float                               itself, as a JSON number with a '.' or 'e'
    {"float": "inf" | "-inf" | "nan"}            a float JSON cannot write
    [node, ...]                                  a list
    {"tuple": [node, ...]}                       a tuple
    {"dict": [[key, node], ...]}                 a dict, in order; keys are strings or
                                                 integers (an optimizer's state is keyed by
                                                 parameter index)
    {"tensor": name}  /  {"ndarray": name}       a minifm Tensor / a NumPy array, stored in
                                                 the tensor section under `name`

`load` rebuilds that structure; a safetensors file without "minifm.structure" (written by
another tool) loads as a flat dict of Tensors. What is not stored: requires_grad, the
device (tensors load on the CPU unless map_location says otherwise) and sharing (a tensor
that appears twice is stored twice and loads as two tensors).

Writes are atomic: the bytes go to a temporary file in the target's folder, which is
flushed, synced to disk and renamed onto the target, so a crash mid-write leaves the
previous checkpoint whole. Loading checks the whole header against the file before building
any array and refuses a damaged or hostile file with a CheckpointError (a ValueError) that
names the file and the fault. Nothing here uses pickle.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import sys

import numpy as np

__all__ = ["CheckpointError", "save_file", "load_file", "save", "load"]

# The format's dtype names, in the order the tensors are laid out in a file: largest items
# first, so that after the 8-byte-aligned header every tensor starts at a multiple of its
# item size. Ties go by name. This is the reference implementation's order, which makes
# our files byte-identical to its own.
DTYPES = {
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "I32": np.dtype("<i4"),
    "F16": np.dtype("<f2"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_LAYOUT_RANK = {name: rank for rank, name in enumerate(DTYPES)}

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit
_MAX_NDIM = 64  # NumPy's limit on the number of dimensions
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}
STRUCTURE_KEY = "minifm.structure"


class CheckpointError(ValueError):
    """A file that is not a valid checkpoint: damaged, truncated or crafted."""


# ============================================================================ array level
def save_file(arrays: dict, path, metadata: dict | None = None) -> None:
    """Write a dict of NumPy arrays (and str -> str metadata) as a safetensors file."""
    if not isinstance(arrays, dict):
        raise TypeError(f"save_file: expected a dict of name -> numpy array, "
                        f"got {type(arrays).__name__}")
    entries = []  # (name, format dtype name, little-endian C-order array)
    for name, array in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"save_file: tensor names must be strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("save_file: '__metadata__' is reserved by the format "
                             "and cannot name a tensor")
        if not isinstance(array, np.ndarray):
            raise TypeError(f"save_file: tensor {name!r} is a {type(array).__name__}, "
                            "not a numpy array")
        le_dtype = array.dtype.newbyteorder("<")
        if le_dtype not in _DTYPE_NAMES:
            raise ValueError(
                f"save_file: tensor {name!r} has dtype {array.dtype}, which is not supported; "
                f"supported dtypes: {', '.join(str(d) for d in DTYPES.values())}")
        entries.append((name, _DTYPE_NAMES[le_dtype], np.asarray(array, dtype=le_dtype, order="C")))
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError(f"save_file: metadata must be a dict of str -> str, got {metadata!r:.200}")
    entries.sort(key=lambda entry: (_LAYOUT_RANK[entry[1]], entry[0]))

    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, dtype_name, array in entries:
        header[name] = {"dtype": dtype_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)

    def write(file):
        file.write(len(header_bytes).to_bytes(8, "little"))
        file.write(header_bytes)
        for _, _, array in entries:
            file.write(_raw_bytes(array))

    _write_atomically(path, write)


def _raw_bytes(array: np.ndarray) -> np.ndarray:
    """A contiguous array's memory as a flat uint8 view (no copy), ready for file.write."""
    return array.reshape(-1).view(np.uint8)


def _write_atomically(path, write) -> None:
    """Run write(file) on a temporary file beside `path`, then move it onto `path`.

    os.replace is atomic on POSIX and Windows: a reader sees the old file or the new one,
    never half of one. The fsyncs make the new bytes, then the new name, survive a power cut.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never clobber anything; mode 0o666 lets the umask decide, as for open(path, "wb").
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder) -> None:
    """Make a rename durable. POSIX only: Windows cannot open a folder as a file."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # the file is already in place; some filesystems cannot sync a folder
    finally:
        os.close(fd)


def load_file(path) -> tuple[dict, dict]:
    """Read a safetensors file: (dict of name -> numpy array, metadata dict of str -> str).

    The arrays own their memory (they are not views of a file buffer). Any fault in the
    file raises CheckpointError before a single array is built.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size

        def fail(what):
            raise CheckpointError(f"{path}: not a valid safetensors file: {what}")

        if file_size < 8:
            fail(f"it is {file_size} bytes long, shorter than the 8-byte header length")
        header_len = int.from_bytes(file.read(8), "little")
        if header_len > MAX_HEADER_BYTES:
            fail(f"header length {header_len} exceeds the limit of {MAX_HEADER_BYTES} bytes")
        if 8 + header_len > file_size:
            fail(f"header length {header_len} runs past the end of the {file_size}-byte file")
        header_bytes = file.read(header_len)
        if len(header_bytes) != header_len:
            fail("the file shrank while it was being read")
        buffer_len = file_size - 8 - header_len
        tensors, metadata = _parse_header(header_bytes, buffer_len, fail)

        arrays = {}
        for name, (dtype, shape, begin, end) in tensors.items():
            array = np.empty(shape, dtype=dtype)
            if end > begin:
                file.seek(8 + header_len + begin)
                if file.readinto(_raw_bytes(array)) != end - begin:
                    fail("the file shrank while it was being read")
            arrays[name] = array
    return arrays, metadata


def _parse_header(header_bytes: bytes, buffer_len: int, fail):
    """Check every claim of the header against the format and the buffer's length.

    Returns ({name: (dtype, shape, begin, end)}, metadata); calls fail(what) on any fault.
    """
    try:
        header = _strict_json(header_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        fail(f"header is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except (ValueError, RecursionError) as exc:
        fail(f"header is not valid JSON ({exc})")
    if not isinstance(header, dict):
        fail(f"header is a JSON {_JSON_TYPES.get(type(header), 'value')}, not an object")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail(f"__metadata__ must be an object of string values, got {metadata!r:.200}")

    tensors = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.keys() != _ENTRY_KEYS:
            fail(f"entry {name!r:.200} must be an object with exactly the keys "
                 f"'dtype', 'shape', 'data_offsets', got {entry!r:.200}")
        dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
            fail(f"tensor {name!r:.200} has unknown dtype {dtype_name!r:.200} "
                 f"(known: {', '.join(DTYPES)})")
        dtype = DTYPES[dtype_name]
        if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
                or not all(_is_int(d) and d >= 0 for d in shape)):
            fail(f"tensor {name!r:.200} has shape {shape!r:.200}; expected a list of at most "
                 f"{_MAX_NDIM} non-negative integers")
        if math.prod(d for d in shape if d) * dtype.itemsize > sys.maxsize:
            fail(f"tensor {name!r:.200} has shape {shape!r:.200}, too large for an array")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
            fail(f"tensor {name!r:.200} has data_offsets {offsets!r:.200}; expected [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= buffer_len:
            fail(f"tensor {name!r:.200} has data_offsets [{begin}, {end}], "
                 f"outside the {buffer_len}-byte buffer or reversed")
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            fail(f"tensor {name!r:.200} of shape {shape} and dtype {dtype_name} needs "
                 f"{expected} bytes, but data_offsets [{begin}, {end}] hold {end - begin}")
        tensors[name] = (dtype, tuple(shape), begin, end)

    covered = 0  # walking the regions in order: each must start where the last one ended
    for name, (_, _, begin, end) in sorted(tensors.items(), key=lambda item: item[1][2:]):
        if begin != covered:
            fail(f"tensor {name!r:.200} starts at byte {begin} of the buffer, but the previous "
                 f"tensors end at byte {covered} ({'overlap' if begin < covered else 'hole'})")
        covered = end
    if covered != buffer_len:
        fail(f"the tensors cover {covered} bytes, but the buffer holds {buffer_len}")
    return tensors, metadata


def _strict_json(text: str):
    """json.loads, refusing what Python accepts but JSON does not (NaN, Infinity) and
    duplicate keys (which other readers would resolve differently)."""
    def no_constant(word):
        raise ValueError(f"{word} is not JSON")

    def unique_keys(pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("duplicate keys in an object")
        return obj

    return json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_keys)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# =========================================================================== object level
def save(obj, path) -> None:
    """Save a nested structure of dicts, lists, tuples, Tensors, arrays and JSON scalars.

    The layout is described in this module's docstring; `load` reads it back.
    """
    from minifm.tensor import Tensor

    arrays = {}

    def store(array, path_parts):
        name = ".".join(map(str, path_parts)) or "tensor"
        unique, n = name, 0
        while unique in arrays or unique == "__metadata__":
            n += 1
            unique = f"{name}#{n}"
        arrays[unique] = array
        return unique

    def encode(node, path_parts):
        if isinstance(node, Tensor):
            return {"tensor": store(_host_array(node), path_parts)}
        if isinstance(node, np.ndarray):
            return {"ndarray": store(node, path_parts)}
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, float):
            return float(node) if math.isfinite(node) else {"float": repr(float(node))}
        if isinstance(node, list):
            return [encode(v, path_parts + [i]) for i, v in enumerate(node)]
        if isinstance(node, tuple):
            return {"tuple": [encode(v, path_parts + [i]) for i, v in enumerate(node)]}
        if isinstance(node, dict):
            for key in node:
                if not (isinstance(key, str) or _is_int(key)):
                    raise TypeError(
                        f"save: dict keys must be str or int, got {key!r} at {_where(path_parts)}")
            return {"dict": [[key, encode(v, path_parts + [key])] for key, v in node.items()]}
        raise TypeError(f"save: cannot store a {type(node).__name__} (at {_where(path_parts)}); "
                        "expected Tensor, numpy array, dict, list, tuple, str, int, float, bool or None")

    structure = json.dumps(encode(obj, []), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    save_file(arrays, path, metadata={STRUCTURE_KEY: structure})


def _where(path_parts) -> str:
    return "obj" + "".join(f"[{part!r}]" for part in path_parts)


def _host_array(tensor) -> np.ndarray:
    """A Tensor's values as a NumPy array in host memory."""
    return tensor.detach().cpu().numpy()


def load(path, map_location=None):
    """Load what `save` wrote (or any safetensors file, as a flat dict of Tensors).

    Tensors load on the CPU, or are moved to `map_location` ("cpu", "cuda", "cuda:1", or a
    minifm.device) when it is given; NumPy arrays saved as such load as NumPy arrays.
    """
    from minifm.tensor import Tensor

    arrays, metadata = load_file(path)

    def as_tensor(array):
        tensor = Tensor(array)
        return tensor if map_location is None else tensor.to(map_location)

    if STRUCTURE_KEY not in metadata:
        return {name: as_tensor(array) for name, array in arrays.items()}

    def fail(what):
        raise CheckpointError(f"{os.fspath(path)}: invalid {STRUCTURE_KEY} metadata: {what}")

    unused = set(arrays)

    def take(name):
        if not isinstance(name, str) or name not in arrays:
            fail(f"it refers to tensor {name!r:.200}, which the file does not hold")
        if name not in unused:
            fail(f"it refers to tensor {name!r:.200} twice")
        unused.remove(name)
        return arrays[name]

    def decode(node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [decode(v) for v in node]
        if not (isinstance(node, dict) and len(node) == 1):
            fail(f"unexpected node {node!r:.200}")
        (tag, value), = node.items()
        if tag == "tensor":
            return as_tensor(take(value))
        if tag == "ndarray":
            return take(value)
        if tag == "float" and value in ("inf", "-inf", "nan"):
            return float(value)
        if tag == "tuple" and isinstance(value, list):
            return tuple(decode(v) for v in value)
        if tag == "dict" and isinstance(value, list):
            result = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2
                        and (isinstance(pair[0], str) or _is_int(pair[0])) and pair[0] not in result):
                    fail(f"bad dict item {pair!r:.200}")
                result[pair[0]] = decode(pair[1])
            return result
        fail(f"unexpected node {node!r:.200}")

    try:
        encoded = _strict_json(metadata[STRUCTURE_KEY])
    except (ValueError, RecursionError) as exc:
        fail(f"not valid JSON ({exc})")
    try:
        obj = decode(encoded)
    except RecursionError:
        fail("nested too deeply")
    if unused:
        fail(f"the file holds tensors it does not refer to: {sorted(unused)!r:.200}")
    return obj
