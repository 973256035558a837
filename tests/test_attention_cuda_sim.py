"""The Numba-CUDA FlashAttention kernels against minifm's NumPy reference.

Without a GPU they run under Numba's CUDA simulator, which must be switched on before
Numba is first imported, hence a subprocess with NUMBA_ENABLE_CUDASIM=1. The simulator
runs every GPU thread as a Python thread, so shapes are tiny (T <= 16, head size 16);
tiles of TILE keys and blocks of BLOCK threads are still exercised partly filled, with
L != S, masks (one with a fully masked row) and causal attention. Where CuPy sees a GPU,
the second test runs the kernels for real through scaled_dot_product_attention (on the
CuPy stand-in of the tests it skips: there is no GPU for Numba-CUDA to launch on).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minifm
from minifm import backend, kernels
from minifm.ops.attention import scaled_dot_product_attention as sdpa
from conftest import assert_close

pytest.importorskip("numba")

SIMULATED = textwrap.dedent("""
    import math
    import numpy as np
    import minifm
    from minifm import kernels
    from minifm.kernels import flash_attention_cuda as fc
    from minifm.ops.attention import scaled_dot_product_attention as sdpa

    kernels.set_backend("attention", "reference")
    rng = np.random.default_rng(0)

    def reference(q, k, v, bias, causal, scale):
        ts = [minifm.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v)]
        mask = None if bias is None else minifm.tensor(bias.astype(np.float64))
        out = sdpa(*ts, attn_mask=mask, is_causal=causal, scale=scale)
        return out, ts

    def check(name, N, L, S, D, Dv, bias=None, causal=False):
        q = rng.standard_normal((N, L, D)).astype(np.float32)
        k = rng.standard_normal((N, S, D)).astype(np.float32)
        v = rng.standard_normal((N, S, Dv)).astype(np.float32)
        dout = rng.standard_normal((N, L, Dv)).astype(np.float32)
        scale = 1 / math.sqrt(D)
        index = None if bias is None else np.arange(N) % bias.shape[0]
        out, lse = fc.attention_forward(q, k, v, bias, index, causal, scale)
        grads = fc.attention_backward(q, k, v, out, lse, dout, bias, index, causal, scale)
        full_bias = None if bias is None else bias[index]
        expected, ts = reference(q, k, v, full_bias, causal, scale)
        expected.backward(minifm.tensor(dout.astype(np.float64)))
        for got, want in zip((out,) + grads, (expected,) + tuple(t.grad for t in ts)):
            want = want.detach().numpy()
            assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
        print("ok", name)

    check("plain", 2, 13, 16, 16, 16)
    check("causal L<S", 2, 9, 16, 16, 8, causal=True)
    check("causal L>S", 1, 16, 7, 16, 16, causal=True)
    keep = rng.random((1, 11, 14)) > 0.4
    keep[0, 3] = False
    check("bool mask, a fully masked row", 2, 11, 14, 16, 16,
          bias=np.where(keep, 0.0, -np.inf).astype(np.float32))
    padding = rng.standard_normal((2, 1, 14)).astype(np.float32)
    padding[1, 0, :5] = -np.inf
    check("additive padding mask broadcast over queries", 4, 11, 14, 16, 16, bias=padding)
""")


def test_cuda_kernels_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run([sys.executable, "-c", SIMULATED], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == 5


@pytest.mark.skipif(not backend.cuda_is_available(), reason="no CUDA device")
@pytest.mark.skipif("cuda" not in kernels.available_backends("attention"),
                    reason="Numba-CUDA cannot run here: numba-cuda or cupy missing, or the "
                           "CuPy stand-in (no GPU)")
@pytest.mark.parametrize("is_causal", [False, True])
def test_cuda_kernels_on_the_gpu(is_causal):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3, 70, 64)).astype(np.float32) for _ in range(3)]
    results = {}
    for name in ("reference", "cuda"):
        kernels.set_backend("attention", name)
        try:
            ts = [minifm.tensor(a, device="cuda", requires_grad=True) for a in arrays]
            out = sdpa(*ts, is_causal=is_causal)
            out.sum().backward()
            results[name] = [out] + [t.grad for t in ts]
        finally:
            kernels.set_backend("attention", None)
    for ours, ref in zip(results["cuda"], results["reference"]):
        assert_close(ours.cpu(), ref.cpu(), rtol=1e-4, atol=1e-5)
