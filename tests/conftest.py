"""Shared test helpers: conversions between minifm and PyTorch, PyTorch's tolerances, and a
`device` fixture that runs a test on the CPU and on CUDA.

CUDA is a real GPU where CuPy sees one; everywhere else it is the CuPy stand-in in
tests/fake_cupy (NumPy underneath, CuPy's rules: a distinct array type that NumPy may not
convert implicitly), put first on the import path here, before minifm imports CuPy. So the
cuda cases run in CI too, and catch `np.` used where the array module must be, missing
device moves and host copies. The summary line at the end of a run says how many cuda
tests ran and on what. On the stand-in, minifm's "auto" kernel choice keeps the reference
ops for CUDA arrays (there is no GPU for the Numba-CUDA kernels; they are tested under
Numba's CUDA simulator in test_attention_cuda_sim.py).

The PyTorch twins of minifm's models live in benchmarks/torch_models.py (the benchmarks time
them too); that folder is put on the import path here, so tests `import torch_models`."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "benchmarks"))


def _real_cupy_sees_a_gpu():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver or no device
        return False


CUPY_STAND_IN = not _real_cupy_sees_a_gpu()
if CUPY_STAND_IN:
    for _name in [m for m in sys.modules if m == "cupy" or m.startswith("cupy.")]:
        del sys.modules[_name]        # a real CuPy without a GPU gives way to the stand-in
    sys.path.insert(0, str(TESTS / "fake_cupy"))

import minifm  # noqa: E402
from minifm import backend, kernels  # noqa: E402

if CUPY_STAND_IN:
    kernels._numba_cuda_installed = lambda: False  # no GPU for Numba-CUDA: reference ops


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


def convert(value, lib, leaves=None, device="cpu"):
    """Arrays (also inside lists and tuples) to torch CPU tensors, or minifm tensors on
    `device`; floating arrays require grad when `leaves` is a list, and are appended to it."""
    if isinstance(value, np.ndarray):
        grad = leaves is not None and value.dtype.kind == "f"
        array = np.array(value, order="K")  # a copy that keeps a transposed layout
        if lib == "torch":
            t = _torch().from_numpy(array).requires_grad_(grad)
        elif device == "cpu":
            t = minifm.Tensor(array, requires_grad=grad)
        else:
            t = minifm.tensor(array, device=device, requires_grad=grad)
        if grad:
            leaves.append(t)
        return t
    if isinstance(value, (tuple, list)):
        return type(value)(convert(v, lib, leaves, device) for v in value)
    return value


def flat(out):
    """The tensors of a (nested) tuple or list of outputs, in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat(o)]
    return [out]


def call_op(info, sample, lib, leaves=None, device="cpu"):
    """The op-table entry's op (minifm, on `device`) or reference (torch) on the sample."""
    fn = info.op if lib == "minifm" else info.ref
    args = convert(sample.args, lib, leaves, device)
    kwargs = {k: convert(v, lib, leaves, device) for k, v in sample.kwargs.items()}
    return flat(fn(*args, **kwargs))


def load_from_torch(model, torch_model):
    """Copy a torch model's state dict (parameters and buffers) into a minifm model."""
    model.load_state_dict({k: minifm.tensor(v.detach().numpy())
                           for k, v in torch_model.state_dict().items()})
    return model


def assert_grads_close(model, torch_model, **tol):
    """Same parameter names in the same order, and each gradient close to torch's."""
    torch_params = dict(torch_model.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(torch_params)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype, name
        assert_close(p.grad, torch_params[name].grad, msg=name, **tol)


def read_backend_variables_again(monkeypatch):
    """minifm.kernels reads each MINIFM_<OP>_BACKEND once and keeps select's answers: start
    over as a fresh process would, after monkeypatch.setenv (both restored after the test)."""
    monkeypatch.setattr(kernels, "_from_environment", {})
    monkeypatch.setattr(kernels, "_selected", {})


@pytest.fixture
def corpus(tmp_path):
    """A small text file (200 lines) for the training CLI tests."""
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n"
                            for i in range(200)), encoding="utf-8")
    return path


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """"cpu", then "cuda": a real GPU where CuPy sees one, else the CuPy stand-in."""
    return request.param


_cuda_tests = {"run": set(), "skipped": set()}


def _on_cuda(item):
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("device") == "cuda"


def pytest_runtest_makereport(item, call):
    """Count the tests with device="cuda" (the fixture's or a parametrization's) that ran,
    passing or failing, and those that skipped."""
    if not _on_cuda(item):
        return
    if call.excinfo is not None and call.excinfo.errisinstance(pytest.skip.Exception):
        _cuda_tests["skipped"].add(item.nodeid)
    elif call.when == "call":
        _cuda_tests["run"].add(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    """One line saying how many cuda-device tests ran, and where; none when the run had none
    (a subprocess running one file, as the MPI tests do)."""
    ran, skipped = len(_cuda_tests["run"]), len(_cuda_tests["skipped"])
    if not ran and not skipped:
        return
    where = ("the CuPy stand-in (NumPy on the CPU, tests/fake_cupy)" if CUPY_STAND_IN
             else f"a real GPU ({minifm.cuda.get_device_name()})")
    terminalreporter.write_line(f"cuda-device tests run: {ran}, on {where}"
                                + (f" ({skipped} skipped)" if skipped else ", none skipped"))
