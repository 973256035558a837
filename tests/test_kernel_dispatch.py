"""minifm.kernels.select: an op without a GPU kernel falls back to the reference on a GPU."""
import minifm.kernels as kernels


def test_auto_on_cuda_uses_the_reference_for_an_op_with_a_cpu_kernel_only(monkeypatch):
    monkeypatch.setattr(kernels, "_numba_cuda_installed", lambda: True)
    kernels.set_backend("layer_norm", "auto")
    try:
        assert kernels.select("layer_norm", "cuda", dtype="float32", cols=64) is None
    finally:
        kernels.set_backend("layer_norm", None)
