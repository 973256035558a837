"""kernels.blas_cpu.gemm, NumPy's OpenBLAS product called from Numba code, against NumPy's
matmul: both transposes, offsets into larger buffers, leading dimensions wider than the
rows, beta accumulating, float32 and float64."""
import numpy as np
import pytest

numba = pytest.importorskip("numba")
from minifm.kernels import blas_cpu  # noqa: E402


@numba.njit
def _gemm(address, trans_a, trans_b, m, n, k, alpha, a, a_offset, lda, b, ldb, beta, c,
          c_offset, ldc):
    blas_cpu.gemm(address, trans_a, trans_b, m, n, k, alpha,
                  a.ctypes.data + numba.uint64(a_offset * a.itemsize), lda, b.ctypes.data, ldb,
                  beta, c.ctypes.data + numba.uint64(c_offset * c.itemsize), ldc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_matches_numpy(dtype, trans_a, trans_b):
    address = blas_cpu.gemm_address(dtype)
    if not address:
        pytest.skip("NumPy's BLAS is not a bundled 64-bit-integer OpenBLAS")
    rng = np.random.default_rng(0)
    m, n, k, pad = 7, 5, 11, 3
    a_full = rng.standard_normal(100 + (k * (m + pad) if trans_a else m * (k + pad))).astype(dtype)
    a_store = a_full[10:10 + (k * (m + pad) if trans_a else m * (k + pad))]
    a = a_store.reshape((k, m + pad) if trans_a else (m, k + pad))
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m + 2) * (n + 1)).astype(dtype)
    expected = c.copy().reshape(m + 2, n + 1)
    op_a = (a[:, :m].T if trans_a else a[:, :k])
    op_b = b.T if trans_b else b
    expected[1:1 + m, :n] = 2 * op_a @ op_b + 0.5 * expected[1:1 + m, :n]
    _gemm(address, blas_cpu.TRANS if trans_a else blas_cpu.NO_TRANS,
          blas_cpu.TRANS if trans_b else blas_cpu.NO_TRANS, m, n, k, dtype(2), a_full, 10,
          a.shape[1], b, b.shape[1], dtype(0.5), c, n + 1, n + 1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c.reshape(m + 2, n + 1), expected, rtol=tol, atol=tol)


def test_gemm_address_is_zero_for_other_dtypes():
    assert blas_cpu.gemm_address(np.int32) == 0


def test_one_blas_thread_restores_the_count_when_the_last_context_closes():
    """Contexts overlap when two threads run convolutions at once: the count is 1 until the
    last one closes, then what it was (each restoring its own saved count left it at 1)."""
    functions = blas_cpu._blas_thread_functions()
    if functions is None:
        pytest.skip("NumPy's BLAS is not a bundled OpenBLAS")
    get, set_ = functions
    before = get()
    set_(3)
    try:
        first, second = blas_cpu.one_blas_thread(), blas_cpu.one_blas_thread()
        first.__enter__()
        second.__enter__()
        assert get() == 1
        first.__exit__(None, None, None)
        assert get() == 1
        second.__exit__(None, None, None)
        assert get() == 3
    finally:
        set_(before)


def test_gemm_refuses_alpha_and_beta_of_another_type():
    """A Python float is float64 to Numba: passed to sgemm it would be read as garbage."""
    address = blas_cpu.gemm_address(np.float32)
    if not address:
        pytest.skip("NumPy's BLAS is not a bundled 64-bit-integer OpenBLAS")
    a = np.ones((2, 2), np.float32)
    with pytest.raises(numba.core.errors.TypingError, match="alpha and beta"):
        _gemm(address, blas_cpu.NO_TRANS, blas_cpu.NO_TRANS, 2, 2, 2, 1.0, a, 0, 2, a, 2,
              np.float32(0), a, 0, 2)
