"""DistributedDataParallel: one model replicated in every rank, each rank training on its
own part of the batch, their gradients averaged so that every replica takes the same
optimizer step (torch.nn.parallel.DistributedDataParallel).

With equal shards of a batch and a loss that is a mean over the examples, the averaged
gradient is the gradient of the whole batch, so N ranks follow the trajectory of one
process on the full batch (tests/mpi/test_ddp.py checks it to 1e-6).
"""
from __future__ import annotations

from contextlib import contextmanager

from ...autograd import is_grad_enabled
from ...distributed import broadcast
from ..module import Module
from .reducer import Reducer


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training; init_process_group must have run.

    At construction rank 0's parameters and buffers are copied to every rank. Each
    forward in training mode copies rank 0's buffers again (broadcast_buffers) and
    prepares the Reducer, which averages the gradients in buckets of about bucket_cap_mb
    megabytes during backward. `ddp.module` is the wrapped model; ddp.state_dict() has
    its keys prefixed with "module.", as PyTorch's (save `ddp.module.state_dict()` to
    load the weights without DDP).

    Where minifm differs: this engine has no "backward finished" callback (PyTorch's
    queue_callback) and fires the hooks of parameters after the whole backward, so the
    averaged gradient reaches .grad through a tensor hook that DDP registers on every
    parameter, and a hook registered on a parameter earlier sees the local gradient, not
    the average. Double backward (create_graph) through DDP is not supported, as in
    PyTorch. device_ids and output_device are accepted for PyTorch's signature: a rank's
    device is where its module is.
    """

    def __init__(self, module, device_ids=None, output_device=None, broadcast_buffers=True,
                 bucket_cap_mb=25):
        super().__init__()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        broadcast_module(module)
        params = [p for p in module.parameters() if p.requires_grad]
        self.reducer = Reducer(params, bucket_cap_mb)

    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers:
            for buffer in self.module.buffers():
                broadcast(buffer, src=0)
        outputs = self.module(*args, **kwargs)
        if is_grad_enabled() and self.require_backward_grad_sync:
            self.reducer.prepare(outputs)
        return outputs

    @contextmanager
    def no_sync(self):
        """Backward inside this block only accumulates the local gradients (gradient
        accumulation over micro-batches); the first synchronised backward after it
        averages the accumulated sum."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous


def broadcast_module(module, src=0):
    """Copy rank `src`'s parameters and buffers into every rank's `module`."""
    for tensor in [*module.parameters(), *module.buffers()]:
        broadcast(tensor, src=src)
