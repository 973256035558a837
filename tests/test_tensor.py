"""The Tensor API against PyTorch: creation, attributes, conversions, autograd entry points
(requires_grad_, retain_grad, hooks, backward), printing, dtype promotion and device checks."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402


def torch_dtype(dtype):
    return getattr(torch, np.dtype(dtype).name)


def same_dtype(ours, theirs):
    return np.dtype(ours.dtype) == np.dtype(str(theirs.dtype).removeprefix("torch."))


# ----------------------------------------------------------------------------- creation
@pytest.mark.parametrize("data", [[1.0, 2.5], [1, 2, 3], [True, False], [[1, 2], [3, 4]], 3.5, 7,
                                  [[1.0, 2], [3, 4]], np.arange(4, dtype=np.int32),
                                  np.ones(3, np.float64)])
def test_tensor_infers_dtype_like_pytorch(data):
    ours, theirs = minifm.tensor(data), torch.tensor(data)
    assert tuple(ours.shape) == tuple(theirs.shape) and same_dtype(ours, theirs)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_tensor_copies_and_takes_dtype_and_requires_grad():
    a = np.ones(3, np.float32)
    t = minifm.tensor(a, dtype=minifm.float64, requires_grad=True)
    a[0] = 5
    assert t.dtype == minifm.float64 and t.requires_grad and t.is_leaf
    assert t.detach().numpy()[0] == 1
    u = minifm.tensor(t)
    assert not u.requires_grad and u.dtype == minifm.float64


@pytest.mark.parametrize("name,args,kwargs", [
    ("zeros", (2, 3), {}), ("ones", ((2, 3),), {}), ("zeros", (4,), {"dtype": "int64"}),
    ("full", ((2, 2), 1.5), {}), ("full", ((2, 2), 7), {}), ("full", ((2,), True), {}),
    ("arange", (5,), {}), ("arange", (1, 4, 0.5), {}), ("arange", (2.0, 5.0), {}),
    ("arange", (10, 0, -3), {}), ("linspace", (0, 1, 5), {}), ("linspace", (-2, 2, 4), {"dtype": "float64"}),
    ("eye", (3,), {}), ("eye", (2, 4), {}),
])
def test_factories_match_pytorch(name, args, kwargs):
    ours = getattr(minifm, name)(*args, **{k: getattr(minifm, v) for k, v in kwargs.items()})
    theirs = getattr(torch, name)(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
    assert_close(ours, theirs)


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "rand_like", "randn_like"])
def test_like_factories_keep_shape_and_dtype(name):
    x = minifm.ones(2, 3, dtype=minifm.float64)
    y = getattr(minifm, name)(x)
    assert y.shape == x.shape and y.dtype == minifm.float64 and not y.requires_grad
    z = getattr(minifm, name)(x, dtype=minifm.float32, requires_grad=True)
    assert z.dtype == minifm.float32 and z.requires_grad
    assert_close(minifm.full_like(x, 2.5), torch.full((2, 3), 2.5, dtype=torch.float64))
    r = minifm.randint_like(minifm.zeros(4, 5, dtype=minifm.int64), 3, 7)
    assert r.dtype == minifm.int64 and r.shape == (4, 5) and 3 <= r.numpy().min() <= r.numpy().max() < 7


def test_random_factories_shape_dtype_range_and_determinism():
    minifm.manual_seed(0)
    a, b = minifm.rand(1000), minifm.randn(2, 500, dtype=minifm.float64)
    c = minifm.randint(-3, 4, (1000,))
    assert a.dtype == minifm.float32 and 0 <= a.numpy().min() and a.numpy().max() < 1
    assert b.dtype == minifm.float64 and abs(b.numpy().mean()) < 0.15 and 0.85 < b.numpy().std() < 1.15
    assert c.dtype == minifm.int64 and set(np.unique(c.numpy())) == set(range(-3, 4))
    minifm.manual_seed(0)
    np.testing.assert_array_equal(minifm.rand(1000).numpy(), a.numpy())
    gen = minifm.Generator().manual_seed(5)
    state = gen.get_state()
    first = minifm.randn(10, generator=gen).numpy()
    gen.set_state(state)
    np.testing.assert_array_equal(minifm.randn(10, generator=gen).numpy(), first)
    assert sorted(minifm.randperm(10).tolist()) == list(range(10))


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros(4, np.float32)
    t = minifm.from_numpy(a)
    a[1] = 3.0
    assert t[1].item() == 3.0
    t[2] = 5.0
    assert a[2] == 5.0
    assert np.shares_memory(t.numpy(), a)
    with pytest.raises(TypeError, match="from_numpy.*ndarray.*list"):
        minifm.from_numpy([1, 2])


# ----------------------------------------------------------------------------- attributes
def test_attributes():
    x = minifm.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.dtype == minifm.float32 and str(x.device) == "cpu" and x.device == minifm.device("cpu")
    assert not x.requires_grad and x.grad is None and x.is_leaf
    assert minifm.zeros(2, 3).T.shape == (3, 2)
    w = minifm.ones(3, requires_grad=True)
    y = w * 2
    assert y.requires_grad and not y.is_leaf and w.is_leaf and y.grad_fn is not None


def test_module_level_names_like_pytorch():
    assert minifm.is_tensor(minifm.ones(1)) and not minifm.is_tensor(np.ones(1))
    assert minifm.inf == torch.inf and np.isnan(minifm.nan)
    assert minifm.float is minifm.float32 and minifm.long is minifm.int64 and minifm.half is minifm.float16


def test_conversions():
    x = minifm.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert isinstance(x.numpy(), np.ndarray) and x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert x[0, 0].item() == 1.5 and isinstance(x[0, 0].item(), float)
    assert isinstance(minifm.tensor([3]).item(), int)
    assert float(x[1, 1]) == 4.0 and int(minifm.tensor(7)) == 7
    with pytest.raises(RuntimeError, match="item.*4 elements"):
        x.item()
    for method, dtype in [("float", minifm.float32), ("double", minifm.float64),
                          ("half", minifm.float16), ("long", minifm.int64)]:
        assert getattr(x, method)().dtype == dtype
    assert x.to(minifm.float64).dtype == minifm.float64
    assert x.to("cpu") is x and x.to(minifm.float32) is x
    assert x.to("cpu", minifm.int64).dtype == minifm.int64
    assert x.to(dtype=minifm.float16, device="cpu").dtype == minifm.float16
    w = minifm.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="numpy.*requires grad.*detach"):
        w.numpy()


def test_new_factories_take_dtype_and_device_from_the_tensor():
    x = minifm.ones(2, dtype=minifm.float64)
    tx = torch.ones(2, dtype=torch.float64)
    assert_close(x.new_zeros(2, 3), tx.new_zeros(2, 3))
    assert_close(x.new_ones((3,)), tx.new_ones((3,)))
    assert_close(x.new_full((2,), 7), tx.new_full((2,), 7))
    assert_close(x.new_tensor([1, 2]), tx.new_tensor([1, 2]))
    assert x.new_empty(4).shape == (4,) and x.new_zeros(2, dtype=minifm.int64).dtype == minifm.int64
    assert x.new_ones(2, requires_grad=True).requires_grad


def test_detach_shares_memory_and_drops_the_graph():
    w = minifm.ones(3, requires_grad=True)
    y = w * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d[0] = 10.0
    assert y[0].item() == 10.0


def test_to_dtype_is_differentiable():
    w = minifm.tensor([1.0, 2.0], dtype=minifm.float64, requires_grad=True)
    (w.float() * 3).sum().backward()
    assert w.grad.dtype == minifm.float64
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])


def test_requires_grad_():
    x = minifm.zeros(3)
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    with pytest.raises(RuntimeError, match="floating point.*minifm.int64"):
        minifm.zeros(3, dtype=minifm.int64).requires_grad_()
    y = minifm.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_retain_grad():
    w = minifm.tensor([1.0, 2.0], requires_grad=True)
    h = w * 3
    h.retain_grad()
    (h * h).sum().backward()
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    th = tw * 3
    th.retain_grad()
    (th * th).sum().backward()
    assert h.retains_grad
    assert_close(h.grad, th.grad)
    assert_close(w.grad, tw.grad)


@pytest.mark.parametrize("leaf", [True, False])
def test_register_hook_sees_and_replaces_the_gradient(leaf):
    seen = {}

    def hook(g):
        seen["g"] = g.numpy().copy()
        return g * 10

    for lib in (minifm, torch):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        target = w if leaf else w * 2
        target.register_hook(hook)
        (target * target).sum().backward()
        seen[lib.__name__] = (seen["g"], to_numpy(w.grad))
    np.testing.assert_allclose(seen["minifm"][0], seen["torch"][0])
    np.testing.assert_allclose(seen["minifm"][1], seen["torch"][1])


def test_hook_handle_removes_the_hook():
    w = minifm.ones(2, requires_grad=True)
    handle = w.register_hook(lambda g: g * 0)
    handle.remove()
    w.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="hook.*doesn't require"):
        minifm.ones(2).register_hook(lambda g: g)


def test_backward_with_gradient_and_retain_graph():
    w = minifm.tensor([1.0, 2.0], requires_grad=True)
    y = w * w
    y.backward(gradient=minifm.tensor([1.0, 0.5]), retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 2.0])
    y.backward(gradient=minifm.tensor([1.0, 1.0]))
    np.testing.assert_allclose(w.grad.numpy(), [4.0, 6.0])  # accumulated
    with pytest.raises(RuntimeError, match="implicitly created only for scalar.*\\(2,\\)"):
        (w * 2).backward()
    with pytest.raises(RuntimeError, match="gradient has shape \\(3,\\).*output.*\\(2,\\)"):
        (w * 2).backward(minifm.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        minifm.ones(2).sum().backward()


def test_backward_on_a_leaf_and_through_a_0d_result():
    w = minifm.tensor(3.0, requires_grad=True)
    w.backward()
    assert w.grad.item() == 1.0
    v = minifm.tensor(2.0, requires_grad=True)
    (v * v * v).backward()
    assert v.grad.item() == 12.0 and isinstance(v.grad._data, np.ndarray)


def test_in_place_operators_follow_pytorch():
    x = minifm.ones(3)
    alias = x
    x += 2
    x *= minifm.tensor([1.0, 2.0, 3.0])
    assert x is alias
    np.testing.assert_array_equal(x.numpy(), [3.0, 6.0, 9.0])
    w = minifm.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf.*in-place"):
        w += 1
    with minifm.no_grad():
        w -= 0.5
    h = w * 2
    h += w   # recorded: the graph now goes through the addition
    h.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])


def test_data_setter_updates_the_device():
    """Regression (engine_bugs.md): `p.data = q` must take q's device too."""
    p = minifm.zeros(2)
    q = minifm.ones(2)
    q.device = minifm.device("cuda", 0)  # a fake device: only the attribute is checked
    p.data = q
    assert p.device == minifm.device("cuda", 0) and p._data is q._data
    p.data = np.zeros(3)
    assert p.device == minifm.device("cpu") and p.shape == (3,)


def test_import_minifm_exposes_nn_and_optim():
    """Regression (engine_bugs.md): `import minifm; minifm.nn.functional` as in PyTorch."""
    import subprocess
    import sys
    code = "import minifm; minifm.nn.functional.relu; minifm.optim.SGD"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- printing
@pytest.mark.parametrize("data", [
    [1.0, 2.0], [1.5, 2.0], [1e-5, 1.0], [1e9, 1.0], [[1, 2], [3, 4]], [True, False],
    [float("nan"), 1.0, float("inf")], [0.0], [], 3.5, [-0.5, 123.25], [[0.1, -2.0]] * 3,
])
def test_repr_matches_pytorch(data):
    assert repr(minifm.tensor(data)) == repr(torch.tensor(data))


def test_repr_of_large_and_special_tensors():
    x = np.random.default_rng(0).standard_normal((40, 50)).astype(np.float32)
    assert repr(minifm.tensor(x)) == repr(torch.tensor(x))              # summarized
    y = np.random.default_rng(1).standard_normal((3, 30))
    assert repr(minifm.tensor(y)) == repr(torch.tensor(y)).replace("torch.", "minifm.")
    assert repr(minifm.zeros(0, 3, dtype=minifm.int64)) == "tensor([], size=(0, 3), dtype=minifm.int64)"
    assert repr(minifm.arange(3).half()) == "tensor([0., 1., 2.], dtype=minifm.float16)"
    w = minifm.tensor([1.0, 2.0], requires_grad=True)
    assert repr(w) == "tensor([1., 2.], requires_grad=True)"
    assert repr(w * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"


# ----------------------------------------------------------------------------- dtype rules
@pytest.mark.parametrize("dtype,other", [
    ("float32", 2.0), ("float32", 2), ("float16", 2.5), ("float64", 3), ("int64", 0.5),
    ("int64", 2), ("int32", 3), ("int32", 1.5), ("bool", 1), ("bool", 1.5), ("uint8", 2),
])
def test_python_scalars_never_promote(dtype, other):
    a = np.ones(3, dtype=dtype)
    for op in (lambda x, y: x * y, lambda x, y: y + x, lambda x, y: x * y + x):
        ours, theirs = op(minifm.tensor(a), other), op(torch.tensor(a), other)
        assert same_dtype(ours, theirs), (dtype, other, ours.dtype, theirs.dtype)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("a,b", [("int64", "float32"), ("int32", "int64"), ("float16", "float32"),
                                 ("float32", "float64"), ("bool", "int32"), ("uint8", "int8"),
                                 ("int64", "float16"), ("bool", "float32")])
def test_tensor_tensor_promotion(a, b):
    x, y = np.ones(2, dtype=a), np.full(2, 2, dtype=b)
    for op in (lambda u, v: u + v, lambda u, v: v * u):
        ours, theirs = op(minifm.tensor(x), minifm.tensor(y)), op(torch.tensor(x), torch.tensor(y))
        assert same_dtype(ours, theirs), (a, b, ours.dtype, theirs.dtype)


@pytest.mark.parametrize("a,b", [("float32", "float64"), ("int64", "float64"), ("float16", "float64"),
                                 ("float32", "int64"), ("bool", "int32"), ("int32", "int64"),
                                 ("uint8", "int8"), ("bool", "float64")])
def test_zero_dim_tensors_promote_like_scalars(a, b):
    vec, zero = np.ones(3, dtype=a), np.array(2, dtype=b)
    for op in (lambda u, v: u + v, lambda u, v: v * u):
        ours = op(minifm.tensor(vec), minifm.tensor(zero))
        theirs = op(torch.tensor(vec), torch.tensor(zero))
        assert same_dtype(ours, theirs), (a, b, ours.dtype, theirs.dtype)
    both_zero = minifm.tensor(np.array(1, dtype=a)) + minifm.tensor(zero)
    assert same_dtype(both_zero, torch.tensor(np.array(1, dtype=a)) + torch.tensor(zero))


def test_int_true_division_and_float_ops_give_the_default_float():
    x = minifm.tensor([1, 2, 3])
    assert (x / 2).dtype == minifm.float32 and x.exp().dtype == minifm.float32
    assert x.sum().dtype == minifm.int64
    with pytest.raises(TypeError, match="mean.*floating.*minifm.int64"):
        x.mean()


def test_float16_reductions_accumulate_in_float32():
    # Summed naively in float16, a column of 8192 ones stops at 2048 (2049 is not a float16).
    x = minifm.ones(8192, 2, dtype=minifm.float16)
    assert np.ones((8192, 2), np.float16).sum(0, dtype=np.float16)[0] == 2048
    s, m = x.sum(0), x.mean(0)
    assert s.dtype == minifm.float16 and m.dtype == minifm.float16
    np.testing.assert_array_equal(s.numpy(), [8192, 8192])
    np.testing.assert_array_equal(m.numpy(), [1, 1])
    v = minifm.tensor(np.linspace(0, 1, 4096, dtype=np.float16)).reshape(4096, 1)
    assert_close(v.var(0), torch.tensor(v.numpy()).var(0), atol=1e-3, rtol=1e-3)


# ----------------------------------------------------------------------------- devices
def _on_fake_gpu(t):
    t.device = minifm.device("cuda", 0)  # only the attribute: enough for the device checks
    return t


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a @ b, lambda a, b: minifm.maximum(a, b),
                                lambda a, b: minifm.where(a > 0, a, b)])
def test_ops_on_different_devices_raise(op):
    a, b = minifm.ones(2, 2), _on_fake_gpu(minifm.ones(2, 2))
    with pytest.raises(RuntimeError, match="same device.*cpu.*cuda:0"):
        op(a, b)


def test_cat_on_different_devices_raises():
    with pytest.raises(RuntimeError, match="cat.*same device.*cpu.*cuda:0"):
        minifm.cat([minifm.ones(2), _on_fake_gpu(minifm.ones(2))])


def test_device_objects():
    assert minifm.device("cuda:1") == minifm.device("cuda", 1) and str(minifm.device("cuda")) == "cuda:0"
    assert repr(minifm.device("cpu")) == "device(type='cpu')"
    with pytest.raises(ValueError, match="'cpu' or 'cuda'.*'tpu'"):
        minifm.device("tpu")


def test_to_and_from_cuda(device):
    x = minifm.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(device)
    assert str(y.device).startswith(device)
    (y * 3).sum().backward()
    assert x.grad.device == minifm.device("cpu")
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(y.detach().cpu().numpy(), [1.0, 2.0])
