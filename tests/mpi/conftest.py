"""The tests in tests/mpi run in every rank of `mpiexec -n 2 python -m pytest tests/mpi -m mpi`
(what .ci/run does after the main suite). Each is marked `mpi`; in a plain pytest run
(one process) they are skipped, with the command that runs them."""
from __future__ import annotations

import importlib.util

import pytest

import minifm.distributed as dist


def pytest_configure(config):
    config.addinivalue_line("markers", "mpi: runs in 2 ranks under mpiexec -n 2 "
                            "(python -m pytest tests/mpi -m mpi)")


def pytest_collection_modifyitems(config, items):
    reason = world_too_small()
    for item in items:
        if "tests/mpi/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("mpi/"):
            item.add_marker(pytest.mark.mpi)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def world_too_small():
    """Why the MPI tests cannot run in this process (None if they can). The launcher's
    environment says whether this is a rank of mpiexec -n 2, so a plain pytest run never
    initialises MPI."""
    if importlib.util.find_spec("mpi4py") is None:
        return "MPI is not installed (pip install mpi4py mpich)"
    if dist.launched_world_size() != 2:
        return ("needs 2 MPI ranks: mpiexec -n 2 python -m pytest tests/mpi -m mpi "
                f"(this process is one of {dist.launched_world_size()})")
    if not dist.is_initialized():
        dist.init_process_group("mpi")
    return None
