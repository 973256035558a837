"""scaled_dot_product_attention against torch's, on every CPU backend (the reference
composite and the Numba FlashAttention kernel): outputs and the gradients of query, key
and value, for causal and masked attention, broadcasting, odd lengths, extreme values and
fully masked rows; then errors, dropout, backend selection and the kernel's log-sum-exp.

The Numba kernel tiles queries and keys by 64 or 256 (BLOCK_Q, BLOCK_K and their backward
counterparts): the "tiles" cases use lengths that span several tiles of each and end in a
partial one."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

import minifm
from minifm import kernels
from minifm.ops.attention import scaled_dot_product_attention as sdpa
from conftest import assert_close, read_backend_variables_again, to_numpy

torch = pytest.importorskip("torch")
F = torch.nn.functional

_NO_NUMBA = pytest.mark.skipif("numba" not in kernels.available_backends("attention"),
                               reason="numba not installed")
BACKENDS = [
    "reference",
    pytest.param("numba", marks=_NO_NUMBA),
    # the kernel with its own loops for backward's products, as where no OpenBLAS is found
    pytest.param("numba-loops", marks=_NO_NUMBA),
]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    name = request.param
    if name == "numba-loops":
        from minifm.kernels import flash_attention_cpu
        monkeypatch.setattr(flash_attention_cpu, "gemm_address", lambda dtype: 0)
        name = "numba"
    kernels.set_backend("attention", name)
    yield name
    kernels.set_backend("attention", None)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _run_both(q, k, v, mask=None, is_causal=False, scale=None, dtype=np.float64, seed=1,
              torch_dtype=None):
    """Forward and backward through minifm (in dtype) and torch (in torch_dtype, by default
    the same) on the same arrays; returns [(minifm value, torch value)] for the output and
    the three input gradients."""
    q, k, v = (np.asarray(a, dtype=dtype) for a in (q, k, v))
    grad = _rng(seed).standard_normal(
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], v.shape[-1]))
    grad = grad.astype(dtype)
    mq, mk, mv = (minifm.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (torch.from_numpy(a.astype(torch_dtype or dtype)).requires_grad_()
                  for a in (q, k, v))
    m_mask = None if mask is None else minifm.tensor(mask)
    t_mask = None if mask is None else torch.from_numpy(np.array(mask))
    out = sdpa(mq, mk, mv, attn_mask=m_mask, is_causal=is_causal, scale=scale)
    expected = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=t_mask,
                                              is_causal=is_causal, scale=scale)
    out.backward(minifm.tensor(grad))
    expected.backward(torch.from_numpy(grad.astype(torch_dtype or dtype)))
    return [(out, expected), (mq.grad, tq.grad), (mk.grad, tk.grad), (mv.grad, tv.grad)]


def _check(pairs, dtype, atol64=1e-12):
    for ours, theirs in pairs:
        assert ours.dtype == dtype and tuple(ours.shape) == tuple(theirs.shape)
        theirs = theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
        if dtype == np.float64:
            assert_close(ours, theirs, rtol=1e-10, atol=atol64)
        else:
            assert_close(ours, theirs)  # torch's float32 tolerances


def _qkv(B, H, L, S, E, Ev, seed=0, magnitude=1.0):
    rng = _rng(seed)
    return (rng.standard_normal((B, H, L, E)) * magnitude,
            rng.standard_normal((B, H, S, E)) * magnitude,
            rng.standard_normal((B, H, S, Ev)) * magnitude)


SHAPES = {  # B, H, L, S, E, Ev
    "square": (2, 3, 13, 13, 16, 16),
    "head8": (1, 2, 9, 11, 8, 8),
    "head64_L<S": (2, 2, 19, 45, 64, 64),
    "head128_L>S": (1, 2, 37, 21, 128, 128),
    "value_dim_differs": (2, 1, 7, 10, 16, 24),
    "tiles": (1, 2, 300, 270, 16, 16),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_matches_torch(backend, shape, is_causal, dtype):
    _check(_run_both(*_qkv(*shape), is_causal=is_causal, dtype=dtype), dtype)


def _masks():
    """Masks for B=2, H=3, L=11, S=14, each with at least one fully masked query row."""
    rng = _rng(5)
    bool_2d = rng.random((11, 14)) > 0.4
    bool_2d[3] = False
    padding = np.where(rng.random((2, 1, 1, 14)) > 0.3, 0.0, -np.inf)
    padding[1, 0, 0, :] = -np.inf              # every query of batch 1 fully masked
    additive_full = rng.standard_normal((2, 3, 11, 14))
    additive_full[0, 1, 4] = -np.inf
    rows = rng.random((1, 3, 11, 1)) > 0.3      # broadcasts over keys: whole rows on or off
    rows[0, 0, 0, 0] = False
    return {"bool_2d": bool_2d, "padding_additive": padding, "additive_full": additive_full,
            "bool_rows_broadcast": rows}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", _masks().keys())
def test_masks_match_torch(backend, name, dtype):
    mask = _masks()[name]
    mask = mask if mask.dtype == np.bool_ else mask.astype(dtype)
    _check(_run_both(*_qkv(2, 3, 11, 14, 16, 16), mask=mask, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_tiles_match_torch(backend, dtype):
    mask = _rng(2).random((300, 270)) > 0.5
    mask[::7] = False
    _check(_run_both(*_qkv(1, 2, 300, 270, 16, 16), mask=mask, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_leading_key_blocks(backend, dtype):
    """Queries whose first key blocks are all masked and whose other keys score about
    -1000: the online softmax must not take 0 as their running maximum meanwhile (exp(-1000)
    is 0 in any float)."""
    mask = np.zeros((6, 150))
    mask[2, :100] = -np.inf
    mask[2, 100:] = -1000.0
    mask[4, :] = -1000.0
    mask[5, :140] = -np.inf
    _check(_run_both(*_qkv(1, 2, 6, 150, 16, 16), mask=mask.astype(dtype), dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_magnitude_inputs(backend, dtype):
    """x100 inputs: scores of order 1e4, where a softmax without max-subtraction overflows.
    The oracle is torch in float64: torch's own float32 gradients are off by ~1e-2 here
    (rounding in dP - delta, times |k| ~ 100), ours are not. The true q and k gradients are
    ~1e-11, so float64 is held to an absolute 1e-9 (eps * |dO| |v| |k| is ~1e-11)."""
    pairs = _run_both(*_qkv(2, 2, 17, 23, 16, 16, magnitude=100.0), is_causal=True,
                      dtype=dtype, torch_dtype=np.float64)
    assert np.isfinite(to_numpy(pairs[0][0])).all()
    _check(pairs, dtype, atol64=1e-9)


def test_nan_propagates(backend):
    """A NaN query spoils its own row; a NaN key the rows that see it (with is_causal, the
    rows before it do not), as PyTorch's CPU kernel does for keys. Gradients too (dQ of the
    earlier rows gets 0 * NaN from that key as well, in any matmul-based backward)."""
    q, k, v = (minifm.tensor(a, requires_grad=True) for a in _qkv(1, 2, 6, 6, 8, 8))
    q._data[0, 0, 3, 5] = np.nan
    k._data[0, 1, 2, 1] = np.nan
    out = sdpa(q, k, v, is_causal=True)
    rows = np.isnan(to_numpy(out)).any(-1)[0]
    assert rows.tolist() == [[False, False, False, True, False, False],
                             [False, False, True, True, True, True]]
    out.sum().backward()
    assert np.isnan(to_numpy(q.grad)[0, 0, 3]).all() and np.isnan(to_numpy(k.grad)).any()


def test_broadcast_batch_noncontiguous_and_scale(backend):
    """key/value shared across heads (their gradients are summed), a transposed query, 2-D
    inputs and an explicit scale."""
    rng = _rng(3)
    q = rng.standard_normal((2, 7, 3, 16)).transpose(0, 2, 1, 3)
    k, v = rng.standard_normal((2, 1, 9, 16)), rng.standard_normal((2, 1, 9, 16))
    _check(_run_both(q, k, v, scale=0.3), np.float64)
    _check(_run_both(rng.standard_normal((5, 8)), rng.standard_normal((6, 8)),
                     rng.standard_normal((6, 4)), is_causal=True), np.float64)


def test_empty_keys_and_queries(backend):
    rng = _rng(4)
    q, k, v = rng.standard_normal((2, 5, 8)), np.zeros((2, 0, 8)), np.zeros((2, 0, 8))
    pairs = _run_both(q, k, v)
    _check(pairs, np.float64)
    assert not to_numpy(pairs[0][0]).any()
    _check(_run_both(np.zeros((2, 0, 8)), rng.standard_normal((2, 3, 8)),
                     rng.standard_normal((2, 3, 8))), np.float64)


# grad_fn names of the two paths
REFERENCE = "ScaledDotProductAttentionReferenceBackward0"
FUSED = "ScaledDotProductAttentionFusedBackward0"


def test_dispatch_uses_the_chosen_backend(backend):
    q = minifm.randn(1, 2, 5, 8, requires_grad=True)
    name = sdpa(q, q, q).grad_fn.name()
    fused = backend != "reference"
    assert name == (FUSED if fused else REFERENCE)
    # dropout and a mask that needs its gradient always take the reference path
    assert sdpa(q, q, q, dropout_p=0.5).grad_fn.name() == REFERENCE


def test_float_mask_gradient():
    rng = _rng(6)
    q, k, v = _qkv(2, 3, 5, 6, 8, 8)
    mask = rng.standard_normal((2, 1, 5, 6))
    m_mask = minifm.tensor(mask, requires_grad=True)
    t_mask = torch.from_numpy(mask.copy()).requires_grad_()
    sdpa(*(minifm.tensor(a) for a in (q, k, v)), attn_mask=m_mask).sum().backward()
    F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)),
                                   attn_mask=t_mask).sum().backward()
    assert_close(m_mask.grad, t_mask.grad, rtol=1e-10, atol=1e-12)


def test_dropout_uses_the_minifm_generator():
    """Dropout keeps a probability where the generator's uniform draw is >= p and scales it
    by 1/(1-p); the same seed gives the same output."""
    p = 0.4
    q, k, v = (minifm.tensor(a) for a in _qkv(1, 2, 6, 7, 8, 8))
    minifm.manual_seed(123)
    out = sdpa(q, k, v, dropout_p=p)
    minifm.manual_seed(123)
    assert np.array_equal(to_numpy(sdpa(q, k, v, dropout_p=p)), to_numpy(out))
    minifm.manual_seed(123)
    keep = minifm.rand(1, 2, 6, 7, dtype=minifm.float64).numpy() >= p
    tq, tk, tv = (torch.from_numpy(to_numpy(t)) for t in (q, k, v))
    probs = torch.softmax(tq @ tk.transpose(-1, -2) / np.sqrt(8), dim=-1)
    expected = (probs * torch.from_numpy(keep) / (1 - p)) @ tv
    assert_close(out, expected, rtol=1e-10, atol=1e-12)
    assert not to_numpy(sdpa(q, k, v, dropout_p=1.0)).any()


def test_dropout_gradient_matches_autograd_composite():
    """The reference's analytic backward with dropout equals torch autograd through the
    same composite (softmax, then the same dropout mask, then @ v)."""
    p = 0.3
    arrays = _qkv(1, 2, 5, 6, 8, 8)
    mq, mk, mv = (minifm.tensor(a, requires_grad=True) for a in arrays)
    minifm.manual_seed(7)
    sdpa(mq, mk, mv, dropout_p=p, is_causal=True).sum().backward()
    minifm.manual_seed(7)
    keep = torch.from_numpy(minifm.rand(1, 2, 5, 6, dtype=minifm.float64).numpy() >= p)
    tq, tk, tv = (torch.from_numpy(a).requires_grad_() for a in arrays)
    causal = torch.ones(5, 6, dtype=torch.bool).tril()
    scores = (tq @ tk.transpose(-1, -2) / np.sqrt(8)).masked_fill(~causal, float("-inf"))
    ((torch.softmax(scores, -1) * keep / (1 - p)) @ tv).sum().backward()
    for ours, theirs in ((mq, tq), (mk, tk), (mv, tv)):
        assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-12)


def _t(*shape, dtype=minifm.float32):
    return minifm.zeros(*shape, dtype=dtype)


ERRORS = {
    "mask_and_causal": (lambda: sdpa(_t(2, 4, 8), _t(2, 4, 8), _t(2, 4, 8),
                                     attn_mask=_t(4, 4), is_causal=True),
                        RuntimeError, "attn_mask and is_causal"),
    "one_dimensional": (lambda: sdpa(_t(8), _t(4, 8), _t(4, 8)), RuntimeError, r"at least 2-D"),
    "dtypes_differ": (lambda: sdpa(_t(4, 8), _t(4, 8, dtype=minifm.float64), _t(4, 8)),
                      RuntimeError, r"same dtype.*float32.*float64"),
    "integer_inputs": (lambda: sdpa(*(_t(4, 8, dtype=minifm.int64),) * 3), RuntimeError,
                       "floating-point"),
    "embed_sizes_differ": (lambda: sdpa(_t(4, 8), _t(5, 6), _t(5, 6)), RuntimeError,
                           r"same embedding size.*\(4, 8\).*\(5, 6\)"),
    "key_value_lengths_differ": (lambda: sdpa(_t(4, 8), _t(5, 8), _t(6, 8)), RuntimeError,
                                 r"same sequence length.*\(5, 8\).*\(6, 8\)"),
    "batches_do_not_broadcast": (lambda: sdpa(_t(2, 4, 8), _t(3, 5, 8), _t(3, 5, 8)),
                                 RuntimeError, r"do not broadcast"),
    "mask_dtype": (lambda: sdpa(_t(4, 8), _t(5, 8), _t(5, 8),
                                attn_mask=_t(4, 5, dtype=minifm.int64)),
                   RuntimeError, r"attn_mask of dtype bool or minifm.float32, got minifm.int64"),
    "mask_shape": (lambda: sdpa(_t(2, 4, 8), _t(2, 5, 8), _t(2, 5, 8), attn_mask=_t(3, 4, 5)),
                   RuntimeError, r"\(3, 4, 5\) does not broadcast to .*\(2, 4, 5\)"),
    "mask_not_a_tensor": (lambda: sdpa(_t(4, 8), _t(5, 8), _t(5, 8),
                                       attn_mask=np.zeros((4, 5))), TypeError, "attn_mask"),
    "dropout_range": (lambda: sdpa(_t(4, 8), _t(5, 8), _t(5, 8), dropout_p=1.5), ValueError,
                      "between 0 and 1"),
    "query_not_a_tensor": (lambda: sdpa(np.zeros((4, 8)), _t(5, 8), _t(5, 8)), TypeError,
                           "query"),
}


@pytest.mark.parametrize("name", ERRORS.keys())
def test_errors(name):
    call, error, message = ERRORS[name]
    with pytest.raises(error, match=message):
        call()


def test_backend_settings(monkeypatch, caplog):
    assert kernels.available_backends("attention")[0] == "reference"
    with pytest.raises(ValueError, match="unknown attention backend 'fast'"):
        kernels.set_backend("attention", "fast")
    with pytest.raises(ValueError, match="unknown op 'no_such_op'"):
        kernels.set_backend("no_such_op", "auto")
    monkeypatch.setenv("MINIFM_ATTENTION_BACKEND", "reference")
    read_backend_variables_again(monkeypatch)
    assert kernels.get_backend("attention") == "reference"
    q = minifm.randn(1, 3, 4, requires_grad=True)
    assert sdpa(q, q, q).grad_fn.name() == REFERENCE
    monkeypatch.setenv("MINIFM_ATTENTION_BACKEND", "auto")
    assert sdpa(q, q, q).grad_fn.name() == REFERENCE  # read at the first call, not again
    try:
        kernels.set_backend("attention", "cuda")
        assert kernels.get_backend("attention") == "cuda"  # set_backend wins over the variable
        with pytest.raises(RuntimeError, match="'cuda' backend runs on cuda arrays"):
            sdpa(q, q, q)
    finally:
        kernels.set_backend("attention", None)  # and the variable is read again
    assert kernels.get_backend("attention") == "auto"
    monkeypatch.setenv("MINIFM_ATTENTION_BACKEND", "nonsense")
    read_backend_variables_again(monkeypatch)
    with pytest.raises(ValueError, match="MINIFM_ATTENTION_BACKEND"):
        kernels.get_backend("attention")
    monkeypatch.delenv("MINIFM_ATTENTION_BACKEND")
    read_backend_variables_again(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="minifm.kernels"):
        kernels._logged.clear()
        sdpa(q, q, q)
        sdpa(q, q, q)
    chosen = [r.getMessage() for r in caplog.records if r.name == "minifm.kernels"]
    assert len(chosen) == 1 and "requested 'auto'" in chosen[0]


@pytest.mark.skipif("numba" not in kernels.available_backends("attention"),
                    reason="numba not installed")
def test_numba_kernel_dtypes_and_lse():
    """float16 falls back to the reference under "auto" and is refused by name; the
    kernel's log-sum-exp is that of the masked, scaled scores (-inf for a masked row)."""
    h = minifm.randn(1, 4, 8, dtype=minifm.float16, requires_grad=True)
    assert sdpa(h, h, h).grad_fn.name() == REFERENCE
    try:
        kernels.set_backend("attention", "numba")
        with pytest.raises(RuntimeError, match="cannot run these inputs.*float16"):
            sdpa(h, h, h)
    finally:
        kernels.set_backend("attention", None)

    from minifm.kernels import flash_attention_cpu
    q, k, v = (np.ascontiguousarray(a[0]) for a in _qkv(1, 2, 9, 12, 16, 16))
    mask = np.where(_rng(8).random((1, 9, 12)) > 0.5, 0.0, -np.inf)
    mask[0, 2] = -np.inf
    _, lse = flash_attention_cpu.attention_forward(q, k, v, mask, np.zeros(2, np.int64),
                                                   False, 0.25)
    scores = torch.from_numpy(q @ k.transpose(0, 2, 1) * 0.25 + mask)
    assert_close(lse, torch.logsumexp(scores, -1), rtol=1e-12, atol=1e-12)
    assert lse[0, 2] == -np.inf


def test_import_minifm_does_not_import_numba():
    code = ("import sys, minifm, minifm.kernels, minifm.ops.attention; "
            "minifm.kernels.available_backends('attention'); "
            "sys.exit('numba' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
