"""What the MPI launcher tells a process through its environment, and the launcher's
command line: how `minifm train --nproc N` starts itself N times.

MPICH's launcher (Hydra) sets PMI_SIZE and MPI_LOCALNRANKS, Open MPI's sets
OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_LOCAL_SIZE. Reading them needs no MPI library,
so a process can tell whether it is one rank of many before it initialises MPI.
"""
from __future__ import annotations

import os
import shutil
import sys


def launched_world_size():
    """How many processes the launcher started (1 when not started by mpiexec)."""
    return int(os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or 1)


def launched_local_size():
    """How many of those processes share this machine (their cores must be shared)."""
    return int(os.environ.get("MPI_LOCALNRANKS")
               or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or 1)


def mpiexec_command(nproc, args):
    """`mpiexec -n nproc python -m minifm <args>`, with the mpiexec beside this Python
    (the mpich wheel installs one in the virtual environment) or else on the PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = here if os.path.exists(here) else shutil.which("mpiexec")
    if mpiexec is None:
        raise ValueError("--nproc needs MPI's launcher mpiexec: pip install mpi4py mpich "
                         "(or minifm[distributed])")
    return [mpiexec, "-n", str(nproc), sys.executable, "-m", "minifm", *args]
