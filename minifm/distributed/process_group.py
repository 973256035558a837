"""The default process group: which backend links this process to the others, its rank
and the world size (torch.distributed's init_process_group and friends).

There is one group, the world, as in most PyTorch programs; sub-groups (new_group) are
not implemented. The launcher (`mpiexec -n N`, or `minifm train --nproc N`) starts the
processes, and MPI tells each its rank: init_process_group needs no address or port.
"""
from __future__ import annotations

import importlib.util

from .mpi_backend import MPIBackend
from .nccl_backend import NCCLBackend

BACKENDS = {"mpi": MPIBackend, "nccl": NCCLBackend}

_world = None
"""The backend of the default group once init_process_group ran, else None."""


def init_process_group(backend="mpi", world_size=-1, rank=-1):
    """Join the default process group. backend: "mpi" (CPU arrays, any number of
    machines) or "nccl" (GPU arrays; untested, see nccl_backend.py). world_size and rank,
    when given, must agree with what the launcher says (they are checks, not settings)."""
    global _world
    if _world is not None:
        raise RuntimeError("trying to initialize the default process group twice")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, "
                         f"got {backend!r}")
    group = BACKENDS[backend]()
    for name, given, actual in (("world_size", world_size, group.size()),
                                ("rank", rank, group.rank())):
        if given != -1 and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but the MPI launcher "
                             f"started this process with {name} {actual}")
    _world = group


def is_initialized():
    return _world is not None


def is_available():
    """Whether mpi4py, which every backend needs, is installed."""
    return importlib.util.find_spec("mpi4py") is not None


def group():
    """The default group's backend; a RuntimeError before init_process_group."""
    if _world is None:
        raise RuntimeError("Default process group has not been initialized, please make "
                           "sure to call init_process_group.")
    return _world


def get_rank():
    return group().rank()


def get_world_size():
    return group().size()


def get_backend():
    return group().name


def destroy_process_group():
    """Leave the default group; init_process_group may be called again."""
    global _world
    group().close()
    _world = None
