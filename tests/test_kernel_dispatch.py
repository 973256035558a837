"""minifm.kernels.select and the one kernel pattern: every op with a kernel is a reference
Function and a fused Function, `<Op>Reference` and `<Op>Fused`, and its public function
applies one of them, as `select` says."""
import numpy as np
import pytest

import minifm
import minifm.kernels as kernels
import minifm.nn.functional as F
from minifm.ops import activation, attention, norm

# op (as minifm.kernels names it) -> (a call of its public function, reference, fused)
OPS = {
    "gelu": (F.gelu, activation.GeluReference, activation.GeluFused),
    "softmax": (lambda x: F.softmax(x, dim=-1), activation.SoftmaxReference,
                activation.SoftmaxFused),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), activation.LogSoftmaxReference,
                    activation.LogSoftmaxFused),
    "layer_norm": (lambda x: F.layer_norm(x, (8,)), norm.NativeLayerNormReference,
                   norm.NativeLayerNormFused),
    "batch_norm": (lambda x: F.batch_norm(x, None, None, training=True),
                   norm.NativeBatchNormReference, norm.NativeBatchNormFused),
    "attention": (lambda x: F.scaled_dot_product_attention(x, x, x),
                  attention.ScaledDotProductAttentionReference,
                  attention.ScaledDotProductAttentionFused),
}


def _backend_op(op):
    return "softmax" if op == "log_softmax" else op  # one kernel module serves both


@pytest.fixture
def choose():
    """choose(op, backend): set_backend for the test's duration."""
    chosen = []

    def choose(op, backend):
        chosen.append(_backend_op(op))
        kernels.set_backend(_backend_op(op), backend)
    yield choose
    for op in chosen:
        kernels.set_backend(op, None)


@pytest.mark.parametrize("op", OPS)
def test_reference_backend_applies_the_reference_function(op, choose):
    call, reference, _ = OPS[op]
    choose(op, "reference")
    out = call(minifm.ones(2, 4, 8, requires_grad=True))
    assert out.grad_fn.fn is reference
    assert out.grad_fn.name() == reference.__name__ + "Backward0"


@pytest.mark.parametrize("op", OPS)
def test_numba_backend_applies_the_fused_function_with_its_kernel(op, choose):
    pytest.importorskip("numba")
    call, _, fused = OPS[op]
    choose(op, "numba")
    out = call(minifm.ones(2, 4, 8, requires_grad=True))
    assert out.grad_fn.fn is fused
    assert out.grad_fn.kernel.__name__.startswith("minifm.kernels.")
    out.sum().backward()  # the fused backward runs with the kernel it recorded


@pytest.mark.parametrize("op", OPS)
def test_the_paths_agree(op, choose):
    pytest.importorskip("numba")
    call = OPS[op][0]
    x = np.random.default_rng(0).standard_normal((2, 4, 8)).astype(np.float32)
    results = []
    for backend in ("reference", "numba"):
        choose(op, backend)
        t = minifm.tensor(x, requires_grad=True)
        out = call(t)
        (out * out).sum().backward()
        results.append((out.detach().numpy(), t.grad.numpy()))
    for ours, reference in zip(*results):
        np.testing.assert_allclose(ours, reference, rtol=2e-5, atol=2e-6)


def test_auto_on_cuda_uses_the_reference_for_an_op_with_a_cpu_kernel_only(monkeypatch, choose):
    monkeypatch.setattr(kernels, "_numba_cuda_installed", lambda: True)
    choose("layer_norm", "auto")
    assert kernels.select("layer_norm", "cuda", dtype="float32", cols=64) is None


@pytest.mark.parametrize("op", ["gelu", "softmax", "layer_norm"])
def test_a_cpu_kernel_forced_on_cuda_arrays_is_an_error(op, choose):
    choose(op, "numba")
    with pytest.raises(RuntimeError, match="'numba' backend runs on cpu arrays, got cuda"):
        kernels.select(op, "cuda")


@pytest.mark.parametrize("op", ["gelu", "softmax", "layer_norm"])
def test_a_gpu_kernel_that_does_not_exist_is_an_error(op, choose):
    choose(op, "cuda")
    with pytest.raises(RuntimeError, match="'cuda' backend does not exist"):
        kernels.select(op, "cuda")


@pytest.mark.parametrize("op", ["gelu", "softmax", "log_softmax", "layer_norm", "attention"])
def test_a_non_tensor_input_is_refused_by_name_before_dispatch(op):
    name = "scaled_dot_product_attention" if op == "attention" else op
    with pytest.raises(TypeError, match=f"{name}: expected Tensor (input|query), got list"):
        OPS[op][0]([1.0, 2.0])
