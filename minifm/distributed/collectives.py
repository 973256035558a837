"""Collectives on Tensors, in place, as torch.distributed's: every rank calls the same
function in the same order, and each rank's tensor holds the result afterwards.

The backends (mpi_backend.py, nccl_backend.py) move contiguous arrays; this file turns a
Tensor into one (a non-contiguous tensor is staged through a contiguous copy and written
back) and adds what they lack: ReduceOp.AVG (a sum divided by the world size, on MPI
too, where PyTorch offers AVG only with NCCL) and Work handles for async_op=True.
"""
from __future__ import annotations

import enum

from .. import backend
from . import process_group


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


class Work:
    """A collective in flight (async_op=True): wait() blocks until this rank's tensor holds
    the result. `finish` completes it (the AVG division, the copy back)."""

    def __init__(self, request, finish):
        self.request, self.finish = request, finish
        self.done = False

    def is_completed(self):
        """Whether the result is ready; asking also lets MPI make progress on it."""
        return self.done or self.request.Test()

    def wait(self):
        if not self.done:
            self.request.Wait()
            self.finish()
            self.done = True
        return True


def _world(group):
    """The backend of `group`: only the default group (None) exists."""
    if group is not None:
        raise NotImplementedError("minifm.distributed has only the default group: pass "
                                  "group=None")
    return process_group.group()


def _buffer(tensor):
    """(array the backend can work on in place, function that writes it back)."""
    data = tensor._data
    if data.flags.c_contiguous:
        return data, lambda: None
    staged = data.copy()

    def write_back():
        data[...] = staged
    return staged, write_back


class _Done:
    """The request of a collective that completed when it was called."""

    def Wait(self):
        pass

    def Test(self):
        return True


def _result(request, finish, async_op):
    """A Work handle (async_op=True), or None once the collective completed."""
    work = Work(request, finish)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks; every rank's tensor becomes the result."""
    world = _world(group)
    array, write_back = _buffer(tensor)
    request = world.all_reduce(array, "sum" if op is ReduceOp.AVG else op.value)

    def finish():
        if op is ReduceOp.AVG:
            array[...] = array / world.size()
        write_back()
    return _result(request, finish, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Every rank's `tensor` becomes rank `src`'s."""
    array, write_back = _buffer(tensor)
    _world(group).broadcast(array, src)
    return _result(_Done(), write_back, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[i] becomes rank i's `tensor` (one tensor per rank, each of its shape)."""
    world = _world(group)
    if len(tensor_list) != world.size():
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for a "
                         f"world of {world.size()} ranks")
    xp = backend.array_module(tensor.device)
    gathered = xp.empty((world.size(),) + tuple(tensor.shape), dtype=tensor._data.dtype)
    world.all_gather(gathered, xp.ascontiguousarray(tensor._data))

    def finish():
        for out, part in zip(tensor_list, gathered):
            out._data[...] = part
    return _result(_Done(), finish, async_op)


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):
    """Rank `dst`'s `tensor` becomes the reduction over all ranks (the others' stay)."""
    world = _world(group)
    array, write_back = _buffer(tensor)
    world.reduce(array, dst, "sum" if op is ReduceOp.AVG else op.value)

    def finish():
        if world.rank() == dst:
            if op is ReduceOp.AVG:
                array[...] = array / world.size()
            write_back()
    return _result(_Done(), finish, async_op)


def barrier(group=None, async_op=False):
    """Return once every rank has called barrier."""
    _world(group).barrier()
    return _result(_Done(), lambda: None, async_op)
