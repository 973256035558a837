"""The Numba layer_norm, softmax, GELU and batch norm kernels
(minifm/kernels/{layer_norm,softmax,gelu,batch_norm}_cpu.py):
forward and every gradient, through minifm's public functions with the backend forced to
"numba", against the same functions on the "reference" (NumPy) backend and against
PyTorch; odd shapes, float32 and float64, logits of +-1e4, rows of -inf, infinities and
NaN, and which code path the ops take."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minifm
import minifm.nn.functional as F
from tests.conftest import assert_close, to_numpy, to_torch

pytest.importorskip("numba")
torch = pytest.importorskip("torch")
import minifm.kernels as kernels  # noqa: E402
from minifm.kernels import (batch_norm_cpu, cpu_exp, cpu_tasks, gelu_cpu,  # noqa: E402
                            layer_norm_cpu, softmax_cpu)

DTYPES = (np.float32, np.float64)
SHAPES = ((1, 1), (3, 7), (2, 5, 33), (4, 3, 2, 17))


@pytest.fixture(autouse=True)
def _reset_backends():
    yield
    kernels.set_backend("layer_norm", None)
    kernels.set_backend("softmax", None)
    kernels.set_backend("gelu", None)
    kernels.set_backend("batch_norm", None)


@pytest.fixture(params=["serial", "parallel"])
def loops(request, monkeypatch):
    """Run the kernels' loops on the calling thread or cut into one range per Numba thread,
    whatever the size (with one Numba thread both run one range on the calling thread)."""
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", 1 << 62 if request.param == "serial" else 0)
    return request.param


def _run(backend, op, fn, arrays, grad_out):
    """fn's output and the gradients of (output * grad_out).sum() for each input array,
    computed by minifm on `backend`."""
    kernels.set_backend(op, backend)
    inputs = [minifm.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    (out * minifm.tensor(grad_out)).sum().backward()
    return out, [t.grad for t in inputs]


def _torch_run(fn, arrays, grad_out):
    inputs = [to_torch(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    (out * torch.from_numpy(grad_out)).sum().backward()
    return out, [t.grad for t in inputs]


def _check_against_reference_and_torch(op, fn, torch_fn, arrays, grad_out):
    out, grads = _run("numba", op, fn, arrays, grad_out)
    ref_out, ref_grads = _run("reference", op, fn, arrays, grad_out)
    t_out, t_grads = _torch_run(torch_fn, arrays, grad_out)
    assert_close(out, ref_out, equal_nan=True)
    assert_close(out, t_out, equal_nan=True)
    for grad, ref_grad, t_grad in zip(grads, ref_grads, t_grads):
        assert_close(grad, ref_grad, equal_nan=True)
        assert_close(grad, t_grad, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference_and_torch(shape, dtype, affine, loops):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    cols = shape[-1:]
    params = [rng.standard_normal(cols).astype(dtype) for _ in range(2)] if affine else []
    _check_against_reference_and_torch(
        "layer_norm", lambda x, *wb: F.layer_norm(x, cols, *wb),
        lambda x, *wb: torch.nn.functional.layer_norm(x, cols, *wb), [x] + params, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_over_two_axes_with_a_large_offset(dtype, loops):
    """Normalized shape of two axes, values 1e4 + N(0, 1): the kernel accumulates in float64,
    so it is checked against PyTorch in float64 on the same (rounded) values."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 4, 6)) + 1e4).astype(dtype)
    g = rng.standard_normal((3, 4, 6)).astype(dtype)
    w, b = rng.standard_normal((2, 4, 6)).astype(dtype)
    out, grads = _run("numba", "layer_norm",
                      lambda x, w, b: F.layer_norm(x, (4, 6), w, b, eps=1e-6), [x, w, b], g)
    as64 = [a.astype(np.float64) for a in (x, w, b)]
    t_out, t_grads = _torch_run(
        lambda x, w, b: torch.nn.functional.layer_norm(x, (4, 6), w, b, eps=1e-6),
        as64, g.astype(np.float64))
    torch_dtype = getattr(torch, np.dtype(dtype).name)
    assert_close(out, t_out.to(torch_dtype))
    for grad, t_grad in zip(grads, t_grads):
        assert_close(grad, t_grad.to(torch_dtype), rtol=1e-4 if dtype == np.float32 else None,
                     atol=1e-4 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_reference_and_torch(name, shape, dtype, loops):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    _check_against_reference_and_torch(
        "softmax", lambda x: getattr(F, name)(x, dim=-1),
        lambda x: getattr(torch.nn.functional, name)(x, dim=-1), [x], g)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the NumPy path's -inf - -inf
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_extreme_logits_and_minus_inf_rows(name, dtype, loops):
    """Logits of +-1e4, some -inf entries, one row of all -inf (NaN out, as PyTorch and the
    NumPy path give)."""
    rng = np.random.default_rng(2)
    x = (rng.choice([-1e4, 1e4], size=(5, 9)) + rng.standard_normal((5, 9))).astype(dtype)
    x[1, ::2] = -np.inf
    x[3] = -np.inf
    g = rng.standard_normal((5, 9)).astype(dtype)
    _check_against_reference_and_torch(
        "softmax", lambda x: getattr(F, name)(x, dim=-1),
        lambda x: getattr(torch.nn.functional, name)(x, dim=-1), [x], g)
    kernels.set_backend("softmax", "numba")
    out = to_numpy(getattr(F, name)(minifm.tensor(x), dim=-1))
    assert np.isnan(out[3]).all() and not np.isnan(np.delete(out, 3, axis=0)).any()


def test_kernels_directly_on_edge_rows(loops):
    """One column: softmax is 1 and log_softmax 0 with zero gradients; a constant row
    with eps=0 gives NaN (0 / 0) in layer norm as in NumPy, not an error."""
    x = np.array([[3.0], [-1e4]])
    assert (softmax_cpu.softmax_forward(x) == 1).all()
    y = softmax_cpu.softmax_forward(x, log=True)
    assert (y == 0).all()
    assert (softmax_cpu.softmax_backward(np.ones_like(x), y, log=True) == 0).all()
    y, _, _ = layer_norm_cpu.layer_norm_forward(np.ones((2, 4)), None, None, eps=0.0)
    assert np.isnan(y).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_row_max_by_integer_keys_is_the_float_max(dtype):
    """_row_max compares the floats' bits as integers: every sign, zero, subnormal and
    infinity orders as the floats do."""
    tiny = np.finfo(dtype).smallest_subnormal
    rows = np.array([[-3.0, -1.0, -2.5, -7.0], [-0.0, 0.0, -1.0, -tiny], [-np.inf] * 4,
                     [-np.inf, -1e30, np.inf, 5.0], [tiny, -tiny, 0.0, -0.0],
                     [-1e-30, -2e-30, -3e-30, -np.inf], [1.0, 2.0, 3.0, 2.5]], dtype)
    rows = np.concatenate([rows, np.random.default_rng(0).standard_normal((5, 4)).astype(dtype)])
    keys = softmax_cpu._ROW_MAX_KEYS[np.dtype(dtype)]
    bits = rows.view(keys.dtype)
    got = np.array([softmax_cpu._row_max(bits, r, keys) for r in range(len(rows))],
                   keys.dtype).view(dtype)
    np.testing.assert_array_equal(got, rows.max(axis=1))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_kernels_take_any_leading_axes(log):
    """softmax_forward/backward work over the last axis of an N-d array, as on its rows
    (the Fused Functions pass the arrays as they are); a gradient of another shape is
    refused (the kernel would read past it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    g = rng.standard_normal((2, 3, 5)).astype(np.float32)
    y = softmax_cpu.softmax_forward(x, log=log)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.reshape(6, 5), softmax_cpu.softmax_forward(x.reshape(6, 5), log=log))
    dx = softmax_cpu.softmax_backward(g, y, log=log)
    np.testing.assert_array_equal(dx.reshape(6, 5), softmax_cpu.softmax_backward(
        g.reshape(6, 5), y.reshape(6, 5), log=log))
    with pytest.raises(ValueError, match="softmax backward"):
        softmax_cpu.softmax_backward(g.reshape(6, 5), y, log=log)
    with pytest.raises(TypeError, match="softmax forward"):
        softmax_cpu.softmax_forward(np.float32(1.0).reshape(()))


def _path(fn, x, **kwargs):
    """The kernel module fn ran with (None: the reference): the output's node is the op's
    <Op>Fused Function, holding its kernel, or its <Op>Reference Function."""
    node = fn(minifm.tensor(x, requires_grad=True), **kwargs).grad_fn
    if node.fn.__name__.endswith("Fused"):
        return node.kernel
    assert node.fn.__name__.endswith("Reference"), node.fn
    return None


def test_ops_select_the_kernel_or_the_reference():
    x32 = np.ones((4, 8), np.float32)
    layer_norm = lambda x: F.layer_norm(x, (8,))  # noqa: E731
    softmax = lambda x, dim=-1: F.softmax(x, dim=dim)  # noqa: E731
    for backend, expected in (("numba", (layer_norm_cpu, softmax_cpu)), ("reference", (None, None))):
        kernels.set_backend("layer_norm", backend)
        kernels.set_backend("softmax", backend)
        assert _path(layer_norm, x32) is expected[0]
        assert _path(softmax, x32) is expected[1]
        assert _path(F.log_softmax, x32, dim=1) is expected[1]
    # auto: the kernel where it supports the inputs, the NumPy code elsewhere
    kernels.set_backend("layer_norm", "auto")
    kernels.set_backend("softmax", "auto")
    assert _path(layer_norm, x32) is layer_norm_cpu
    assert _path(layer_norm, x32.astype(np.float16)) is None
    assert _path(softmax, x32) is softmax_cpu
    assert _path(softmax, x32, dim=0) is None          # not the last axis
    assert _path(softmax, x32.T.copy().T) is None      # not contiguous
    # forced, a backend that cannot run the inputs is an error
    kernels.set_backend("softmax", "numba")
    with pytest.raises(RuntimeError, match="last axis"):
        F.softmax(minifm.tensor(x32), dim=0)


# Sizes around the kernel's chunk, so partial chunks and several chunks per range are run.
GELU_SHAPES = ((1,), (3, 7), (gelu_cpu.CHUNK - 1,), (2, gelu_cpu.CHUNK + 1), (3, 5, 411))


@pytest.mark.parametrize("shape", GELU_SHAPES)
def test_gelu_matches_reference_and_torch(shape, loops):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    _check_against_reference_and_torch("gelu", F.gelu, torch.nn.functional.gelu, [x], g)


def test_gelu_tails_infinities_and_nan(loops):
    """Far tails, +-inf and NaN, against x Phi(x) computed in float64 from math.erfc. The
    kernel takes the left tail from erfc, so x = -12 gives -2e-32, not the -0 of PyTorch's
    0.5 x (1 + erf(x / sqrt 2)), which cancels from x = -9 on even in float64; x = -40
    is below float32's normal range and gives -0."""
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 5.0, -5.0, 9.0, -9.0, 12.0, -12.0, 40.0, -40.0,
                  np.inf, -np.inf, np.nan], np.float32)
    g = np.linspace(-1, 1, x.size).astype(np.float32)
    out, (grad,) = _run("numba", "gelu", F.gelu, [x], g)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    pdf = np.exp(-0.5 * x.astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
    with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, in PyTorch too
        expected = (x * cdf).astype(np.float32)
        expected_grad = (g * (cdf + x * pdf)).astype(np.float32)
    assert_close(out, expected, equal_nan=True, atol=1e-37, rtol=1e-5)
    assert_close(grad, expected_grad, equal_nan=True, atol=1e-37, rtol=1e-5)
    assert np.isnan(to_numpy(out)[[13, 14]]).all()


def test_gelu_kernel_takes_any_layout_and_size_and_refuses_other_dtypes():
    x = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    assert np.array_equal(gelu_cpu.gelu_forward(x.T), gelu_cpu.gelu_forward(x.T.copy()))
    g = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)
    assert np.array_equal(gelu_cpu.gelu_backward(g.T, x), gelu_cpu.gelu_backward(g.T.copy(), x))
    for shape in ((0,), (3, 0), ()):
        out = gelu_cpu.gelu_forward(np.ones(shape, np.float32))
        assert out.shape == shape and out.dtype == np.float32
    assert gelu_cpu.gelu_forward(np.float32(1.5).reshape(())) == F.gelu(
        minifm.tensor(1.5)).item()
    with pytest.raises(TypeError, match="gelu forward: expected float32 arrays, got x of "
                                        r"dtype float64 and shape \(6, 5\)"):
        gelu_cpu.gelu_forward(x.astype(np.float64))
    with pytest.raises(TypeError, match="gelu backward: .* got grad of dtype float64"):
        gelu_cpu.gelu_backward(x.astype(np.float64), x)
    with pytest.raises(ValueError, match=r"gelu backward: gradient of shape \(5, 6\)"):
        gelu_cpu.gelu_backward(x.T, x)


def test_gelu_selects_the_kernel_for_exact_float32_only():
    x32 = np.ones((4, 8), np.float32)
    assert _path(F.gelu, x32) is gelu_cpu
    assert _path(F.gelu, x32.astype(np.float64)) is None  # Cody's erf
    assert _path(F.gelu, x32, approximate="tanh") is None
    kernels.set_backend("gelu", "reference")
    assert _path(F.gelu, x32) is None
    kernels.set_backend("gelu", "numba")  # forced: inputs it cannot run are an error
    with pytest.raises(RuntimeError, match="takes float32"):
        F.gelu(minifm.tensor(x32.astype(np.float64)))
    with pytest.raises(RuntimeError, match="exact GELU only"):
        F.gelu(minifm.tensor(x32), approximate="tanh")


def _exp_of(x):
    y = x.copy()
    cpu_exp.exp_inplace(y, cpu_exp.exp_constants(y.dtype))
    return y


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_inplace_is_within_an_ulp_of_the_exact_exp(dtype):
    """cpu_exp.exp_inplace over the whole normal range of its results and the small
    positive arguments GELU passes, against exp in long double: under one ulp of dtype
    (the polynomial's degree is cut to the dtype's precision); 0 below the normal range,
    for -inf too; NaN for NaN."""
    lowest = -87.0 if dtype == np.float32 else -708.0
    x = np.concatenate([np.linspace(lowest + 1e-3, 0, 200_001), [1e-7, 3e-8, 0.5, 1.0]])
    y = _exp_of(x.astype(dtype))
    exact = np.exp(x.astype(dtype).astype(np.longdouble))
    ulps = np.abs(y - exact) / np.spacing(exact.astype(dtype))
    assert ulps.max() < 1.0
    edge = _exp_of(np.array([lowest - 1, -np.inf, np.nan], dtype))
    assert edge[0] == 0 and edge[1] == 0 and np.isnan(edge[2])


# Batch norm: (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W), odd and prime sizes.
BN_SHAPES = ((5, 3), (2, 3, 7), (3, 5, 7, 11), (2, 3, 5, 3, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_reference_and_torch(shape, dtype, training, affine, loops):
    """Output and the gradients of x, weight and bias, in training (batch statistics) and
    eval (running estimates), against the NumPy path and PyTorch."""
    rng = np.random.default_rng(sum(shape) + training)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    channels = shape[1]
    params = [rng.standard_normal(channels).astype(dtype) for _ in range(2)] if affine else []
    mean = rng.standard_normal(channels).astype(dtype)
    var = rng.uniform(0.5, 2, channels).astype(dtype)

    def fn(x, *wb, lib=minifm, functional=F):
        running = [lib.tensor(mean.copy()), lib.tensor(var.copy())]
        return functional.batch_norm(x, *running, *wb, training=training, momentum=0.3)

    _check_against_reference_and_torch(
        "batch_norm", fn, lambda x, *wb: fn(x, *wb, lib=torch, functional=torch.nn.functional),
        [x] + params, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_running_estimates_follow_pytorch(dtype, loops):
    """Three training steps of BatchNorm2d (momentum 0.1, then momentum=None: the
    cumulative average) and an eval step: running_mean, running_var (the unbiased batch
    variance) and num_batches_tracked equal PyTorch's, and the kernel's equal the NumPy
    path's."""
    import minifm.nn as nn
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((3, 5, 7, 9)) * 2 + 0.5).astype(dtype) for _ in range(3)]
    for momentum in (0.1, None):
        runs = []
        for backend in ("numba", "reference"):
            kernels.set_backend("batch_norm", backend)
            dtype_name = np.dtype(dtype).name
            ours = nn.BatchNorm2d(5, momentum=momentum).to(dtype=getattr(minifm, dtype_name))
            for b in batches:
                ours(minifm.tensor(b))
            ours.eval()
            runs.append((ours.running_mean, ours.running_var, ours(minifm.tensor(batches[0]))))
        theirs = torch.nn.BatchNorm2d(5, momentum=momentum).to(getattr(torch, np.dtype(dtype).name))
        for b in batches:
            theirs(torch.from_numpy(b))
        theirs.eval()
        expected = (theirs.running_mean, theirs.running_var, theirs(torch.from_numpy(batches[0])))
        for numba_value, reference_value, torch_value in zip(*runs, expected):
            assert_close(numba_value, reference_value)
            assert_close(numba_value, torch_value.detach())
        assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked)


def test_batch_norm_kernel_on_constant_channels_and_large_offsets(loops):
    """A constant channel (variance 0: xhat = 0, rstd = 1 / sqrt(eps)) and values 1e4 +
    N(0, 1), where the two-pass variance in float64 has no cancellation: float32 results
    equal PyTorch's on float64, to the rounding of x * scale + shift, the form PyTorch's CPU
    kernel uses as well (x * 316 for the constant channel: its outputs are within 1e-3 of
    0, not exactly 0)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 3, 5, 5)) + 1e4).astype(np.float32)
    x[:, 1] = 7.0
    g = rng.standard_normal(x.shape).astype(np.float32)
    out, grads = _run("numba", "batch_norm",
                      lambda x: F.batch_norm(x, None, None, training=True), [x], g)
    t_out, t_grads = _torch_run(
        lambda x: torch.nn.functional.batch_norm(x, None, None, training=True),
        [x.astype(np.float64)], g.astype(np.float64))
    assert_close(out, t_out.float(), atol=1e-3, rtol=1e-4)
    assert_close(grads[0], t_grads[0].float(), atol=1e-3, rtol=1e-4)
    assert np.abs(to_numpy(out)[:, 1]).max() < 1e-3


def test_batch_norm_selects_the_kernel_for_float32_and_float64():
    x = np.ones((2, 3, 4), np.float32)
    bn = lambda x: F.batch_norm(x, None, None, training=True)  # noqa: E731
    assert _path(bn, x) is batch_norm_cpu
    assert _path(bn, x.astype(np.float64)) is batch_norm_cpu
    assert _path(bn, x.astype(np.float16)) is None
    kernels.set_backend("batch_norm", "numba")
    with pytest.raises(RuntimeError, match="float32 or float64"):
        bn(minifm.tensor(x.astype(np.float16)))


@pytest.mark.parametrize("shape", [(5, 4, 3, 2), (7, 5)])
def test_batch_norm_kernel_takes_non_contiguous_input_and_skips_dx(shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape[::-1]).astype(np.float32)
    xt = x.T  # not contiguous
    y, mean, var, rstd = batch_norm_cpu.batch_norm_forward(xt, None, None, 1e-5, True)
    t = torch.nn.functional.batch_norm(torch.from_numpy(xt.copy()), None, None, training=True)
    assert_close(y, t)
    g = rng.standard_normal(xt.shape).astype(np.float32)
    dx, dw, db = batch_norm_cpu.batch_norm_backward(g, xt, mean, rstd, None, True,
                                                    need_dx=False)
    assert dx is None
    np.testing.assert_allclose(db, g.sum(axis=(0, *range(2, g.ndim))), rtol=1e-5, atol=1e-5)
