"""Linear algebra beyond the op table (tests/optable.py runs each op's forward, gradients,
finite differences, second order and errors against PyTorch): node names, gradients at
zero norms and distances, LinAlgError, torch.cross's default dim, singular slogdet, the
Tensor methods, and the one documented difference (det's gradient at a singular matrix)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from conftest import assert_close  # noqa: E402

RNG = np.random.default_rng(0)


def pair(*shape, requires_grad=False, array=None):
    """The same float64 values as a minifm tensor and a torch tensor."""
    a = RNG.standard_normal(shape) if array is None else np.asarray(array, np.float64)
    return (minifm.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def square(n, batch=()):
    return RNG.uniform(-1, 1, (*batch, n, n)) + 3 * np.eye(n)


@pytest.mark.parametrize("expr", [
    "lib.mm(a, a)", "lib.bmm(a[None], a[None])", "lib.mv(a, v)", "lib.dot(v, v)",
    "lib.vdot(v, v)", "lib.linalg.vector_norm(a)", "lib.linalg.inv(a)", "lib.linalg.det(a)",
    "lib.linalg.solve(a, a)", "lib.linalg.slogdet(a)[1]", "lib.linalg.svdvals(a)",
    "lib.linalg.eigvalsh(a)", "lib.linalg.cholesky(a)", "lib.linalg.pinv(a)"])
def test_nodes_have_pytorchs_names(expr):
    (a, ta), (v, tv) = pair(array=square(3), requires_grad=True), pair(3, requires_grad=True)
    ours = eval(expr, {"lib": minifm, "a": a, "v": v}).grad_fn.name()
    assert ours == type(eval(expr, {"lib": torch, "a": ta, "v": tv}).grad_fn).__name__


@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, float("inf"), float("-inf"), 0])
def test_norm_gradient_at_zero_is_pytorchs(ord):
    x, tx = pair(array=np.zeros((2, 3)), requires_grad=True)
    minifm.linalg.vector_norm(x, ord, 1).sum().backward()
    torch.linalg.vector_norm(tx, ord, 1).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    if tx.grad is None:  # ord 0, a count: PyTorch leaves no gradient, minifm a zero one
        assert not x.grad.numpy().any()
    else:
        assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf"), 0.0])
def test_cdist_gradient_at_zero_distance_is_pytorchs(p):
    """cdist(x, x): every diagonal distance is 0; its gradient there is 0, not NaN."""
    x, tx = pair(4, 3, requires_grad=True)
    g = RNG.standard_normal((4, 4))
    minifm.cdist(x, x, p).backward(minifm.tensor(g))
    torch.cdist(tx, tx, p).backward(torch.tensor(g))
    assert np.isfinite(x.grad.numpy()).all()
    assert_close(x.grad, tx.grad)


def test_a_singular_matrix_raises_linalgerror_a_runtimeerror():
    assert issubclass(minifm.linalg.LinAlgError, RuntimeError)
    singular = minifm.tensor([[1.0, 2.0], [2.0, 4.0]])
    for call in (lambda: minifm.linalg.inv(singular), lambda: singular.inverse(),
                 lambda: minifm.linalg.solve(singular, minifm.ones(2))):
        with pytest.raises(RuntimeError, match="singular"):
            call()
        with pytest.raises(minifm.linalg.LinAlgError):
            call()


def test_slogdet_of_a_singular_matrix_is_zero_and_minus_infinity():
    a, ta = pair(array=[[1.0, 2.0], [2.0, 4.0]])
    sign, logabsdet = minifm.linalg.slogdet(a)
    tsign, tlogabsdet = torch.linalg.slogdet(ta)
    assert sign.item() == tsign.item() == 0 and logabsdet.item() == tlogabsdet.item() == -np.inf
    assert minifm.linalg.slogdet(a).logabsdet is not None  # a named tuple, as PyTorch's


def test_cross_without_dim_takes_the_first_dimension_of_size_3():
    (a, ta), (b, tb) = pair(3, 3, 4), pair(3, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch deprecates the default
        assert_close(minifm.cross(a, b), torch.cross(ta, tb))
    assert_close(minifm.linalg.cross(a[..., :3], b[..., :3]),
                 torch.linalg.cross(ta[..., :3], tb[..., :3]))
    with pytest.raises(RuntimeError, match="no dimension of size 3"):
        minifm.cross(minifm.ones(2, 4), minifm.ones(2, 4))


def test_tensor_methods_equal_the_functions():
    (a, ta), (b, tb), (v, tv) = pair(3, 3), pair(3, 3), pair(3)
    m, tm = pair(array=square(3))
    for ours, theirs in [(a.mm(b), ta.mm(tb)), (a[None].bmm(b[None]), ta[None].bmm(tb[None])),
                         (a.mv(v), ta.mv(tv)), (v.dot(v), tv.dot(tv)), (v.vdot(v), tv.vdot(tv)),
                         (v.outer(v), tv.outer(tv)), (v.ger(v), tv.outer(tv)),
                         (a.addmm(a, b, beta=0.5), ta.addmm(ta, tb, beta=0.5)),
                         (v.addmv(a, v, alpha=2), tv.addmv(ta, tv, alpha=2)),
                         (a.cross(b, dim=0), ta.cross(tb, dim=0)), (m.det(), tm.det()),
                         (m.inverse(), tm.inverse()), (m.slogdet()[1], tm.slogdet()[1])]:
        assert_close(ours, theirs)
    c, tc = a.clone(), ta.clone()
    assert c.addmm_(a, b, alpha=3) is c
    assert_close(c, tc.addmm_(ta, tb, alpha=3))


def test_linalg_namespace_and_torch_aliases():
    m, tm = pair(array=square(3, (2,)))
    assert_close(minifm.inverse(m), torch.inverse(tm))
    assert_close(minifm.det(m), torch.det(tm))
    assert_close(minifm.slogdet(m).logabsdet, torch.slogdet(tm).logabsdet)
    assert_close(minifm.linalg.matmul(m, m), torch.linalg.matmul(tm, tm))
    assert_close(minifm.linalg.norm(m, dim=(1, 2)), torch.linalg.norm(tm, dim=(1, 2)))


def test_third_derivative_through_inv():
    """inv's derivative uses inv itself (recorded), so any order works: d3/dx3 of
    sum(inv(x * A)) at x = 1 (that is -6 sum(inv(A))) against PyTorch."""
    derivatives, matrix = [], square(3)
    for lib, autograd in ((minifm, minifm.autograd), (torch, torch.autograd)):
        a = lib.tensor(matrix)
        x = lib.tensor(1.0, dtype=lib.float64, requires_grad=True)
        y = lib.linalg.inv(x * a).sum()
        for _ in range(3):
            (y,) = autograd.grad(y, x, create_graph=True)
        derivatives.append(y.item())
    np.testing.assert_allclose(derivatives[0], derivatives[1], rtol=1e-10)


@pytest.mark.parametrize("ord", ["nuc", 2, -2])
def test_svd_norm_gradients_at_repeated_singular_values_are_pytorchs(ord):
    """svdvals' gradient U diag(g) Vh needs no distinct singular values (svd's full backward
    divides by their differences), so the nuclear norm of an orthogonal matrix has one."""
    q = np.linalg.qr(RNG.standard_normal((2, 3, 3)))[0]
    (a, ta) = pair(array=q * [2.0, 2.0, 2.0], requires_grad=True)
    minifm.linalg.matrix_norm(a, ord).sum().backward()
    torch.linalg.matrix_norm(ta, ord).sum().backward()
    assert np.isfinite(a.grad.numpy()).all()
    if ord == "nuc":  # at a tie, amax/amin split the gradient differently from PyTorch
        assert_close(a.grad, ta.grad)


@pytest.mark.parametrize("values", ["svd", "eigh"])
def test_values_alone_through_a_decomposition_have_finite_gradients_at_ties(values):
    """An orthogonal matrix (all singular values 1, eigenvalues of the identity all 1): a
    loss on the values alone does not divide by their differences, as in PyTorch."""
    q = np.linalg.qr(RNG.standard_normal((3, 3)))[0]
    a, ta = pair(array=q if values == "svd" else np.eye(3), requires_grad=True)
    grads = []
    for lib, x in ((minifm, a), (torch, ta)):
        out = lib.linalg.svd(x)[1] if values == "svd" else lib.linalg.eigh(x)[0]
        out.sum().backward()   # the sum: tied values' vectors are arbitrary, U Vh is not
        grads.append(x.grad)
    assert np.isfinite(grads[0].numpy()).all()
    assert_close(*grads)


@pytest.mark.parametrize("mode,shape,match", [
    ("r", (4, 3), "mode='r'"), ("complete", (4, 3), "mode='complete' and nrows > ncols")])
def test_qr_backward_refusals_are_pytorchs(mode, shape, match):
    """No gradient without Q (mode='r'), nor through the arbitrary extra columns of a
    complete Q: both raise at backward, with PyTorch's messages."""
    for lib in (minifm, torch):
        a = lib.tensor(RNG.standard_normal(shape), requires_grad=True)
        with pytest.raises(RuntimeError, match=match):
            lib.linalg.qr(a, mode).R.sum().backward()


@pytest.mark.parametrize("matrix", [[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]],
                                    [[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]],
                                    np.zeros((3, 3))])
def test_det_gradient_at_a_singular_matrix_is_the_cofactor_matrix(matrix):
    """At an exactly singular matrix det's gradient is the cofactor matrix (from the SVD;
    nonzero at rank n-1), as finite differences and PyTorch's create_graph gradient say.
    (PyTorch's first-order gradient there is zero, a difference the README lists.)"""
    a, ta = pair(array=matrix, requires_grad=True)
    d = minifm.linalg.det(a)
    assert d.item() == 0.0
    (g,) = minifm.autograd.grad(d, a)
    (tg,) = torch.autograd.grad(torch.linalg.det(ta), ta, create_graph=True)
    assert_close(g, tg.detach())
    assert minifm.autograd.gradcheck(minifm.linalg.det, [a])


@pytest.mark.parametrize("matrix", [[[1.0, 2.0], [2.0, 4.0]],
                                    [[1.0, 2.0, 3.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
def test_det_second_derivative_at_a_singular_matrix_is_pytorchs(matrix):
    """Under create_graph the cofactors are built with the recorded svd: differentiable."""
    hessians = []
    for lib, autograd in ((minifm, minifm.autograd), (torch, torch.autograd)):
        a = lib.tensor(matrix, dtype=lib.float64, requires_grad=True)
        (g,) = autograd.grad(lib.linalg.det(a), a, create_graph=True)
        w = lib.tensor(np.arange(1.0, a.numel() + 1).reshape(a.shape), dtype=lib.float64)
        hessians.append(autograd.grad((g * w).sum(), a)[0])
    assert_close(*hessians)


def test_det_gradient_in_a_batch_with_one_singular_matrix():
    m = square(3, (2,))
    m[1, 2] = 0.0                                       # rank 2: the last row's cofactors
    a, ta = pair(array=m, requires_grad=True)
    (g,) = minifm.autograd.grad(minifm.linalg.det(a).sum(), a)
    (tg,) = torch.autograd.grad(torch.linalg.det(ta).sum(), ta, create_graph=True)
    assert g[1, 2].abs().sum().item() > 0
    assert_close(g, tg.detach())


# ----------------------------------------------------------------------------- drawn shapes
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

DRAWN = settings(max_examples=25, deadline=None)


def _grads_agree(expr, arrays):
    """expr's value and the gradients of a random projection of it, minifm against PyTorch,
    each gradient shaped as its input."""
    results = []
    for lib in (minifm, torch):
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = eval(expr, {"lib": lib, "x": leaves, "inf": float("inf")})
        weights = np.random.default_rng(1).standard_normal(tuple(out.shape))
        grads = (minifm.autograd if lib is minifm else torch.autograd).grad(
            (out * lib.tensor(weights)).sum(), leaves)
        results.append((out, grads))
    (out, grads), (tout, tgrads) = results
    assert_close(out, tout)
    for a, g, tg in zip(arrays, grads, tgrads):
        assert tuple(g.shape) == a.shape
        assert_close(g, tg)


@DRAWN
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_solve_broadcasts_batches_as_pytorch(batches, n, k, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (*batches.input_shapes[0], n, n)) + 3 * np.eye(n)
    b = rng.standard_normal((*batches.input_shapes[1], n, k))
    _grads_agree("lib.linalg.solve(x[0], x[1])", [a, b])


@DRAWN
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from([1.0, 2.0, 3.0, float("inf")]))
def test_cdist_broadcasts_batches_as_pytorch(batches, p_rows, r_rows, m, p):
    rng = np.random.default_rng(p_rows * 7 + r_rows)
    x1 = rng.standard_normal((*batches.input_shapes[0], p_rows, m))
    x2 = rng.standard_normal((*batches.input_shapes[1], r_rows, m))
    _grads_agree(f"lib.cdist(x[0], x[1], p={p})", [x1, x2])


@DRAWN
@given(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), st.data())
def test_vector_norm_over_drawn_dims(shape, data):
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1,
                              max_size=len(shape), unique_by=lambda d: d % len(shape)))
    ord = data.draw(st.sampled_from([2, 1, 3, float("inf"), -1.0]))
    keepdim = data.draw(st.booleans())
    x = np.random.default_rng(len(shape)).uniform(0.1, 2, shape) * np.sign(
        np.random.default_rng(3).standard_normal(shape))
    _grads_agree(f"lib.linalg.vector_norm(x[0], {ord}, {tuple(dims)}, {keepdim})", [x])
