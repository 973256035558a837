"""The NCCL backend: collectives on CuPy arrays between GPUs, through cupy.cuda.nccl.

NCCL moves data GPU to GPU (NVLink, PCIe, InfiniBand) without staging it in host memory,
which is why PyTorch and ChainerMN use it inside a node. It needs a shared secret to
form its communicator: rank 0 makes a unique id and MPI broadcasts it to the others, so
the processes are still started by the MPI launcher, one per GPU (rank r uses GPU
r mod the GPUs of its node). Barriers go through MPI too.

UNTESTED: this file has not run yet; it waits for a machine with two GPUs. It follows
cupy.cuda.nccl's API (NcclCommunicator.allReduce, bcast, reduce, allGather).
"""
from __future__ import annotations

from .mpi_backend import MPIBackend


def _cupy_nccl():
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError:
        raise RuntimeError("the nccl backend needs CuPy built with NCCL (pip install "
                           "cupy-cuda12x) and mpi4py to exchange the NCCL unique id") from None
    return cupy, nccl


class NCCLBackend:
    """One NCCL communicator over all ranks; the MPI world (`mpi`) starts it and keeps
    the rank numbering."""

    name = "nccl"

    def __init__(self):
        self.cupy, nccl = _cupy_nccl()
        self.mpi = MPIBackend()
        rank, size = self.mpi.rank(), self.mpi.size()
        self.cupy.cuda.Device(rank % self.cupy.cuda.runtime.getDeviceCount()).use()
        unique_id = self.mpi.comm.bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
        self.comm = nccl.NcclCommunicator(size, unique_id, rank)
        self.ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
        self.dtypes = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                       "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32,
                       "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8}

    def rank(self):
        return self.comm.rank_id()

    def size(self):
        return self.comm.size()

    def _args(self, array):
        """(pointer, count, NCCL datatype) of a contiguous CuPy array."""
        return array.data.ptr, array.size, self.dtypes[array.dtype.name]

    def _stream(self):
        return self.cupy.cuda.get_current_stream()

    def all_reduce(self, array, op):
        """Queue the reduction on the current stream; the returned stream's .synchronize()
        waits for it (the MPI backend's request.Wait())."""
        ptr, count, dtype = self._args(array)
        stream = self._stream()
        self.comm.allReduce(ptr, ptr, count, dtype, self.ops[op], stream.ptr)
        return _StreamRequest(stream)

    def broadcast(self, array, src):
        ptr, count, dtype = self._args(array)
        self.comm.bcast(ptr, count, dtype, src, self._stream().ptr)

    def all_gather(self, out, array):
        ptr, count, dtype = self._args(array)
        self.comm.allGather(ptr, out.data.ptr, count, dtype, self._stream().ptr)

    def reduce(self, array, dst, op):
        ptr, count, dtype = self._args(array)
        self.comm.reduce(ptr, ptr, count, dtype, self.ops[op], dst, self._stream().ptr)

    def barrier(self):
        self._stream().synchronize()
        self.mpi.barrier()

    def close(self):
        self.comm.destroy()


class _StreamRequest:
    """An NCCL collective in flight, with MPI's request interface (Wait, Test)."""

    def __init__(self, stream):
        self.event = stream.record()

    def Wait(self):
        self.event.synchronize()

    def Test(self):
        return self.event.done
