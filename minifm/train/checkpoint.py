"""Training checkpoints: everything needed to resume a run exactly, in one safetensors file.

A checkpoint is a nested dict saved with `minifm.save` (tensors in the safetensors buffer,
the rest as JSON in its metadata; never pickle):

    {"format": "minifm.checkpoint/1",
     "config":     the task and trainer settings that rebuild the run,
     "modules":    {name: state_dict},        "optimizers": {name: state_dict},
     "schedulers": {name: state_dict},        "trainer":    {"step", "best", ...},
     "data":       the batch source's position (generator states),
     "rng":        the default CPU generator's state (dropout, init, sampling)}

`minifm.load` checks the whole file -- its layout and the checksum of every tensor and of
the header -- before returning anything, so a truncated, damaged or edited checkpoint is
refused whole with a CheckpointError naming the file (and the tensor, when the damage is in
one), and nothing is half-loaded into the model. `eval`, `sample` and `--resume` all read
checkpoints through `read_checkpoint`.
"""
from __future__ import annotations

import os

from .. import backend
from ..quantization import quantize_dynamic
from ..serialization import CheckpointError, load, save, source_name

FORMAT = "minifm.checkpoint/1"


def save_checkpoint(path, *, config, modules, optimizers, schedulers, trainer, data):
    """Write a checkpoint atomically (minifm.save writes a temporary file, then renames),
    creating its folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save({
        "format": FORMAT,
        "config": config,
        "modules": {name: m.state_dict() for name, m in modules.items()},
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
        "trainer": trainer,
        "data": data,
        "rng": backend.get_rng_state(),
    }, path)


def read_checkpoint(path) -> dict:
    """Load and check a checkpoint (a path or a binary file object); raises CheckpointError,
    a ValueError, if the file is damaged or is not a training checkpoint."""
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{source_name(path)}: not a minifm training checkpoint "
                              f"(expected format {FORMAT!r}); a model's weights alone "
                              "load with minifm.load")
    return ckpt


def load_modules(ckpt, modules):
    """Load a checkpoint's weights into `modules` (name -> Module), first quantizing the
    layers `minifm compress --quantize int8` quantized, so their int8 weights fit."""
    quantized = ckpt["config"].get("compression", {}).get("quantized_layers", {})
    for name, module in modules.items():
        if quantized.get(name):
            quantize_dynamic(module, set(quantized[name]), inplace=True)
        module.load_state_dict(ckpt["modules"][name])


def restore(ckpt, *, modules, optimizers, schedulers):
    """Load a checkpoint's states into live objects; the RNG state last, so nothing that
    runs while restoring can advance it."""
    for name, module in modules.items():
        module.load_state_dict(ckpt["modules"][name])
    for name, opt in optimizers.items():
        opt.load_state_dict(ckpt["optimizers"][name])
    for name, sched in schedulers.items():
        sched.load_state_dict(ckpt["schedulers"][name])
    backend.set_rng_state(ckpt["rng"])
