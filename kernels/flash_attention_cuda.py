"""FlashAttention-2 on NVIDIA GPUs with Numba-CUDA: the same algorithm as
flash_attention_cpu (read that docstring first), mapped onto thread blocks.

Forward: a thread block takes BLOCK query rows of one head, one thread per row. The
threads load a tile of TILE keys and values into shared memory together, then each runs
the online softmax for its own row over the tile (running max m, sum l, output acc in
registers/local memory), and the block moves to the next tile. Causal attention stops at
the block's last query.

Backward, without atomics: two kernels that each recompute P = exp(s - lse).
  - _dq_kernel: one thread per query row streams key/value tiles, as forward does, and
    accumulates dQ_i = scale * sum_j dS_ij k_j.
  - _dkdv_kernel: one thread per key row streams query/grad-output tiles and accumulates
    dV_j = sum_i P_ij dO_i and dK_j = scale * sum_i dS_ij q_i.
with dS_ij = P_ij (dO_i . v_j - delta_i) and delta_i = rowsum(dO_i * O_i) computed first.

Arrays are float32 CuPy arrays, reached through __cuda_array_interface__; kernels are
launched on CuPy's current stream. Head sizes up to MAX_D. Under the CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, no GPU) the same code runs on NumPy arrays, which is how the
tests check it on machines without a GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, float32

BLOCK = 64   # threads per block, one row each
TILE = 32    # rows of the tiles staged in shared memory
MAX_D = 128  # largest head size: the per-thread rows are local arrays of this length
# float32 constants: a Python float literal is a float64 in a kernel and would pull the
# arithmetic around it into double precision, many times slower on most GPUs.
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_NEG_INF = np.float32(-np.inf)


@cuda.jit(device=True)
def _bias_at(bias, bias_index, bh, i, j):
    """The additive mask for query i and key j of head bh; slab axes of size 1 broadcast."""
    row = i if bias.shape[1] > 1 else 0
    col = j if bias.shape[2] > 1 else 0
    return bias[bias_index[bh], row, col]


@cuda.jit(device=True)
def _load_tile(src, bh, r0, n_rows, tile):
    """tile[:n_rows, :D] = src[bh, r0:r0 + n_rows], all threads of the block helping."""
    D = src.shape[2]
    for idx in range(cuda.threadIdx.x, n_rows * D, cuda.blockDim.x):
        tile[idx // D, idx % D] = src[bh, r0 + idx // D, idx % D]


@cuda.jit
def _forward_kernel(q, k, v, has_bias, bias, bias_index, scale, causal, out, lse):
    bh = cuda.blockIdx.y
    block_start = cuda.blockIdx.x * BLOCK
    i = block_start + cuda.threadIdx.x
    L, D = q.shape[1], q.shape[2]
    S, Dv = k.shape[1], v.shape[2]
    k_tile = cuda.shared.array((TILE, MAX_D), float32)
    v_tile = cuda.shared.array((TILE, MAX_D), float32)
    q_row = cuda.local.array(MAX_D, float32)
    acc = cuda.local.array(MAX_D, float32)
    s = cuda.local.array(TILE, float32)
    active = i < L
    if active:
        for d in range(D):
            q_row[d] = q[bh, i, d] * scale
    for e in range(Dv):
        acc[e] = _ZERO
    m = _NEG_INF
    l = _ZERO
    j_end = min(S, min(L, block_start + BLOCK)) if causal else S
    for j0 in range(0, j_end, TILE):
        nk = min(TILE, j_end - j0)
        _load_tile(k, bh, j0, nk, k_tile)
        _load_tile(v, bh, j0, nk, v_tile)
        cuda.syncthreads()
        if active:
            tile_max = _NEG_INF
            for j in range(nk):
                x = _ZERO
                for d in range(D):
                    x += q_row[d] * k_tile[j, d]
                if has_bias:
                    x += _bias_at(bias, bias_index, bh, i, j0 + j)
                if causal and j0 + j > i:
                    x = _NEG_INF
                s[j] = x
                tile_max = max(tile_max, x)
            m_new = max(m, tile_max)
            if m_new > _NEG_INF:  # else every key so far is masked: nothing to add
                alpha = math.exp(m - m_new)
                l *= alpha
                for e in range(Dv):
                    acc[e] *= alpha
                for j in range(nk):
                    p = math.exp(s[j] - m_new)
                    l += p
                    for e in range(Dv):
                        acc[e] += p * v_tile[j, e]
                m = m_new
        cuda.syncthreads()
    if active:
        inv = _ONE / l if l != _ZERO else _ZERO  # a fully masked row gives zeros (PyTorch)
        for e in range(Dv):
            out[bh, i, e] = acc[e] * inv
        lse[bh, i] = m + math.log(l) if l != _ZERO else _NEG_INF


@cuda.jit(device=True)
def _prob(x, lse_i):
    """P = exp(s - lse), 0 for a fully masked query (lse = -inf)."""
    return math.exp(x - lse_i) if lse_i != _NEG_INF else _ZERO


@cuda.jit
def _dq_kernel(q, k, v, lse, delta, dout, has_bias, bias, bias_index, scale, causal, dq):
    bh = cuda.blockIdx.y
    block_start = cuda.blockIdx.x * BLOCK
    i = block_start + cuda.threadIdx.x
    L, D = q.shape[1], q.shape[2]
    S, Dv = k.shape[1], v.shape[2]
    k_tile = cuda.shared.array((TILE, MAX_D), float32)
    v_tile = cuda.shared.array((TILE, MAX_D), float32)
    q_row = cuda.local.array(MAX_D, float32)
    do_row = cuda.local.array(MAX_D, float32)
    acc = cuda.local.array(MAX_D, float32)
    active = i < L
    lse_i = _NEG_INF
    delta_i = _ZERO
    if active:
        for d in range(D):
            q_row[d] = q[bh, i, d] * scale
        for e in range(Dv):
            do_row[e] = dout[bh, i, e]
        lse_i = lse[bh, i]
        delta_i = delta[bh, i]
    for d in range(D):
        acc[d] = _ZERO
    j_end = min(S, min(L, block_start + BLOCK)) if causal else S
    for j0 in range(0, j_end, TILE):
        nk = min(TILE, j_end - j0)
        _load_tile(k, bh, j0, nk, k_tile)
        _load_tile(v, bh, j0, nk, v_tile)
        cuda.syncthreads()
        if active:
            for j in range(nk):
                if causal and j0 + j > i:
                    break
                x = _ZERO
                for d in range(D):
                    x += q_row[d] * k_tile[j, d]
                if has_bias:
                    x += _bias_at(bias, bias_index, bh, i, j0 + j)
                p = _prob(x, lse_i)
                dp = _ZERO
                for e in range(Dv):
                    dp += do_row[e] * v_tile[j, e]
                ds = p * (dp - delta_i)
                for d in range(D):
                    acc[d] += ds * k_tile[j, d]
        cuda.syncthreads()
    if active:
        for d in range(D):
            dq[bh, i, d] = acc[d] * scale


@cuda.jit
def _dkdv_kernel(q, k, v, lse, delta, dout, has_bias, bias, bias_index, scale, causal, dk, dv):
    bh = cuda.blockIdx.y
    block_start = cuda.blockIdx.x * BLOCK
    j = block_start + cuda.threadIdx.x
    L, D = q.shape[1], q.shape[2]
    S, Dv = k.shape[1], v.shape[2]
    q_tile = cuda.shared.array((TILE, MAX_D), float32)
    do_tile = cuda.shared.array((TILE, MAX_D), float32)
    lse_tile = cuda.shared.array(TILE, float32)
    delta_tile = cuda.shared.array(TILE, float32)
    k_row = cuda.local.array(MAX_D, float32)
    v_row = cuda.local.array(MAX_D, float32)
    dk_acc = cuda.local.array(MAX_D, float32)
    dv_acc = cuda.local.array(MAX_D, float32)
    active = j < S
    if active:
        for d in range(D):
            k_row[d] = k[bh, j, d] * scale
        for e in range(Dv):
            v_row[e] = v[bh, j, e]
    for d in range(D):
        dk_acc[d] = _ZERO
    for e in range(Dv):
        dv_acc[e] = _ZERO
    i_start = block_start if causal else 0  # causal: earlier queries see none of these keys
    for i0 in range(i_start, L, TILE):
        nq = min(TILE, L - i0)
        _load_tile(q, bh, i0, nq, q_tile)
        _load_tile(dout, bh, i0, nq, do_tile)
        t = cuda.threadIdx.x
        if t < nq:
            lse_tile[t] = lse[bh, i0 + t]
            delta_tile[t] = delta[bh, i0 + t]
        cuda.syncthreads()
        if active:
            for ii in range(nq):
                if causal and i0 + ii < j:
                    continue
                x = _ZERO
                for d in range(D):
                    x += q_tile[ii, d] * k_row[d]
                if has_bias:
                    x += _bias_at(bias, bias_index, bh, i0 + ii, j)
                p = _prob(x, lse_tile[ii])
                dp = _ZERO
                for e in range(Dv):
                    dv_acc[e] += p * do_tile[ii, e]
                    dp += do_tile[ii, e] * v_row[e]
                ds = p * (dp - delta_tile[ii])
                for d in range(D):
                    dk_acc[d] += ds * q_tile[ii, d]
        cuda.syncthreads()
    if active:
        for d in range(D):
            dk[bh, j, d] = dk_acc[d] * scale
        for e in range(Dv):
            dv[bh, j, e] = dv_acc[e]


def supports(dtype, head_dim, value_dim):
    """None when the kernels can run this problem, else the reason they cannot."""
    if dtype != np.float32:
        return f"the CUDA attention kernel takes float32, got {dtype}"
    if max(head_dim, value_dim) > MAX_D:
        return f"the CUDA attention kernel takes head sizes up to {MAX_D}, got " \
               f"{head_dim} and {value_dim}"
    return None


def _xp():
    """CuPy on a GPU; NumPy under the CUDA simulator (which has no CuPy)."""
    if config.ENABLE_CUDASIM:
        return np
    import cupy
    return cupy


def _stream():
    """CuPy's current stream, so kernels order correctly with CuPy's own work."""
    if config.ENABLE_CUDASIM:
        return 0
    import cupy
    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.external_stream(ptr) if ptr else cuda.default_stream()


def _mask_args(xp, q, k, bias, bias_index):
    """(has_bias, bias, bias_index) as the kernels take them: a one-element stand-in
    without a mask, since a kernel argument cannot be None."""
    if bias is None:
        return False, xp.zeros((1, 1, 1), np.float32), xp.zeros(q.shape[0], np.int64)
    return True, xp.ascontiguousarray(bias, dtype=np.float32), xp.asarray(bias_index)


def _check(name, *arrays):
    for a in arrays:
        if a.dtype != np.float32 or a.ndim != 3 or a.shape[2] > MAX_D:
            raise TypeError(f"{name}: expected 3-D float32 arrays with a last dimension of at "
                            f"most {MAX_D}, got {a.dtype} of shape {a.shape}")


def _grid(n_heads, rows):
    return (max(1, (rows + BLOCK - 1) // BLOCK), n_heads)


def attention_forward(q, k, v, bias=None, bias_index=None, is_causal=False, scale=1.0):
    """Fused attention forward on (N, L, E), (N, S, E), (N, S, Ev) C-contiguous arrays.

    bias: None or an additive mask of shape (M, L or 1, S or 1); head n uses slab
    bias_index[n]. Returns out (N, L, Ev) and lse (N, L) (-inf for a fully masked row).
    """
    _check("flash attention forward (CUDA)", q, k, v)
    xp = _xp()
    n, L, _ = q.shape
    out = xp.empty((n, L, v.shape[2]), np.float32)
    lse = xp.empty((n, L), np.float32)
    if n == 0 or L == 0:
        return out, lse
    has_bias, bias, bias_index = _mask_args(xp, q, k, bias, bias_index)
    _forward_kernel[_grid(n, L), BLOCK, _stream()](q, k, v, has_bias, bias, bias_index,
                                                   np.float32(scale), bool(is_causal), out, lse)
    return out, lse


def attention_backward(q, k, v, out, lse, grad_out, bias=None, bias_index=None,
                       is_causal=False, scale=1.0):
    """Gradients (dq, dk, dv) of attention_forward's output, given grad_out = dL/dout."""
    _check("flash attention backward (CUDA)", q, k, v, out, grad_out)
    xp = _xp()
    n, L, _ = q.shape
    S = k.shape[1]
    dq, dk, dv = xp.empty_like(q), xp.empty_like(k), xp.empty_like(v)
    if n == 0 or L == 0 or S == 0:
        for d in (dq, dk, dv):
            d[...] = 0
        return dq, dk, dv
    delta = (grad_out * out).sum(axis=-1)
    has_bias, bias, bias_index = _mask_args(xp, q, k, bias, bias_index)
    args = (q, k, v, lse, delta, grad_out, has_bias, bias, bias_index, np.float32(scale),
            bool(is_causal))
    stream = _stream()
    _dq_kernel[_grid(n, L), BLOCK, stream](*args, dq)
    _dkdv_kernel[_grid(n, S), BLOCK, stream](*args, dk, dv)
    return dq, dk, dv
