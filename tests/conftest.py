"""Shared test helpers: conversions between minifm and PyTorch, PyTorch's tolerances, and a
`device` fixture that runs a test on the CPU and, where CuPy sees a GPU, on CUDA.

The PyTorch twins of minifm's models live in benchmarks/torch_models.py (the benchmarks time
them too); that folder is put on the import path here, so tests `import torch_models`."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import minifm
from minifm import backend


def _torch():
    return pytest.importorskip("torch")


def to_numpy(value):
    """A host NumPy array from a minifm Tensor, a torch tensor or an array."""
    if isinstance(value, minifm.Tensor):
        return np.asarray(backend.move_array(value._data, backend.CPU))
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def to_torch(value, requires_grad=False):
    """A torch tensor holding a copy of a minifm Tensor or an array."""
    torch = _torch()
    out = torch.from_numpy(np.array(to_numpy(value)))
    return out.requires_grad_(requires_grad)


def from_torch(value, requires_grad=False, device="cpu"):
    """A minifm Tensor holding a copy of a torch tensor."""
    return minifm.tensor(value.detach().cpu().numpy(), device=device, requires_grad=requires_grad)


def assert_close(actual, expected, **kwargs):
    """torch.testing.assert_close (its per-dtype tolerances) on minifm/torch/array values;
    dtypes must match too."""
    torch = _torch()
    actual = torch.from_numpy(np.array(to_numpy(actual)))
    expected = expected.detach().cpu() if isinstance(expected, torch.Tensor) else \
        torch.from_numpy(np.array(to_numpy(expected)))
    torch.testing.assert_close(actual, expected, **kwargs)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not backend.cuda_is_available():
        pytest.skip("no CUDA device (CuPy missing or no GPU)")
    return request.param
