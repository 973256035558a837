"""The MPI backend: collectives on NumPy arrays through mpi4py (MPI's own implementations).

Every process started by the MPI launcher (`mpiexec -n N python train.py`) is one rank of
MPI_COMM_WORLD; MPI tells each its rank and the world size, so nothing is configured here.
mpi4py is an optional package, imported on first use; importing `mpi4py.MPI` initialises
MPI (and registers MPI_Finalize at exit).

The methods take contiguous arrays and work in place (MPI.IN_PLACE), as PyTorch's
collectives do; minifm/distributed/collectives.py turns Tensors into such arrays.
"""
from __future__ import annotations


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("the mpi backend needs mpi4py and an MPI library: "
                           "pip install mpi4py mpich (or minifm[distributed])") from None
    return MPI


class MPIBackend:
    """MPI_COMM_WORLD, seen as a process group."""

    name = "mpi"

    def __init__(self):
        MPI = _mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def rank(self):
        return self.comm.Get_rank()

    def size(self):
        return self.comm.Get_size()

    def all_reduce(self, array, op):
        """Start reducing `array` over all ranks into itself; returns a request with
        .Wait() (MPI_Iallreduce: the caller may compute while the message travels)."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.ops[op])

    def broadcast(self, array, src):
        self.comm.Bcast(array, root=src)

    def all_gather(self, out, array):
        """out[i] = rank i's `array`; `out` has shape (world size, *array.shape)."""
        self.comm.Allgather(array, out)

    def reduce(self, array, dst, op):
        """Rank `dst`'s `array` becomes the reduction over all ranks; the others' stay."""
        if self.rank() == dst:
            self.comm.Reduce(self.MPI.IN_PLACE, array, op=self.ops[op], root=dst)
        else:
            self.comm.Reduce(array, None, op=self.ops[op], root=dst)

    def barrier(self):
        self.comm.Barrier()

    def close(self):
        """Nothing to release: MPI_COMM_WORLD lives until MPI_Finalize, at exit."""
