"""The Reducer: averages a model's gradients over all ranks while backward is still
running (PyTorch's DDP Reducer, in a few screens).

After each forward, `prepare(outputs)` walks the new graph once and counts, for every
parameter, the edges through which gradient will reach it. During backward a function
hook sees each node's input gradients as soon as its backward has run: it adds those of
the parameters into their bucket slot and counts the edge done. When every parameter of
a bucket is done, the bucket's all-reduce starts (non-blocking), and backward goes on
through the earlier layers while the message travels.

The results reach .grad through a tensor hook on every parameter. This engine runs the
hooks of leaves once the whole graph has been traversed, so that hook is our "backward
finished" point: the first one waits for all buckets, and each returns its parameter's
averaged gradient (see DistributedDataParallel's docstring for the engine callback that
would make this simpler).
"""
from __future__ import annotations

import time

from ...autograd import FunctionHook, Node, unbroadcast
from ...autograd.function_hooks import add_hook, remove_hook
from ...distributed import ReduceOp, all_reduce
from ...tensor import Tensor
from .buckets import assign_buckets


class Reducer(FunctionHook):
    """Bucketed, overlapped gradient averaging for the parameters `params`."""

    def __init__(self, params, bucket_cap_mb=25):
        self.params = params
        self.buckets = assign_buckets(params, bucket_cap_mb)
        self.place = {id(p): (b, i) for b, bucket in enumerate(self.buckets)
                      for i, p in enumerate(bucket.params)}
        self.comm_wait_seconds = 0.0  # time spent blocked on all-reduces (for benchmarks)
        for p in params:
            p.register_hook(lambda grad, p=p: self.averaged_gradient(p))
        self._reset()

    def _reset(self):
        remove_hook(self)
        self.pending_edges = {}   # id(param) -> edges still to deliver a gradient
        self.pending_params = [len(b.params) for b in self.buckets]
        self.works = []           # the buckets' all-reduces, in launch order
        self.awaiting_hook = set()  # ids of parameters whose averaged .grad is not set yet
        self.active = False

    # ---------------------------------------------------------------- after forward
    def prepare(self, outputs):
        """Count the gradient edges to each parameter in the graph of `outputs` (Tensors,
        in any nesting of tuples, lists and dicts), and watch the coming backward."""
        if not self.active:
            for bucket in self.buckets:
                bucket.load_grads()  # gradients accumulated under no_sync() go along
            add_hook(self)
            self.active = True
        for node in _graph_nodes(outputs):
            for parent in node.parents:
                if id(parent) in self.place:
                    self.pending_edges[id(parent)] = self.pending_edges.get(id(parent), 0) + 1
                    self.awaiting_hook.add(id(parent))
        unused = [p for p in self.params if id(p) not in self.pending_edges]
        for p in unused:  # no gradient will come: their zeros (or no_sync grads) are ready
            self.pending_edges[id(p)] = 0
            self._parameter_ready(p)

    # ---------------------------------------------------------------- during backward
    def backward_postprocess(self, node, grad, input_grads):
        for parent, g, meta in zip(node.parents, input_grads, node.input_meta):
            if id(parent) not in self.place:
                continue
            b, i = self.place[id(parent)]
            if g is not None:
                self.buckets[b].slot(i)[...] += unbroadcast(g, meta[0])
            self.pending_edges[id(parent)] -= 1
            if self.pending_edges[id(parent)] == 0:
                self._parameter_ready(parent)

    def _parameter_ready(self, param):
        b, _ = self.place[id(param)]
        self.pending_params[b] -= 1
        # Buckets start in order, the same on every rank, as MPI requires of collectives.
        while (len(self.works) < len(self.buckets)
               and self.pending_params[len(self.works)] == 0):
            for work in self.works:
                work.is_completed()  # lets MPI move the earlier messages along
            bucket = self.buckets[len(self.works)]
            self.works.append(all_reduce(bucket.flat, op=ReduceOp.AVG, async_op=True))

    # ---------------------------------------------------------------- backward finished
    def averaged_gradient(self, param):
        """The tensor hook: `param`'s gradient averaged over ranks (None, keeping the
        local gradient, when no synchronised backward is under way: no_sync, autograd.grad)."""
        if id(param) not in self.awaiting_hook:
            return None
        if len(self.works) < len(self.buckets):
            raise RuntimeError("DistributedDataParallel: backward ended before every "
                               "gradient bucket was ready (a gradient edge delivered "
                               "nothing, or backward ran through part of the graph)")
        start = time.perf_counter()
        for work in self.works:
            work.wait()
        self.comm_wait_seconds += time.perf_counter() - start
        self.awaiting_hook.discard(id(param))
        if not self.awaiting_hook:
            self._reset()
        b, i = self.place[id(param)]
        # The bucket already holds what .grad had (no_sync); the engine would add it again.
        param.grad = None
        return self.buckets[b].gradient(i)


def _graph_nodes(outputs):
    """Every Node of the graphs that produced the Tensors in `outputs` (once each)."""
    stack = [t.grad_fn for t in _tensors(outputs) if t.grad_fn is not None]
    seen = set(stack)
    while stack:
        node = stack.pop()
        yield node
        for parent in node.parents:
            if parent.__class__ is Node and parent not in seen:
                seen.add(parent)
                stack.append(parent)


def _tensors(value):
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
