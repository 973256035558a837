"""SGD's update (minifm/optim/sgd.py) in one Numba pass over each parameter.

The NumPy rule, with momentum and weight decay, is six whole-array operations per
parameter (p * wd, + grad, buf *= momentum, buf += g, -lr * buf, p +=), each reading and
writing arrays as large as the parameter: fourteen passes over memory for a ResNet-18's 11
million weights, which do not fit in any cache. Here each element is read once (p, grad,
buf) and written once (buf, p). Measured on ResNet-18's 11.2 M parameters (SGD lr 0.01,
momentum 0.9, weight decay 5e-4, one thread, alternating calls; the NumPy rule took about a
third of the ResNet-18 training step in `bench_train_vision.py --profile resnet18`): one
step 16.1 ms here, 48.7 ms the NumPy rule, 37.6 ms PyTorch's (its single-tensor CPU path,
four ATen ops per parameter).

The arithmetic is the NumPy rule's, operation for operation, in the parameter's dtype (the
scalars are cast to it first, as NumPy does with Python floats against float32 arrays) and
without fast-math contraction, so both paths give the same bits. Parameters are cut into
one range per thread (cpu_tasks) where they are large enough to be worth the threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_tasks import run_tasks, task_range

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def supports(dtype):
    """None when the kernel can update parameters of `dtype`, else the reason it cannot."""
    if dtype not in _DTYPES:
        return f"the Numba SGD kernel takes float32 or float64 parameters, got {dtype}"
    return None


@njit(cache=True, nogil=True, error_model="numpy")
def _update(p, grad, buf, neg_lr, momentum, damping, weight_decay, sign, nesterov, first):
    """The flat arrays (each task's slice of them). sign is -1 when maximizing (an exact
    negation); damping is 1 - dampening, or 1 (an exact product) without dampening. The
    loop runs over range(p.size), not a (start, stop) range of whole arrays: LLVM
    vectorized only the former (11 M float32 elements, momentum and weight decay: 11 ms
    against 19-29 ms)."""
    for i in range(p.size):
        g = grad[i] * sign
        if weight_decay != 0:
            g = p[i] * weight_decay + g
        if momentum != 0:
            b = g if first else buf[i] * momentum + g * damping
            buf[i] = b
            g = b * momentum + g if nesterov else b
        p[i] += g * neg_lr


@njit(cache=True, nogil=True, error_model="numpy")
def _update_range(p, grad, buf, neg_lr, momentum, damping, weight_decay, sign, nesterov,
                  first, start, stop):
    """_update on elements start .. stop (slices: see _update on why)."""
    _update(p[start:stop], grad[start:stop], buf[start:stop], neg_lr, momentum, damping,
            weight_decay, sign, nesterov, first)


@njit(parallel=True, cache=True)
def _update_shared(tasks, rows, *args):
    """_update_range on `tasks` contiguous ranges of [0, rows) at once (cpu_tasks)."""
    for task in prange(tasks):
        start, stop = task_range(task, tasks, rows)
        _update_range(*args, start, stop)


def sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize,
               first):
    """p -= lr * (the SGD direction), in place, updating the momentum buffer buf (written,
    not read, at the first step; ignored without momentum). p, grad and buf are
    C-contiguous arrays of one dtype and shape."""
    cast = p.dtype.type
    args = (p.reshape(-1), grad.reshape(-1), buf.reshape(-1), cast(-lr), cast(momentum),
            cast(1 - dampening), cast(weight_decay), cast(-1 if maximize else 1), nesterov,
            first)
    # weight 1 (cpu_tasks): split / serial at two threads under OpenMP 1.25-1.30 at 8 K
    # elements, 0.88-1.14 at 16 K, 0.74-1.04 at 32 K, 0.90-0.93 at 64 K, 0.61-0.79 at 128 K,
    # 0.56-0.68 above (bench_split.py --kernels sgd, three runs, this noisy VM)
    run_tasks(_update_range, _update_shared, p.size, p.size, *args)
