"""FlashAttention-2 on the CPU: fused softmax attention with Numba, forward and backward.

Attention is O = softmax(scale * Q K^T + bias) V. Materialized, the score matrix is
(L, S) per head; here it never exists whole. Forward cuts the queries into blocks and,
for each block, streams the key blocks past an *online softmax* that keeps, per query,
the running maximum m, the running sum l of exp(s - m) and the running output
acc = sum exp(s - m) v. When a key block raises the maximum from m to m', everything
summed so far is rescaled by exp(m - m'). At the end O = acc / l, and the log-sum-exp
lse = m + log(l) is the only extra thing saved for backward.

Backward recomputes the probabilities from lse, P = exp(s - lse), instead of storing
them, and uses the identity rowsum(P * dP) = rowsum(dO * O) =: delta, so that
dS = P * (dP - delta) needs no second pass over the keys. Then dV = P^T dO,
dQ = scale * dS K and dK = scale * dS^T Q.

Layout. Each tile product is a sum of rank-1 updates out[r, :] += a[r, c] * b[c, :]
(see _matmul_acc) whose inner loop runs along contiguous rows and which LLVM vectorizes.
Those rows should be long, so each pass lays its tiles out with the long index last:
  - forward: scores as sT[key, query] for a block of BLOCK_Q queries and BLOCK_K keys,
    and the output as accT[dim, query]. The per-query softmax statistics (max, rescale,
    sum) are then elementwise vector operations across queries, not horizontal sums.
  - backward: tiles as [query, key] for a block of BACKWARD_BLOCK_K keys against
    BACKWARD_BLOCK_Q queries, and dK, dV accumulated as [dim, key]. Four of its five
    products run along keys; only dQ += dS K runs along the head dimension.
Three of backward's products (dV^T += dO^T P, dK^T += Q^T dS, dQ += dS K) go to NumPy's
OpenBLAS through blas_cpu.gemm where it is found (one BLAS thread inside the tasks), which
at these small tiles beats the rank-1 loops (48 heads, causal, D = 32: backward at T = 64
3.32 -> 2.76 ms one thread, 1.99 -> 1.50 two; T = 128 10.84 -> 8.41 and 5.31 -> 4.19; T = 256,
D = 64 41.7 -> 37.8; results within 4e-6 of the loops'). The scores (Q K^T) and dP = dO V^T
stay on _matmul_acc: forward and backward must compute the scores bit for bit alike, and dP
must match delta's order of summation (below); the forward's P V through BLAS gained nothing.

Numbers. No blanket fastmath: only "contract" (fused multiply-add) is allowed, because
masks are -inf scores and fully masked rows must come out exactly as PyTorch's (output 0,
gradients 0). exp, the one transcendental in the inner loop, is computed by exp_inplace
(kernels/cpu_exp.py) with arithmetic that LLVM vectorizes (libm's exp is a scalar call
per element), once per tile rather than once per row: rows of 64 are short loops, and one
call over the tile gave the same bits in less time (48 heads, causal, D = 32, one thread:
T = 64 forward 2.09 -> 1.73 ms, backward 4.32 -> 3.88; T = 128 5.51 -> 4.79, 11.99 -> 11.25;
T = 256, D = 64 within 4%).

Parallelism: forward runs one task per (head, query block); backward one task per head
(see _backward). Memory beyond the inputs and outputs: per thread, tiles of a block's
size; per head, two numbers per query (lse, delta). Nothing is O(L * S).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .blas_cpu import NO_TRANS, TRANS, gemm, gemm_address, one_blas_thread, pointer
from .cpu_tasks import in_forked_child
from .cpu_exp import DTYPES, exp_constants, exp_inplace

# Tile sizes measured with benchmarks/bench_attention.py (B=4, H=8, D=64, float32, 2 cores).
BLOCK_Q = 256           # forward: queries per task, the vector direction
BLOCK_K = 64            # forward: keys per step of the online softmax
BACKWARD_BLOCK_K = 256  # backward: keys whose dK, dV are accumulated, the vector direction
BACKWARD_BLOCK_Q = 64   # backward: queries per step

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH)
def _matmul_acc(a, b, out, n_rows, n_inner, n_cols):
    """out[:n_rows, :n_cols] += a[:n_rows, :n_inner] @ b[:n_inner, :n_cols].

    b and out must be C-contiguous: their rows are the vectorized inner loop. a may be any
    view (a transposed one too): its elements are read one at a time. Blocks of 4 rows of
    out take 4 rows of b at a time, so each loaded element of out gets 4 multiply-adds
    before it is stored back and each loaded row element of b feeds 4 rows.

    Every element of out is summed in the same order, whether it falls in a block of 4
    rows or not and whether LLVM puts it in a vector lane or in the scalar remainder, so
    forward and backward compute bitwise identical scores although they tile them
    differently: with scores of order 1e4, a last-bit difference would change
    P = exp(s - lse) by 1e-3 relative.
    """
    i = 0
    while i + 4 <= n_rows:
        r = 0
        while r + 4 <= n_inner:
            a00, a01, a02, a03 = a[i, r], a[i, r + 1], a[i, r + 2], a[i, r + 3]
            a10, a11, a12, a13 = a[i + 1, r], a[i + 1, r + 1], a[i + 1, r + 2], a[i + 1, r + 3]
            a20, a21, a22, a23 = a[i + 2, r], a[i + 2, r + 1], a[i + 2, r + 2], a[i + 2, r + 3]
            a30, a31, a32, a33 = a[i + 3, r], a[i + 3, r + 1], a[i + 3, r + 2], a[i + 3, r + 3]
            for j in range(n_cols):
                b0, b1, b2, b3 = b[r, j], b[r + 1, j], b[r + 2, j], b[r + 3, j]
                out[i, j] += a00 * b0 + a01 * b1 + a02 * b2 + a03 * b3
                out[i + 1, j] += a10 * b0 + a11 * b1 + a12 * b2 + a13 * b3
                out[i + 2, j] += a20 * b0 + a21 * b1 + a22 * b2 + a23 * b3
                out[i + 3, j] += a30 * b0 + a31 * b1 + a32 * b2 + a33 * b3
            r += 4
        while r < n_inner:
            a0, a1, a2, a3 = a[i, r], a[i + 1, r], a[i + 2, r], a[i + 3, r]
            for j in range(n_cols):
                out[i, j] += a0 * b[r, j]
                out[i + 1, j] += a1 * b[r, j]
                out[i + 2, j] += a2 * b[r, j]
                out[i + 3, j] += a3 * b[r, j]
            r += 1
        i += 4
    while i < n_rows:  # the rows left over, with the same grouping of the sums
        r = 0
        while r + 4 <= n_inner:
            a0, a1, a2, a3 = a[i, r], a[i, r + 1], a[i, r + 2], a[i, r + 3]
            for j in range(n_cols):
                out[i, j] += a0 * b[r, j] + a1 * b[r + 1, j] + a2 * b[r + 2, j] + a3 * b[r + 3, j]
            r += 4
        while r < n_inner:
            for j in range(n_cols):
                out[i, j] += a[i, r] * b[r, j]
            r += 1
        i += 1


@njit(cache=True, fastmath=_FASTMATH)
def _add_bias(tile, has_bias, slab, r0, c0, causal, q_axis):
    """tile[r, c] += slab[r0 + r, c0 + c] (slab axes of size 1 broadcast), and -inf where
    the key lies after the query when causal (PyTorch's top-left alignment: key j is seen
    by queries i >= j). q_axis says whether the tile's rows (0) or columns (1) are queries."""
    n_rows, n_cols = tile.shape
    if has_bias:
        for r in range(n_rows):
            row = slab[r0 + r if slab.shape[0] > 1 else 0]
            if slab.shape[1] > 1:
                for c in range(n_cols):
                    tile[r, c] += row[c0 + c]
            else:
                for c in range(n_cols):
                    tile[r, c] += row[0]
    if causal:
        for r in range(n_rows):
            if q_axis == 0:   # masked columns: keys c0 + c > query r0 + r
                for c in range(max(r0 + r + 1 - c0, 0), n_cols):
                    tile[r, c] = -np.inf
            else:             # masked columns: queries c0 + c < key r0 + r
                for c in range(min(max(r0 + r - c0, 0), n_cols)):
                    tile[r, c] = -np.inf


@njit(cache=True, fastmath=_FASTMATH)
def _forward_block(q, k, v, has_bias, bias, bias_index, scale, causal, c, out, lse, bh, i0):
    """Queries i0 .. i0 + BLOCK_Q of head bh: their rows of out and lse. Tiles are
    [key, query] and [dim, query]; bias slabs arrive transposed, as [key, query]."""
    L, D = q.shape[1], q.shape[2]
    S, Dv = k.shape[1], v.shape[2]
    nq = min(i0 + BLOCK_Q, L) - i0
    qT = np.empty((D, nq), q.dtype)
    for i in range(nq):
        for d in range(D):
            qT[d, i] = q[bh, i0 + i, d] * scale
    sT = np.empty((BLOCK_K, nq), q.dtype)
    accT = np.zeros((Dv, nq), q.dtype)
    m = np.full(nq, -np.inf, q.dtype)      # running max per query
    l = np.zeros(nq, q.dtype)              # running sum of exp(s - m)
    m_new = np.empty(nq, q.dtype)
    shift = np.empty(nq, q.dtype)
    alpha = np.empty(nq, q.dtype)
    slab = bias[bias_index[bh]]
    j_end = min(S, i0 + nq) if causal else S   # causal: later keys are masked for all
    for j0 in range(0, j_end, BLOCK_K):
        nk = min(j0 + BLOCK_K, j_end) - j0
        tile = sT[:nk]
        tile[:] = 0
        _matmul_acc(k[bh, j0:j0 + nk], qT, tile, nk, D, nq)
        _add_bias(tile, has_bias, slab, j0, i0, causal, 1)
        m_new[:] = m
        for j in range(nk):
            for i in range(nq):
                m_new[i] = max(m_new[i], tile[j, i])
        for i in range(nq):
            # every key so far masked: keep m = -inf, but subtract 0 rather than -inf
            shift[i] = m_new[i] if m_new[i] > -np.inf else 0
            alpha[i] = m[i] - shift[i]   # the rescaling, exp(m - m'); 0 while m = -inf
            m[i] = m_new[i]
        exp_inplace(alpha, c)
        for j in range(nk):
            for i in range(nq):
                tile[j, i] -= shift[i]
        flat = tile.reshape(nk * nq)  # one exp over the tile: rows of nq are short loops
        exp_inplace(flat, c)
        for i in range(nq):
            l[i] *= alpha[i]
        for j in range(nk):
            for i in range(nq):
                l[i] += tile[j, i]
        for d in range(Dv):
            for i in range(nq):
                accT[d, i] *= alpha[i]
        _matmul_acc(v[bh, j0:j0 + nk].T, tile, accT, Dv, nk, nq)
    for i in range(nq):
        if l[i] == 0:  # every key masked: PyTorch returns zeros (a "safe" softmax)
            out[bh, i0 + i, :] = 0
            lse[bh, i0 + i] = -np.inf
        else:          # (a NaN score makes l, and so the row, NaN)
            inv = 1 / l[i]
            for d in range(Dv):
                out[bh, i0 + i, d] = accT[d, i] * inv
            lse[bh, i0 + i] = m[i] + math.log(l[i])


@njit(parallel=True, cache=True)
def _forward(q, k, v, has_bias, bias, bias_index, scale, causal, c, out, lse):
    n_blocks = (q.shape[1] + BLOCK_Q - 1) // BLOCK_Q
    # One task per (head, query block): tasks write disjoint rows of out and lse.
    for task in prange(q.shape[0] * n_blocks):
        _forward_block(q, k, v, has_bias, bias, bias_index, scale, causal, c, out, lse,
                       task // n_blocks, (task % n_blocks) * BLOCK_Q)


@njit(cache=True, fastmath=_FASTMATH)
def _backward_head(address, q, k, v, out, lse, dout, has_bias, bias, bias_index, scale,
                   causal, c, dq, dk, dv, bh):
    """dq, dk, dv of head bh. Tiles are [query, key] and [dim, key]; bias slabs arrive as
    [query, key]."""
    L, D = q.shape[1], q.shape[2]
    S, Dv = k.shape[1], v.shape[2]
    # delta = rowsum(dO * O), each a (1, Dv) @ (Dv, 1) product summed in the same order as
    # dP = dO V^T below: where P is one-hot, O is exactly that v and dP - delta exactly 0.
    delta = np.zeros((L, 1), q.dtype)
    shift = np.empty(L, q.dtype)  # P = exp(s - shift); +inf for a fully masked query: P = 0
    for i in range(L):
        _matmul_acc(dout[bh, i:i + 1], out[bh, i].reshape((Dv, 1)), delta[i:i + 1], 1, Dv, 1)
        shift[i] = lse[bh, i] if lse[bh, i] != -np.inf else np.inf
    dq[bh] = 0
    one = dq.dtype.type(1)
    slab = bias[bias_index[bh]]
    for j0 in range(0, S, BACKWARD_BLOCK_K):
        nk = min(j0 + BACKWARD_BLOCK_K, S) - j0
        kT = np.empty((D, nk), q.dtype)
        vT = np.empty((Dv, nk), q.dtype)
        for j in range(nk):
            for d in range(D):
                kT[d, j] = k[bh, j0 + j, d]
            for e in range(Dv):
                vT[e, j] = v[bh, j0 + j, e]
        dkT = np.zeros((D, nk), q.dtype)
        dvT = np.zeros((Dv, nk), q.dtype)
        qs = np.empty((BACKWARD_BLOCK_Q, D), q.dtype)
        p = np.empty((BACKWARD_BLOCK_Q, nk), q.dtype)
        ds = np.empty((BACKWARD_BLOCK_Q, nk), q.dtype)
        # causal: queries before j0 see none of these keys
        q_start = j0 - j0 % BACKWARD_BLOCK_Q if causal else 0
        for i0 in range(q_start, L, BACKWARD_BLOCK_Q):
            nq = min(i0 + BACKWARD_BLOCK_Q, L) - i0
            p_tile, ds_tile = p[:nq], ds[:nq]
            # The scores exactly as forward computed them (scaled queries, the same order of
            # multiply-adds), so that exp(s - lse) is consistent with lse even where the
            # scores are large and their rounding error is not small.
            for i in range(nq):
                for d in range(D):
                    qs[i, d] = q[bh, i0 + i, d] * scale
            p_tile[:] = 0
            _matmul_acc(qs, kT, p_tile, nq, D, nk)
            _add_bias(p_tile, has_bias, slab, i0, j0, causal, 0)
            for i in range(nq):
                for j in range(nk):
                    p_tile[i, j] -= shift[i0 + i]
            flat = p_tile.reshape(nq * nk)  # one exp over the tile, as in forward
            exp_inplace(flat, c)
            # dV^T += dO^T P
            if address:
                gemm(address, TRANS, NO_TRANS, Dv, nk, nq, one, pointer(dout, (bh * L + i0) * Dv),
                     Dv, pointer(p_tile, 0), nk, one, pointer(dvT, 0), nk)
            else:
                _matmul_acc(dout[bh, i0:i0 + nq].T, p_tile, dvT, Dv, nq, nk)
            # dP = dO V^T, then dS = P * (dP - delta), with the scale of dQ and dK folded in
            ds_tile[:] = 0
            _matmul_acc(dout[bh, i0:i0 + nq], vT, ds_tile, nq, Dv, nk)
            for i in range(nq):
                for j in range(nk):
                    ds_tile[i, j] = p_tile[i, j] * (ds_tile[i, j] - delta[i0 + i, 0]) * scale
            # dK^T += Q^T dS and dQ += dS K
            if address:
                gemm(address, TRANS, NO_TRANS, D, nk, nq, one, pointer(q, (bh * L + i0) * D), D,
                     pointer(ds_tile, 0), nk, one, pointer(dkT, 0), nk)
                gemm(address, NO_TRANS, NO_TRANS, nq, D, nk, one, pointer(ds_tile, 0), nk,
                     pointer(k, (bh * S + j0) * D), D, one, pointer(dq, (bh * L + i0) * D), D)
            else:
                _matmul_acc(q[bh, i0:i0 + nq].T, ds_tile, dkT, D, nq, nk)
                _matmul_acc(ds_tile, k[bh, j0:j0 + nk], dq[bh, i0:i0 + nq], nq, nk, D)
        dk[bh, j0:j0 + nk] = dkT.T
        dv[bh, j0:j0 + nk] = dvT.T


@njit(parallel=True, cache=True)
def _backward(address, q, k, v, out, lse, dout, has_bias, bias, bias_index, scale, causal,
              c, dq, dk, dv):
    # One task per head. dQ of a query sums over all key blocks and dK, dV of a key over
    # all query blocks, so splitting a head across threads would make them write the same
    # rows; a whole head per task owns its rows of dq, dk, dv and needs no locks or
    # per-thread copies. B * H is at least the core count in any realistic training batch.
    for bh in prange(q.shape[0]):
        # np.int64: Numba types a prange index as unsigned in one pass and signed in
        # another, which would compile _backward_head twice
        _backward_head(address, q, k, v, out, lse, dout, has_bias, bias, bias_index, scale,
                       causal, c, dq, dk, dv, np.int64(bh))


def supports(dtype, head_dim, value_dim):
    """None when the kernels can run this problem, else the reason they cannot."""
    if dtype not in DTYPES:
        return f"the Numba attention kernel takes float32 or float64, got {dtype}"
    if in_forked_child():
        return "a forked child cannot run the kernel's parallel loops (see cpu_tasks)"
    return None


def _prepare(q, bias, bias_index, transpose):
    """The kernels' form of the mask: slabs (M, L or 1, S or 1), transposed for the forward
    tiles, and the int64 slab index of each head. Without a mask, a one-element stand-in
    of the same Numba type, so that one compiled kernel serves both cases."""
    if bias is None:
        return np.zeros((1, 1, 1), q.dtype), np.zeros(q.shape[0], np.int64)
    slabs = bias.transpose(0, 2, 1) if transpose else bias
    # writeable too: Numba compiles read-only arrays as a type of their own
    return (np.require(slabs, q.dtype, ["C", "W"]), np.require(bias_index, np.int64, ["C", "W"]))


def _check(name, *arrays):
    for a in arrays:
        if a.dtype not in DTYPES or not a.flags.c_contiguous or a.ndim != 3:
            raise TypeError(f"{name}: expected C-contiguous 3-D float32 or float64 arrays, got "
                            f"{a.dtype} of shape {a.shape}")


def attention_forward(q, k, v, bias=None, bias_index=None, is_causal=False, scale=1.0):
    """Fused attention forward on (N, L, E), (N, S, E), (N, S, Ev) arrays of one dtype.

    bias: None or an additive mask of shape (M, L or 1, S or 1); head n uses slab
    bias_index[n]. Returns out (N, L, Ev) and lse (N, L), the log-sum-exp of each row of
    scores (-inf for a fully masked row).
    """
    _check("flash attention forward", q, k, v)
    n, L, _ = q.shape
    out = np.empty((n, L, v.shape[2]), q.dtype)
    lse = np.empty((n, L), q.dtype)
    slabs, index = _prepare(q, bias, bias_index, transpose=True)
    _forward(q, k, v, bias is not None, slabs, index, q.dtype.type(scale), bool(is_causal),
             exp_constants(q.dtype), out, lse)
    return out, lse


def attention_backward(q, k, v, out, lse, grad_out, bias=None, bias_index=None,
                       is_causal=False, scale=1.0):
    """Gradients (dq, dk, dv) of attention_forward's output, given grad_out = dL/dout."""
    _check("flash attention backward", q, k, v, out, grad_out)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    slabs, index = _prepare(q, bias, bias_index, transpose=False)
    with one_blas_thread():  # the products run inside the prange's tasks
        _backward(gemm_address(q.dtype), q, k, v, out, lse, grad_out, bias is not None, slabs,
                  index, q.dtype.type(scale), bool(is_causal), exp_constants(q.dtype),
                  dq, dk, dv)
    return dq, dk, dv
