"""minifm.distributed: processes that train one model together (torch.distributed's API).

Start N processes with the MPI launcher, each running the same script:

    mpiexec -n 2 python train.py          # or: minifm train gpt --nproc 2

and in the script:

    import minifm.distributed as dist
    dist.init_process_group(backend="mpi")   # rank and world size come from mpiexec
    dist.all_reduce(t, op=dist.ReduceOp.AVG) # t now holds the mean of every rank's t

The communication is MPI's (mpi4py, installed with `pip install minifm[distributed]`,
which brings the MPICH library as a wheel), or NCCL's between GPUs (backend="nccl",
through CuPy; untested until a machine with two GPUs is available). Data parallelism on
top of it: minifm.nn.parallel.DistributedDataParallel and minifm.data.DistributedSampler.
"""
from .launcher import launched_local_size, launched_world_size, mpiexec_command
from .collectives import ReduceOp, Work, all_gather, all_reduce, barrier, broadcast, reduce
from .process_group import (
    destroy_process_group, get_backend, get_rank, get_world_size, init_process_group,
    is_available, is_initialized,
)

__all__ = [
    "ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast",
    "destroy_process_group", "get_backend", "get_rank", "get_world_size",
    "init_process_group", "is_available", "is_initialized", "launched_local_size",
    "launched_world_size", "mpiexec_command", "reduce",
]
