"""NumPy's BLAS, seen from the Numba kernels: its thread count, and its matrix product
called from inside compiled, GIL-free code.

Why call BLAS from Numba: a kernel that alternates Numba loops and NumPy products (the
convolution's im2col, product, col2im, chunk after chunk) returns to Python between
them, and every return takes the GIL. On one thread that is ~20 us of Python a chunk
(a fifth of a 32-channel 16x16 layer's forward); on two threads it is worse, because each
thread waits for the GIL the other holds: two threads each doing half the chunks took
4.5-6 ms where one thread did them all in 5.9 ms (measured on one such forward, batch 64).
A Numba function that calls the product itself runs a whole share of chunks in one call,
without the GIL.

How: NumPy's wheels bundle OpenBLAS (scipy-openblas, the 64-bit-integer build, its symbols
suffixed `64_`); ctypes finds `cblas_sgemm` / `cblas_dgemm` there, and the `gemm`
intrinsic below calls the function at that address. The address is an argument, not a
constant compiled in, so the kernels stay cacheable (a compiled-in pointer would be stale
in the next process). Where the bundle is not found (NumPy built against another BLAS:
Accelerate on Apple silicon, MKL, a 32-bit-integer OpenBLAS), `gemm_address` is 0 and the
kernels keep their NumPy path.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading

import numpy as np
from llvmlite import ir
from numba import njit, types, uint64
from numba.core.errors import TypingError
from numba.extending import intrinsic

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enum values

_library = []  # [the ctypes handle of NumPy's OpenBLAS, or None where it is not found]


def _openblas():
    """NumPy's bundled OpenBLAS (ctypes), or None."""
    if not _library:
        here = os.path.dirname(np.__file__)
        found = None
        for path in (glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                     + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
            try:
                found = ctypes.CDLL(path)
                break
            except OSError:
                continue
        _library.append(found)
    return _library[0]


def _symbol(names):
    """The first of `names` that NumPy's OpenBLAS exports, or None."""
    library = _openblas()
    for name in names if library is not None else ():
        function = getattr(library, name, None)
        if function is not None:
            return function
    return None


_GEMM_NAMES = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
               np.dtype(np.float64): ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}
_addresses = {}


def gemm_address(dtype):
    """The address of the 64-bit-integer cblas_?gemm of NumPy's OpenBLAS for float32 or
    float64, or 0 where there is none (see the module's docstring)."""
    dtype = np.dtype(dtype)
    if dtype not in _addresses:
        function = _symbol(_GEMM_NAMES.get(dtype, ()))
        _addresses[dtype] = ctypes.cast(function, ctypes.c_void_p).value if function else 0
    return _addresses[dtype]


@intrinsic
def gemm(typingctx, address, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
         ldc):
    """C = alpha * op(A) @ op(B) + beta * C, row-major, by the cblas_?gemm at `address`
    (gemm_address). A, B and C are given by address (an array's `.ctypes.data` plus an
    offset in bytes); op(A) is m x k, op(B) k x n, C m x n; trans_a / trans_b are NO_TRANS
    or TRANS; alpha and beta have the routine's float type (float32 for sgemm, float64 for
    dgemm: a Python float is float64 to Numba, and sgemm would read garbage from it), which
    is checked against each other, not against the routine. Sizes are converted to int64."""
    if alpha not in (types.float32, types.float64) or beta != alpha:
        raise TypingError(f"gemm: alpha and beta must both be float32 or both float64 (the "
                          f"routine's type), got {alpha} and {beta}")
    sig = types.void(address, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    real = alpha

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        value = context.get_value_type(real)
        pointer = value.as_pointer()
        function_type = ir.FunctionType(ir.VoidType(), [
            i32, i32, i32, i64, i64, i64, value, pointer, i64, pointer, i64, value, pointer,
            i64])
        (address_, trans_a_, trans_b_, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_,
         ldc_) = args

        def integer(v, width):
            return builder.sextend(v, width) if v.type.width < width.width else \
                builder.trunc(v, width) if v.type.width > width.width else v

        function = builder.inttoptr(address_, function_type.as_pointer())
        builder.call(function, [
            ir.Constant(i32, ROW_MAJOR), integer(trans_a_, i32), integer(trans_b_, i32),
            integer(m_, i64), integer(n_, i64), integer(k_, i64), alpha_,
            builder.inttoptr(a_, pointer), integer(lda_, i64), builder.inttoptr(b_, pointer),
            integer(ldb_, i64), beta_, builder.inttoptr(c_, pointer), integer(ldc_, i64)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def pointer(a, offset):
    """The address of element `offset` of a's flat memory (a is contiguous): how gemm's
    callers name a matrix that starts inside an array."""
    return a.ctypes.data + uint64(offset * a.itemsize)


_thread_functions = []  # [(get, set) of NumPy's BLAS thread count, or None]


def _blas_thread_functions():
    """(get, set) of the thread count of NumPy's OpenBLAS, or None where it is not found.
    threadpoolctl does the same through a heavier API; it is not one of minifm's
    dependencies."""
    for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                           ("openblas", "64_"), ("openblas", "")):
        get = _symbol((f"{prefix}_get_num_threads{suffix}",))
        set_ = _symbol((f"{prefix}_set_num_threads{suffix}",))
        if get is not None and set_ is not None:
            return get, set_
    return None


def _thread_count_functions():
    """(get, set) of NumPy's OpenBLAS thread count, or None where it is not found (found
    once)."""
    if not _thread_functions:
        _thread_functions.append(_blas_thread_functions())
    return _thread_functions[0]


_one_thread = threading.Lock()
_one_thread_users = [0, None]  # [contexts inside one_blas_thread, the count to restore]


def one_thread_for_good():
    """Set NumPy's OpenBLAS to one thread from now on, where minifm can call it from its
    own threads (gemm_address finds it): minifm then cuts large products among its own
    threads (matmul_cpu), and OpenBLAS's threads, which spin after each product, would only
    take cores from them. Returns whether it was set."""
    functions = _thread_count_functions()
    if functions is None or not gemm_address(np.float32):
        return False
    with _one_thread:
        functions[1](1)
        _one_thread_users[1] = 1  # what an open one_blas_thread context restores
    return True


@contextlib.contextmanager
def one_blas_thread():
    """A context in which NumPy's BLAS runs one thread; the count it had is restored when
    the last such context open in the process closes (the count is global to the process:
    two threads saving and restoring it each for themselves left it at 1 for good when
    their contexts overlapped). Entering and leaving costs about a microsecond."""
    functions = _thread_count_functions()
    if functions is None:  # the BLAS thread count stays as it is
        yield
        return
    get, set_ = functions
    with _one_thread:
        if _one_thread_users[0] == 0:
            _one_thread_users[1] = get()
            set_(1)
        _one_thread_users[0] += 1
    try:
        yield
    finally:
        with _one_thread:
            _one_thread_users[0] -= 1
            if _one_thread_users[0] == 0:
                set_(_one_thread_users[1])
