"""minifm on CUDA: every op of the table, a module's training step, the optimizers and a
checkpoint, with tensors on device="cuda", against PyTorch on the CPU.

Without a GPU, "cuda" is the CuPy stand-in (tests/fake_cupy, see conftest.py): NumPy
underneath, but a device array NumPy may not touch, so these tests catch `np.` used where
an op must use its array module, results left on the wrong device and host copies. Where
CuPy sees a GPU, the same tests run on it.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm import backend  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402
from optable import OPS, Make, Sample  # noqa: E402

CUDA = backend.as_device("cuda")


def convert(value, lib, leaves=None):
    """Arrays (also inside lists and tuples) to torch CPU tensors or minifm CUDA tensors;
    floating ones require grad and are appended to `leaves` when it is a list."""
    if isinstance(value, np.ndarray):
        grad = leaves is not None and value.dtype.kind == "f"
        if lib == "torch":
            t = torch.from_numpy(np.array(value, order="K")).requires_grad_(grad)
        else:
            t = minifm.tensor(value, device="cuda", requires_grad=grad)
        if grad:
            leaves.append(t)
        return t
    if isinstance(value, (tuple, list)):
        return type(value)(convert(v, lib, leaves) for v in value)
    return value


def flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat(o)]
    return [out]


def call(info, sample, lib, leaves=None):
    fn = info.op if lib == "minifm" else info.ref
    args = convert(sample.args, lib, leaves)
    kwargs = {k: convert(v, lib, leaves) for k, v in sample.kwargs.items()}
    return flat(fn(*args, **kwargs))


def on_cuda(tensor, sample):
    assert isinstance(tensor, minifm.Tensor), (sample, type(tensor))
    assert tensor.device == CUDA, (sample, tensor.device)
    assert not isinstance(tensor._data, np.ndarray), (sample, "a host array in a cuda tensor")


def has_arrays(value):
    if isinstance(value, Sample):
        return has_arrays(value.args) or has_arrays(list(value.kwargs.values()))
    if isinstance(value, (tuple, list)):
        return any(has_arrays(v) for v in value)
    return isinstance(value, np.ndarray)


def cases(select):
    return [pytest.param(info, dtype, id=f"{info.name}-{dtype.name}")
            for info in OPS for dtype in info.dtypes[:1] if select(info, dtype)]


@pytest.mark.parametrize("device", ["cuda"])  # named so that conftest counts it
@pytest.mark.parametrize("info,dtype", cases(lambda info, dtype: True))
def test_op_forward_and_backward_on_cuda(info, dtype, device):
    grad = info.differentiable and dtype.kind == "f"
    for sample in info.samples(Make(dtype)):
        t_leaves, leaves = ([], []) if grad else (None, None)
        theirs = call(info, sample, "torch", t_leaves)
        ours = call(info, sample, "minifm", leaves)
        assert len(ours) == len(theirs), sample
        for a, b in zip(ours, theirs):
            if has_arrays(sample):  # factories (tril_indices...) stay on their default device
                on_cuda(a, sample)
            assert_close(a, b, msg=lambda m: f"{sample}: {m}")
        if not grad:
            continue
        pairs = [(o, t) for o, t in zip(ours, theirs)
                 if o.is_floating_point() and o.requires_grad]
        if not pairs:
            continue
        rng = np.random.default_rng(1)
        cots = [rng.standard_normal(tuple(o.shape)).astype(to_numpy(o).dtype) for o, _ in pairs]
        grads = minifm.autograd.grad([o for o, _ in pairs], leaves,
                                     [minifm.tensor(c, device="cuda") for c in cots],
                                     allow_unused=True)
        t_grads = torch.autograd.grad([t for _, t in pairs], t_leaves,
                                      [torch.from_numpy(c) for c in cots], allow_unused=True)
        for leaf, g, tg in zip(leaves, grads, t_grads):
            if tg is None or g is None:
                continue
            on_cuda(g, sample)
            assert g.shape == leaf.shape and g.dtype == leaf.dtype, sample
            assert_close(g, tg, msg=lambda m: f"{sample}: {m}")
