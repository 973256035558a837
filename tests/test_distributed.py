"""minifm.distributed in one process (errors, the launcher's command), and one quick run
of the 2-rank collective tests under mpiexec (the full MPI suite: tests/mpi)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

import minifm.distributed as dist

HERE = os.path.dirname(__file__)


def test_the_group_must_be_initialized_first():
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="backend must be one of"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()


def test_nproc_runs_minifm_under_mpiexec():
    if not dist.is_available() or shutil.which("mpiexec") is None and not os.path.exists(
            os.path.join(os.path.dirname(sys.executable), "mpiexec")):
        pytest.skip("MPI is not installed (pip install mpi4py mpich)")
    command = dist.mpiexec_command(2, ["train", "gpt"])
    assert command[1:] == ["-n", "2", sys.executable, "-m", "minifm", "train", "gpt"]


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                    reason="MPI is not installed (pip install mpi4py mpich)")
def test_collectives_in_two_ranks():
    command = dist.mpiexec_command(2, [])[:-1] + [  # python -m pytest
        "pytest", os.path.join(HERE, "mpi", "test_collectives.py"), "-m", "mpi", "-q",
        "-p", "no:cacheprovider"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout
