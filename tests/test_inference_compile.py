"""Conveniences of PyTorch's API against PyTorch: Tensor.numpy(force=), inference_mode and
is_inference_mode_enabled, and compile as a no-op that returns what it is given."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402


# ----------------------------------------------------------------------------- numpy(force=)
def test_numpy_force_detaches_and_shares_host_memory():
    for lib in (minifm, torch):
        t = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="requires grad"):
            t.numpy()
        np.testing.assert_array_equal(t.numpy(force=True), np.ones(3, np.float32))
        plain = lib.zeros(3)
        plain.numpy(force=True)[0] = 5.0        # on the host the array is the tensor's own
        assert plain[0].item() == 5.0
        with pytest.raises(TypeError):
            plain.numpy(True)                   # force is keyword-only


def test_numpy_force_copies_a_device_tensor_to_the_host(device):
    t = minifm.arange(4.0, device=device, requires_grad=True)
    array = t.numpy(force=True)
    assert isinstance(array, np.ndarray)
    np.testing.assert_array_equal(array, [0.0, 1.0, 2.0, 3.0])
    if device == "cuda":
        with pytest.raises(TypeError, match="cuda"):
            t.detach().numpy()


# ----------------------------------------------------------------------------- inference_mode
def _modes(lib):
    return lib.is_grad_enabled(), lib.is_inference_mode_enabled()


@pytest.mark.parametrize("lib", [minifm, torch], ids=["minifm", "torch"])
def test_inference_mode_context(lib):
    x = lib.ones(2, requires_grad=True)
    assert _modes(lib) == (True, False)
    with lib.inference_mode():
        assert _modes(lib) == (False, True)
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with lib.inference_mode(False):          # leaving it re-enables recording
            assert _modes(lib) == (True, False)
            assert (x * 2).requires_grad
        assert _modes(lib) == (False, True)
    assert _modes(lib) == (True, False)
    with lib.no_grad(), lib.inference_mode(False):
        assert _modes(lib) == (True, False)
    with pytest.raises(ValueError):
        with lib.inference_mode():
            raise ValueError
    assert _modes(lib) == (True, False)      # restored on the way out of an exception


@pytest.mark.parametrize("lib", [minifm, torch], ids=["minifm", "torch"])
def test_inference_mode_decorator(lib):
    @lib.inference_mode
    def bare():
        return _modes(lib)

    @lib.inference_mode()
    def called():
        return _modes(lib)

    @lib.inference_mode(False)
    def off():
        return _modes(lib)

    assert bare() == called() == (False, True)
    assert bare.__name__ == "bare"
    with lib.no_grad():
        assert off() == (True, False)
    assert _modes(lib) == (True, False)


def test_inference_mode_is_per_thread():
    import threading
    seen = []
    with minifm.inference_mode():
        thread = threading.Thread(target=lambda: seen.append(_modes(minifm)))
        thread.start()
        thread.join()
    assert seen == [(True, False)]


# ----------------------------------------------------------------------------- compile
def test_compile_returns_what_it_is_given():
    model = minifm.nn.Linear(3, 2)
    assert minifm.compile(model) is model
    assert minifm.compile(model, mode="reduce-overhead", fullgraph=True, dynamic=False) is model

    @minifm.compile
    def f(x):
        return x * 2

    @minifm.compile(mode="max-autotune")
    def g(x):
        return x + 1

    assert f(3) == 6 and g(3) == 4 and f.__name__ == "f"


@pytest.mark.parametrize("lib", [minifm, torch], ids=["minifm", "torch"])
def test_compile_refuses_what_torch_compile_refuses(lib):
    with pytest.raises(RuntimeError, match="Either mode or options"):
        lib.compile(lambda x: x, mode="default", options={})
    with pytest.raises(TypeError, match="unexpected keyword"):
        lib.compile(lambda x: x, foo=1)
