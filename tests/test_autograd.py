"""The backward engine: long chains, reused nodes, freeing the graph, retain_graph,
thread-local grad mode, autograd.grad against torch.autograd.grad, and custom Functions."""
from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm.autograd import Function  # noqa: E402
from conftest import assert_close  # noqa: E402


def test_a_10000_op_chain_backpropagates_iteratively():
    x = minifm.tensor([1.0, 2.0], dtype=minifm.float64, requires_grad=True)
    y = x
    for i in range(10_000):
        y = y * 1.0001 if i % 2 else y + 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 5000] * 2, rtol=1e-12)


def test_a_node_used_many_times_gets_the_sum_of_its_gradients():
    results = []
    for lib in (minifm, torch):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        h = x.exp()
        total = h * 0
        for k in range(1, 51):
            total = total + h * k + h[1] * h
        total.sum().backward()
        results.append(x.grad)
    assert_close(*results)


def test_diamond_graph_and_shared_leaf():
    results = []
    for lib in (minifm, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        a, b = x.sin(), x.cos()
        y = (a * b + a / (b + 3) + x).sum()
        y.backward()
        results.append(x.grad)
    assert_close(*results)


def test_gradients_keep_the_input_dtype_when_dtypes_mix():
    a = minifm.ones(3, requires_grad=True)                         # float32
    b = minifm.ones(3, dtype=minifm.float64, requires_grad=True)   # float64
    out = a * b
    assert out.dtype == minifm.float64
    out.sum().backward()
    assert a.grad.dtype == minifm.float32 and b.grad.dtype == minifm.float64


def test_nothing_of_the_graph_stays_alive_after_backward():
    gc.disable()  # reference counting alone must free it: the graph has no cycles
    try:
        x = minifm.randn(50, requires_grad=True)
        h = x.exp()
        g = h.sin() * h
        refs = [weakref.ref(h._data), weakref.ref(h.grad_fn), weakref.ref(g.grad_fn)]
        loss = g.sum()
        del h, g
        loss.backward()
        assert all(r() is None for r in refs), [r() for r in refs]
        assert x.grad is not None and loss.grad_fn is not None   # the output keeps its node
        root = weakref.ref(loss.grad_fn)
        del loss
        assert root() is None
    finally:
        gc.enable()


def test_nothing_is_recorded_when_no_gradient_is_needed():
    x = minifm.randn(3, requires_grad=True)
    with minifm.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    z = minifm.randn(3) * 2
    assert z.grad_fn is None and not z.requires_grad


def test_second_backward_needs_retain_graph():
    x = minifm.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()

    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])   # 2 * (2x), accumulated


def test_backward_into_a_freed_shared_subgraph_raises():
    x = minifm.ones(2, requires_grad=True)
    h = x * 3
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2).sum().backward()


# ----------------------------------------------------------------------------- grad mode
def test_grad_mode_context_managers_and_decorators():
    x = minifm.ones(2, requires_grad=True)
    with minifm.no_grad():
        assert not minifm.is_grad_enabled()
        with minifm.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert minifm.is_grad_enabled()

    @minifm.no_grad()
    def called():
        return x * 2

    @minifm.no_grad
    def bare():
        return x * 2

    assert not called().requires_grad and not bare().requires_grad and minifm.is_grad_enabled()

    with minifm.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert minifm.is_grad_enabled()
    minifm.set_grad_enabled(False)
    try:
        assert not minifm.is_grad_enabled()
    finally:
        minifm.set_grad_enabled(True)


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ValueError):
        with minifm.no_grad():
            raise ValueError
    assert minifm.is_grad_enabled()


def test_grad_mode_is_thread_local():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with minifm.no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = minifm.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    seen["main"] = minifm.is_grad_enabled()                       # worker is in no_grad now
    seen["records"] = (minifm.ones(1, requires_grad=True) * 2).requires_grad
    release.set()
    thread.join()
    assert seen == {"worker": False, "main": True, "records": True}

    def fresh_thread():
        seen["fresh"] = minifm.is_grad_enabled()
    with minifm.no_grad():
        t = threading.Thread(target=fresh_thread)
        t.start()
        t.join()
    assert seen["fresh"] is True


# ----------------------------------------------------------------------------- autograd.grad
def _graph(lib):
    x = lib.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    w = lib.tensor([1.5, -0.5], requires_grad=True)
    unused = lib.tensor([1.0], requires_grad=True)
    h = (x * w).tanh()
    out = (h @ w).exp()
    return x, w, unused, h, out


def test_autograd_grad_matches_torch():
    x, w, unused, h, out = _graph(minifm)
    tx, tw, tunused, th, tout = _graph(torch)
    seed = [0.3, -1.2]
    ours = minifm.autograd.grad(out, [x, w, h], grad_outputs=minifm.tensor(seed), retain_graph=True)
    theirs = torch.autograd.grad(tout, [tx, tw, th], grad_outputs=torch.tensor(seed), retain_graph=True)
    for a, b in zip(ours, theirs):
        assert_close(a, b)
    assert x.grad is None and w.grad is None   # returned, not accumulated
    (gx,) = minifm.autograd.grad(out.sum(), x, retain_graph=True)
    assert_close(gx, torch.autograd.grad(tout.sum(), tx, retain_graph=True)[0])
    with pytest.raises(RuntimeError, match="not used.*allow_unused"):
        minifm.autograd.grad(out.sum(), [x, unused], retain_graph=True)
    gx, gu = minifm.autograd.grad(out.sum(), [x, unused], allow_unused=True)
    assert gu is None and torch.autograd.grad(tout.sum(), [tx, tunused], allow_unused=True)[1] is None


def test_autograd_grad_of_several_outputs():
    results = []
    for lib in (minifm, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        a, b = x * x, x.sin()
        results.append(lib.autograd.grad([a, b], [x], [lib.ones(3), lib.full((3,), 2.0)])[0])
    assert_close(*results)


# ----------------------------------------------------------------------------- Function
class Cube(Function):
    @staticmethod
    def forward(ctx, x, *, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g * ctx.scale * 3 * x ** 2


class TwoGrads(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g, g


def test_custom_function():
    x = minifm.tensor([1.0, -2.0], requires_grad=True)
    y = Cube.apply(x, scale=2.0)
    assert repr(y.grad_fn) == "<CubeBackward0>"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    with pytest.raises(RuntimeError, match="TwoGradsBackward0 returned 2 gradients for 1 inputs"):
        TwoGrads.apply(x).sum().backward()
    with pytest.raises(TypeError, match="Cube.*expected Tensor.*list"):
        Cube.apply([1.0], scale=1.0)


def test_broadcast_gradients_are_summed_to_the_input_shape():
    results = []
    for lib in (minifm, torch):
        a = lib.ones(3, 1, requires_grad=True)
        b = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        c = lib.tensor(2.0, requires_grad=True)
        ((a * b + c) ** 2).sum().backward()
        results.append((a.grad, b.grad, c.grad))
    for ours, theirs in zip(*results):
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert_close(ours, theirs)


def test_leaf_gradients_own_their_memory():
    a = minifm.ones(3, requires_grad=True)
    b = minifm.ones(3, requires_grad=True)
    (a + b).sum().backward()   # Add hands one array to both inputs
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.mul_(2.0)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 1.0])


class _ReshapedGradient(Function):
    """Identity whose backward returns a reshape of a fresh array (as a kernel's flat result
    reshaped to the input's shape), and optionally keeps the fresh array as well."""
    kept = []

    @staticmethod
    def forward(ctx, x, *, keep):
        ctx.keep = keep
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        flat = g.reshape(-1) * 2.0
        if ctx.keep:
            _ReshapedGradient.kept.append(flat)
        return flat.reshape(g.shape)


def test_a_leaf_takes_a_reshaped_gradient_that_nothing_else_holds_without_a_copy(monkeypatch):
    """A view of the whole of a fresh array that only the view refers to becomes .grad as
    it is (no copy, as PyTorch's AccumulateGrad steals a gradient of use count 1); when
    anything else still holds that array, .grad is a copy, so writing into .grad cannot
    reach it; a broadcast (sum's gradient) is copied into memory of its own."""
    from minifm.autograd import engine
    handed = []
    as_array = engine._as_array
    monkeypatch.setattr(engine, "_as_array", lambda g: handed.append(as_array(g)) or handed[-1])
    x = minifm.ones(2, 3, requires_grad=True)
    _ReshapedGradient.apply(x, keep=False).backward(minifm.ones(2, 3))
    assert handed[-1] is x.grad.numpy() and not handed[-1].flags.owndata
    x.grad = None
    _ReshapedGradient.apply(x, keep=True).backward(minifm.ones(2, 3))
    assert not np.shares_memory(x.grad.numpy(), _ReshapedGradient.kept[-1])
    x.grad.numpy()[:] = 7.0
    np.testing.assert_array_equal(_ReshapedGradient.kept[-1], np.full(6, 2.0))
    x.grad = None
    x.sum().backward()
    assert x.grad.numpy().flags.owndata and x.grad.numpy().strides == (12, 4)
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


def test_backward_with_inputs_accumulates_only_into_them():
    results = []
    for lib in (minifm, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        (a * b).sum().backward(inputs=[a])
        results.append((a.grad, b.grad))
    assert results[0][1] is None and results[1][1] is None
    assert_close(results[0][0], results[1][0])


def test_backward_create_graph_gives_grads_that_differentiate_again():
    """x.grad from backward(create_graph=True) is in a graph: its own backward adds the
    second derivative into x.grad, as in PyTorch."""
    results = []
    for lib in (minifm, torch):
        x = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        first = x.grad.detach().numpy().copy()
        assert x.grad.requires_grad
        x.grad.sum().backward()
        results.append((first, x.grad.detach().numpy().copy()))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12)
