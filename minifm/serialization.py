"""Checkpoint files in the safetensors format: safe to load, checked byte for byte, atomic to write.

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

Three levels:

- `save_file(arrays, f, metadata)` / `load_file(f)`: a flat dict of NumPy arrays and a
  str -> str metadata dict, nothing more.
- `save(obj, f)` / `load(f, map_location)` (`minifm.save` / `minifm.load`): any nesting
  of dict, list and tuple holding minifm Tensors, NumPy arrays and JSON scalars -- a model's
  state_dict, an optimizer's, a whole training checkpoint with RNG states.
- `add_checksums(path)`: seal a file that has no checksums (see below).

`f` is a path or, as in PyTorch, a binary file object (io.BytesIO, open(path, "rb"/"wb")),
read from or written at its current position.

Checksums: a damaged file never loads. Every file minifm writes carries two extra metadata
entries, which other tools ignore:

    "minifm.checksums"        JSON text: {"algorithm": "sha256",
                                          "tensors": {name: hex digest of its bytes, ...}}
    "minifm.header_checksum"  the sha256 hex digest of the header exactly as written, but
                              without this one entry (it cannot cover itself); it is the
                              last entry of "__metadata__"

On loading, the header must be byte for byte what minifm writes for its own content
(compact JSON, space padding), so that the header checksum vouches for every header byte,
padding included; the tensor checksums vouch for every byte of the buffer, and the length
checks for the rest. Any changed, missing or extra byte is refused with a CheckpointError
that names the file and, when the damage is in a tensor, the tensor. The checksums are the
file's business: `load_file` returns the metadata without them.

The cost: sha256 runs at about 1.2 GB/s on a CPU with SHA extensions (any recent x86 or
ARM), 40 ms per 50 MB. Loading a 50 MB file that is in the page cache takes 50 ms instead
of 8; saving one, with its fsync, 115 ms instead of 60; a cold read from disk costs more
than the hashing. (zlib.crc32 would take 14 ms, but sha256 is the checksum everyone knows.)
Checksums guard against damage -- bad disks, cut copies, edits -- not against someone who
rewrites them on purpose: for that, sign the file.

Files without checksums: a safetensors file written by another tool loads, unverified --
it is the format models are shared in, and only the format's own checks can be run on it.
A file that `save` wrote before minifm had checksums (it has "minifm.structure" and no
checksums) is refused, with the advice to call `add_checksums(path)` once if you trust it:
a checkpoint is read back to resume a run, and there a silent bit flip costs the most.

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

Writes to a path are atomic: the bytes go to a temporary file ".NAME.PID.RANDOM.tmp" in the
target's folder, which is flushed, synced to disk and renamed onto the target, so a crash
or a kill at any moment leaves the previous file whole. The next write to the same target
removes temporary files whose writing process is gone. Loading checks the whole file before
returning anything: nothing is half-loaded. Nothing here uses pickle, and a pickle, a
PyTorch .pt/.pth zip or another known format is named as such in the error.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import secrets
import sys
import zipfile

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["CheckpointError", "save_file", "load_file", "save", "load", "add_checksums"]

# The format's dtype names, in the order the tensors are laid out in a file: largest items
# first, so that after the 8-byte-aligned header every tensor starts at a multiple of its
# item size. Ties go by name. This is the reference implementation's order, which makes
# our tensor section byte-identical to its own.
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
CHECKSUMS_KEY = "minifm.checksums"
HEADER_CHECKSUM_KEY = "minifm.header_checksum"
CHECKSUM_ALGORITHM = "sha256"
_CHECKSUM_KEYS = (CHECKSUMS_KEY, HEADER_CHECKSUM_KEY)


class CheckpointError(ValueError):
    """A file that is not a valid checkpoint: damaged, truncated, crafted or another format."""


# ============================================================================ array level
def save_file(arrays: dict, f, metadata: dict | None = None) -> None:
    """Write a dict of NumPy arrays (and str -> str metadata) as a safetensors file with
    minifm's checksums, to a path (atomically) or a binary file object."""
    entries = _entries(arrays)  # (name, format dtype name, little-endian C-order array)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError(f"save_file: metadata must be a dict of str -> str, got {metadata!r:.200}")
    for key in _CHECKSUM_KEYS:
        if metadata and key in metadata:
            raise ValueError(f"save_file: the metadata key {key!r} is reserved: "
                             "minifm writes the file's checksums there")
    header_bytes = _encode_header(_signed_header(entries, metadata or {}))

    def write(file):
        file.write(len(header_bytes).to_bytes(8, "little"))
        file.write(header_bytes)
        for _, _, array in entries:
            file.write(_raw_bytes(array))

    _write_to(f, write)


def _entries(arrays: dict) -> list:
    """Check the arrays and list them in layout order as (name, dtype name, array), each
    array little-endian and C-contiguous."""
    if not isinstance(arrays, dict):
        raise TypeError(f"save_file: expected a dict of name -> numpy array, "
                        f"got {type(arrays).__name__}")
    entries = []
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
    entries.sort(key=lambda entry: (_LAYOUT_RANK[entry[1]], entry[0]))
    return entries


def _signed_header(entries: list, metadata: dict) -> dict:
    """The header for `entries`: the tensors' entries, and the metadata followed by the
    tensor checksums and, last, the checksum of everything before it."""
    tensors, offset = {}, 0
    for name, dtype_name, array in entries:
        tensors[name] = {"dtype": dtype_name, "shape": list(array.shape),
                         "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    checksums = {"algorithm": CHECKSUM_ALGORITHM,
                 "tensors": {name: _checksum(_raw_bytes(array)) for name, _, array in entries}}
    metadata = {**metadata, CHECKSUMS_KEY: json.dumps(checksums, separators=(",", ":"))}
    header = {"__metadata__": metadata, **tensors}
    metadata[HEADER_CHECKSUM_KEY] = _checksum(_encode_header(header))
    return header


def _encode_header(header: dict) -> bytes:
    """The header's bytes as minifm writes them: compact UTF-8 JSON, in the dict's order,
    padded with spaces to a multiple of 8 bytes (so the buffer starts aligned)."""
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def _checksum(data) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw_bytes(array: np.ndarray) -> np.ndarray:
    """A contiguous array's memory as a flat uint8 view (no copy), ready for file.write."""
    return array.reshape(-1).view(np.uint8)


def _write_to(f, write) -> None:
    """Run write(file) on a binary file object, or atomically onto a path."""
    if hasattr(f, "write"):
        _require_binary(f, "save")
        write(f)
    else:
        _write_atomically(f, write)


def _require_binary(file, what) -> None:
    if isinstance(file, io.TextIOBase):
        raise TypeError(f"{what}: the file object is in text mode; open it in binary mode "
                        "('rb' to load, 'wb' to save)")


def _write_atomically(path, write) -> None:
    """Run write(file) on a temporary file beside `path`, then move it onto `path`.

    os.replace is atomic on POSIX and Windows: a reader sees the old file or the new one,
    never half of one. The fsyncs make the new bytes, then the new name, survive a power cut.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    _remove_stale_temp_files(folder, name)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
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


def _remove_stale_temp_files(folder, name) -> None:
    """Delete the temporary files of earlier writes to `name` whose process is gone (a
    killed run leaves its temporary file behind). Those of live processes are in use."""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[0-9a-f]{16}\.tmp")
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match and not _process_exists(int(match[1])):
            with contextlib.suppress(FileNotFoundError):  # another writer got there first
                os.remove(os.path.join(folder, entry))


def _process_exists(pid: int) -> bool:
    """Whether a process with this id runs on this machine; True when it cannot be told
    (on Windows, where os.kill(pid, 0) would end the process)."""
    if os.name != "posix" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it exists, and belongs to another user
    return True


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


def load_file(f) -> tuple[dict, dict]:
    """Read a safetensors file: (dict of name -> numpy array, metadata dict of str -> str).

    `f` is a path or a binary file object. The arrays own their memory (they are not views
    of a file buffer). Any fault in the file -- and, when it has minifm's checksums, any
    changed byte -- raises CheckpointError before the arrays are returned. The metadata is
    returned without the checksum entries.
    """
    arrays, metadata, _ = _read(f)
    return arrays, metadata


def add_checksums(path) -> None:
    """Rewrite a safetensors file (atomically) with minifm's checksums: for a file written
    by another tool, or by a minifm that had no checksums yet, which `load` refuses.

    Use it only on a file you trust: damage it already holds gets sealed in. The format's
    own checks run first, and a file that has checksums is checked against them.
    """
    arrays, metadata = load_file(path)
    save_file(arrays, path, metadata)


def _read(f) -> tuple[dict, dict, bool]:
    """Read and check a file: (arrays, metadata without checksums, whether it had checksums)."""
    with _open_for_reading(f) as (file, name, size):
        def invalid(what):
            raise CheckpointError(f"{name}: not a valid safetensors file: {what}")

        def damaged(what):
            raise CheckpointError(f"{name}: damaged file: {what}")

        _refuse_other_formats(file, name)
        header_bytes = _read_header_bytes(file, size, invalid)
        header = _parse_json_header(header_bytes, invalid)
        tensors = _check_layout(header, size - 8 - len(header_bytes), invalid)
        checksums = _verified_checksums(header, header_bytes, damaged)
        arrays = _read_tensors(file, tensors, checksums, invalid, damaged)
    metadata = {key: value for key, value in header.get("__metadata__", {}).items()
                if key not in _CHECKSUM_KEYS}
    return arrays, metadata, checksums is not None


@contextlib.contextmanager
def _open_for_reading(f):
    """Yield (a binary file at the checkpoint's first byte, a name for messages, the number
    of bytes from there to the end). A path is opened and closed here; a file object is
    read from its current position, and left at the checkpoint's end."""
    if not hasattr(f, "read"):
        path = os.fspath(f)
        with open(path, "rb") as file:
            yield file, path, os.fstat(file.fileno()).st_size
        return
    _require_binary(f, "load")
    name = source_name(f)
    if not (hasattr(f, "readinto") and hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(f.read())  # a stream: read it whole
    start = f.tell()
    size = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    yield f, name, size


def _read_header_bytes(file, size: int, invalid) -> bytes:
    """Read the length field and the header it announces, checking the length first."""
    if size < 8:
        invalid(f"it is {size} bytes long, shorter than the 8-byte header length")
    header_len = int.from_bytes(file.read(8), "little")
    if header_len > MAX_HEADER_BYTES:
        invalid(f"header length {header_len} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + header_len > size:
        invalid(f"header length {header_len} runs past the end of the {size}-byte file")
    header_bytes = file.read(header_len)
    if len(header_bytes) != header_len:
        invalid("the file shrank while it was being read")
    return header_bytes


def _parse_json_header(header_bytes: bytes, invalid) -> dict:
    try:
        header = _strict_json(header_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        invalid(f"header is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except (ValueError, RecursionError) as exc:
        invalid(f"header is not valid JSON ({exc})")
    if not isinstance(header, dict):
        invalid(f"header is a JSON {_JSON_TYPES.get(type(header), 'value')}, not an object")
    return header


def _check_layout(header: dict, buffer_len: int, invalid) -> dict:
    """Check every claim of the header against the format and the buffer's length.

    Returns {name: (dtype, shape, begin, end)} in buffer order; calls invalid(what) on any
    fault.
    """
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        invalid(f"__metadata__ must be an object of string values, got {metadata!r:.200}")

    tensors = {}
    for name, entry in header.items():
        if name != "__metadata__":
            tensors[name] = _check_entry(name, entry, buffer_len, invalid)

    tensors = dict(sorted(tensors.items(), key=lambda item: item[1][2:]))
    covered = 0  # walking the regions in order: each must start where the last one ended
    for name, (_, _, begin, end) in tensors.items():
        if begin != covered:
            invalid(f"tensor {name!r:.200} starts at byte {begin} of the buffer, but the previous "
                    f"tensors end at byte {covered} ({'overlap' if begin < covered else 'hole'})")
        covered = end
    if covered != buffer_len:
        invalid(f"the tensors cover {covered} bytes, but the buffer holds {buffer_len}")
    return tensors


def _check_entry(name: str, entry, buffer_len: int, invalid) -> tuple:
    """One tensor's entry -> (dtype, shape, begin, end), or invalid(what)."""
    if not isinstance(entry, dict) or entry.keys() != _ENTRY_KEYS:
        invalid(f"entry {name!r:.200} must be an object with exactly the keys "
                f"'dtype', 'shape', 'data_offsets', got {entry!r:.200}")
    dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
        invalid(f"tensor {name!r:.200} has unknown dtype {dtype_name!r:.200} "
                f"(known: {', '.join(DTYPES)})")
    dtype = DTYPES[dtype_name]
    if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
            or not all(_is_int(d) and d >= 0 for d in shape)):
        invalid(f"tensor {name!r:.200} has shape {shape!r:.200}; expected a list of at most "
                f"{_MAX_NDIM} non-negative integers")
    if math.prod(d for d in shape if d) * dtype.itemsize > sys.maxsize:
        invalid(f"tensor {name!r:.200} has shape {shape!r:.200}, too large for an array")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
        invalid(f"tensor {name!r:.200} has data_offsets {offsets!r:.200}; expected [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer_len:
        invalid(f"tensor {name!r:.200} has data_offsets [{begin}, {end}], "
                f"outside the {buffer_len}-byte buffer or reversed")
    expected = math.prod(shape) * dtype.itemsize
    if end - begin != expected:
        invalid(f"tensor {name!r:.200} of shape {shape} and dtype {dtype_name} needs "
                f"{expected} bytes, but data_offsets [{begin}, {end}] hold {end - begin}")
    return dtype, tuple(shape), begin, end


def _verified_checksums(header: dict, header_bytes: bytes, damaged) -> dict | None:
    """Check the header against its checksum; return the tensor checksums ({name: hex}),
    or None for a file without checksums. Calls damaged(what) on any mismatch."""
    metadata = header.get("__metadata__", {})
    present = [key for key in _CHECKSUM_KEYS if key in metadata]
    if not present:
        return None
    if len(present) == 1:
        damaged(f"the header has one of minifm's checksum entries but not the other "
                f"(it has {present[0]!r})")
    if _canonical_bytes(header) != header_bytes:
        damaged("the header is not byte for byte as minifm writes it (it was edited, or "
                "rewritten by another tool), so its checksum cannot vouch for it")
    checksums = _parse_checksums(metadata[CHECKSUMS_KEY], header, damaged)
    unsigned = {**header, "__metadata__": {k: v for k, v in metadata.items()
                                           if k != HEADER_CHECKSUM_KEY}}
    if _checksum(_encode_header(unsigned)) != metadata[HEADER_CHECKSUM_KEY]:
        damaged(f"the header does not match its {CHECKSUM_ALGORITHM} checksum: "
                "it was changed after it was written")
    return checksums


def _canonical_bytes(header: dict) -> bytes | None:
    """The bytes minifm would write for this header; None if it could not write it (a
    string holding a lone surrogate, which JSON escapes allow but UTF-8 does not)."""
    try:
        return _encode_header(header)
    except UnicodeEncodeError:
        return None


def _parse_checksums(text: str, header: dict, damaged) -> dict:
    """The "minifm.checksums" entry -> {tensor name: hex digest}, one per tensor."""
    try:
        entry = _strict_json(text)
    except (ValueError, RecursionError):
        entry = None
    if not (isinstance(entry, dict) and entry.keys() == {"algorithm", "tensors"}
            and isinstance(entry["tensors"], dict)
            and all(isinstance(v, str) for v in entry["tensors"].values())):
        damaged(f"malformed {CHECKSUMS_KEY} entry {text!r:.200}")
    if entry["algorithm"] != CHECKSUM_ALGORITHM:
        damaged(f"unknown checksum algorithm {entry['algorithm']!r:.100} "
                f"(this minifm knows {CHECKSUM_ALGORITHM!r})")
    checksums, names = entry["tensors"], header.keys() - {"__metadata__"}
    for name in names - checksums.keys():
        damaged(f"no checksum for tensor {name!r:.200}")
    for name in checksums.keys() - names:
        damaged(f"a checksum for tensor {name!r:.200}, which the file does not hold")
    return checksums


def _read_tensors(file, tensors: dict, checksums: dict | None, invalid, damaged) -> dict:
    """Read the buffer in one pass, tensor after tensor, checking each against its checksum."""
    arrays = {}
    for name, (dtype, shape, begin, end) in tensors.items():
        array = np.empty(shape, dtype=dtype)
        if _read_into(file, _raw_bytes(array)) != end - begin:
            invalid("the file shrank while it was being read")
        if checksums is not None and _checksum(_raw_bytes(array)) != checksums[name]:
            damaged(f"tensor {name!r:.200} does not match its {CHECKSUM_ALGORITHM} checksum: "
                    "its bytes changed after it was written")
        arrays[name] = array
    return arrays


def _read_into(file, buffer: np.ndarray) -> int:
    """Fill `buffer` from the file; the number of bytes read (fewer only at the end)."""
    view, filled = memoryview(buffer), 0
    while filled < len(view):
        n = file.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


# What other files look like: (first bytes, what the file is). Checked only when the file
# does not start as a safetensors file does, with a header that opens with '{'.
_PICKLE_ADVICE = ("minifm never unpickles, since loading a pickle runs whatever code its "
                  "author put in it. Convert it once with PyTorch, on a machine where you "
                  "trust the file: for a model's state_dict, safetensors.torch.save_file("
                  "torch.load(path, weights_only=True), 'model.safetensors')")
_OTHER_FORMATS = [
    (b"\x93NUMPY", "a NumPy .npy file: read it with numpy.load and save it with minifm.save"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras, h5py)"),
    (b"GGUF", "a GGUF file (llama.cpp)"),
    (b"version https://git-lfs", "a Git LFS pointer, not the file it points to: "
                                 "fetch the file with `git lfs pull`"),
]


def _refuse_other_formats(file, name) -> None:
    """Name a file of another known format (pickle, PyTorch zip, NumPy, ...) in the error."""
    start = file.tell()
    head = file.read(32)
    file.seek(start)
    if head[8:9] == b"{":
        return  # a safetensors header starts here
    what = None
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        what = f"a pickle (Python's pickle, or torch.save's legacy format). {_PICKLE_ADVICE}"
    elif head.startswith(b"PK\x03\x04"):
        what = _describe_zip(file, start)
    else:
        what = next((what for magic, what in _OTHER_FORMATS if head.startswith(magic)), None)
    if what:
        raise CheckpointError(f"{name}: not a safetensors file: this is {what}")


def _describe_zip(file, start) -> str:
    """What a zip archive holds, from its list of names (nothing in it is read)."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        names = []
    file.seek(start)
    if any(n.endswith("data.pkl") for n in names):
        return f"a PyTorch zip checkpoint (what torch.save writes: a pickle in a zip). {_PICKLE_ADVICE}"
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive: read it with numpy.load and save it with minifm.save"
    return "a zip archive"


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
def save(obj, f) -> None:
    """Save a nested structure of dicts, lists, tuples, Tensors, arrays and JSON scalars
    to a path (atomically) or a binary file object, as torch.save does.

    The layout is described in this module's docstring; `load` reads it back.
    """

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
    save_file(arrays, f, metadata={STRUCTURE_KEY: structure})


def _where(path_parts) -> str:
    return "obj" + "".join(f"[{part!r}]" for part in path_parts)


def _host_array(tensor) -> np.ndarray:
    """A Tensor's values as a NumPy array in host memory."""
    return tensor.detach().cpu().numpy()


def load(f, map_location=None, *, weights_only=None):
    """Load what `save` wrote (or another tool's safetensors file, as a flat dict of Tensors)
    from a path or a binary file object, as torch.load does.

    Tensors load on the CPU, or are moved to `map_location`: "cpu", "cuda", "cuda:1", a
    minifm.device, or PyTorch's dict of locations (the files record no device, so every
    tensor comes from "cpu": {"cpu": "cuda:0"} moves them, {"cuda:0": "cpu"} leaves them).
    NumPy arrays saved as such load as NumPy arrays. `weights_only` is accepted for
    PyTorch's sake and changes nothing: a minifm file is data only, so every load is as
    safe as torch.load(..., weights_only=True). A damaged file, or a file from an older
    minifm without checksums, is refused with a CheckpointError (see the module docstring).
    """

    device = _map_location_device(map_location)
    arrays, metadata, verified = _read(f)
    source = source_name(f)

    def as_tensor(array):
        tensor = Tensor(array)
        return tensor if device is None else tensor.to(device)

    if STRUCTURE_KEY not in metadata:
        return {name: as_tensor(array) for name, array in arrays.items()}
    if not verified:
        raise CheckpointError(
            f"{source}: written by a minifm without checksums, so damage to it cannot be "
            f"detected; if you trust this file, add checksums to it once with "
            f"minifm.serialization.add_checksums({source!r}), then load it")

    def fail(what):
        raise CheckpointError(f"{source}: invalid {STRUCTURE_KEY} metadata: {what}")

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


def _map_location_device(map_location):
    """The device `load` moves tensors to (None: leave them on the CPU), from the forms of
    torch.load's map_location that make sense without PyTorch's storages."""
    if isinstance(map_location, dict):
        map_location = map_location.get("cpu")  # the files record no device: all come from "cpu"
    if map_location is None:
        return None
    if isinstance(map_location, (str, backend.device)):
        return backend.as_device(map_location)
    if callable(map_location):
        raise TypeError("load: map_location as a function is not supported: it maps PyTorch "
                        "storages, which minifm does not have; pass a device such as 'cpu'")
    raise TypeError(f"load: map_location must be None, a device, a string such as 'cuda:0' or "
                    f"a dict of location strings, got {type(map_location).__name__}")


def source_name(f) -> str:
    """How messages name a file: its path, or the file object's name or type."""
    if not hasattr(f, "read"):
        return os.fspath(f)
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"
