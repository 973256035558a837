"""minifm.nn.parallel: data parallelism across processes (torch.nn.parallel)."""
from .buckets import all_reduce_gradients
from .distributed import DistributedDataParallel, broadcast_module

__all__ = ["DistributedDataParallel", "all_reduce_gradients", "broadcast_module"]
