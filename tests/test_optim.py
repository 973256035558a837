"""Optimizers (minifm/optim) and gradient clipping (minifm/nn/utils.py) against PyTorch.

Each optimizer trains the same small MLP, written with raw tensors and the same loss in
both frameworks from the same initial weights, for 25 steps on a fixed sequence of batches;
the parameters must agree with PyTorch's after every step (float32 within float32
tolerance, float64 to ~1e-10, which pins the update formulas down exactly). Also: param
groups, skipped parameters, in-place updates, state_dict layout and resume through
minifm.save/load, closures, zero_grad, and clip_grad_norm_ / clip_grad_value_."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm import optim  # noqa: E402
from minifm.nn import utils  # noqa: E402
from conftest import read_backend_variables_again  # noqa: E402

STEPS = 25
SHAPES = [(8, 4), (8,), (3, 8), (3,)]


def initial_weights(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * 0.5).astype(dtype) for s in SHAPES]


def batches(dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((16, 4)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype))
            for _ in range(STEPS)]


def mlp_loss(params, x, y, sign=1.0):
    """The same expression in both frameworks: mean squared error of a tanh MLP."""
    w1, b1, w2, b2 = params
    out = (x @ w1.T + b1).tanh() @ w2.T + b2
    return ((out - y) ** 2).mean() * sign


class Run:
    """One framework's parameters and optimizer, stepped on the shared batches."""

    def __init__(self, lib, make_optimizer, dtype, weights=None, groups=None):
        self.lib = lib
        new = torch.tensor if lib is torch else minifm.tensor
        self.params = [new(w.copy(), requires_grad=True) for w in (weights or initial_weights(dtype))]
        self.data = [(new(x), new(y)) for x, y in batches(dtype)]
        target = self.params if groups is None else groups(self.params)
        self.opt = make_optimizer(lib.optim, target)

    def step(self, i, sign=1.0):
        self.opt.zero_grad()
        mlp_loss(self.params, *self.data[i], sign).backward()
        self.opt.step()
        return [p.detach().numpy().copy() for p in self.params]


def assert_params_close(ours, theirs, dtype, step):
    tol = {} if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(torch.from_numpy(a), torch.from_numpy(b), **tol,
                                   msg=lambda m: f"step {step}, parameter {i}: {m}")


def assert_same_trajectory(make, dtype, sign=1.0, groups=None):
    ours, theirs = Run(minifm, make, dtype, groups=groups), Run(torch, make, dtype, groups=groups)
    for i in range(STEPS):
        assert_params_close(ours.step(i, sign), theirs.step(i, sign), dtype, i)
    return ours, theirs


CONFIGS = {
    "sgd": lambda o, p: o.SGD(p, lr=0.1),
    "sgd_momentum": lambda o, p: o.SGD(p, lr=0.05, momentum=0.9),
    "sgd_dampening_weight_decay": lambda o, p: o.SGD(p, lr=0.05, momentum=0.8, dampening=0.3,
                                                     weight_decay=0.05),
    "sgd_nesterov": lambda o, p: o.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda o, p: o.Adam(p, lr=0.01),
    "adam_weight_decay_amsgrad": lambda o, p: o.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                                     weight_decay=0.1, amsgrad=True),
    "adam_small_beta1": lambda o, p: o.Adam(p, lr=0.01, betas=(0.3, 0.9)),
    "adamw": lambda o, p: o.AdamW(p, lr=0.01),
    "adamw_amsgrad": lambda o, p: o.AdamW(p, lr=0.01, weight_decay=0.3, amsgrad=True),
    "rmsprop": lambda o, p: o.RMSprop(p, lr=0.005),
    "rmsprop_weight_decay": lambda o, p: o.RMSprop(p, lr=0.005, alpha=0.9, weight_decay=0.1),
    "rmsprop_centered_momentum": lambda o, p: o.RMSprop(p, lr=0.002, momentum=0.8, centered=True),
    "rmsprop_momentum": lambda o, p: o.RMSprop(p, lr=0.002, momentum=0.5, eps=1e-5),
}

MAXIMIZE = {
    "sgd": lambda o, p: o.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True),
    "adam": lambda o, p: o.Adam(p, lr=0.01, weight_decay=0.05, maximize=True),
    "adamw": lambda o, p: o.AdamW(p, lr=0.01, maximize=True),
    "rmsprop": lambda o, p: o.RMSprop(p, lr=0.005, centered=True, weight_decay=0.05, maximize=True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_trajectory_matches_pytorch(name, dtype):
    assert_same_trajectory(CONFIGS[name], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAXIMIZE))
def test_maximize_matches_pytorch_on_the_negated_loss(name, dtype):
    assert_same_trajectory(MAXIMIZE[name], dtype, sign=-1.0)


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw", "rmsprop_centered_momentum"])
def test_param_groups_with_their_own_hyperparameters(name):
    def groups(params):
        return [{"params": params[:2], "lr": 0.03, "weight_decay": 0.2},
                {"params": params[2:]}]
    ours, _ = assert_same_trajectory(CONFIGS[name], np.float64, groups=groups)
    first, second = ours.opt.param_groups
    assert first["lr"] == 0.03 and second["lr"] == ours.opt.defaults["lr"]


def test_parameters_without_gradient_are_skipped():
    frozen = minifm.tensor(np.ones(3, np.float32), requires_grad=True)
    run = Run(minifm, lambda o, p: o.Adam(p + [frozen], lr=0.1), np.float32)
    run.step(0)
    assert np.all(frozen.detach().numpy() == 1) and frozen not in run.opt.state
    assert all(p in run.opt.state for p in run.params) and len(run.opt.state) == 4


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "rmsprop_centered_momentum"])
def test_updates_are_in_place(name):
    """The parameter keeps its array, so a view of it (a tied weight) sees every update."""
    run = Run(minifm, CONFIGS[name], np.float32)
    arrays = [p._data for p in run.params]
    view = run.params[0]._data[0]
    before = view.copy()
    run.step(0)
    assert all(p._data is a for p, a in zip(run.params, arrays))
    assert not np.array_equal(view, before)


# ----------------------------------------------------------------------------- state_dict
@pytest.mark.parametrize("name", ["sgd_nesterov", "adam_weight_decay_amsgrad", "adamw",
                                  "rmsprop_centered_momentum"])
def test_state_dict_has_pytorch_layout_and_values(name):
    ours, theirs = Run(minifm, CONFIGS[name], np.float64), Run(torch, CONFIGS[name], np.float64)
    for i in range(3):
        ours.step(i), theirs.step(i)
    sd_m, sd_t = ours.opt.state_dict(), theirs.opt.state_dict()
    assert sorted(sd_m) == ["param_groups", "state"]
    assert list(sd_m["state"]) == list(sd_t["state"]) == [0, 1, 2, 3]
    for index, buffers in sd_t["state"].items():
        assert sorted(sd_m["state"][index]) == sorted(buffers)
        for key, value in buffers.items():
            np.testing.assert_allclose(np.asarray(sd_m["state"][index][key].numpy()
                                                  if key != "step" else sd_m["state"][index][key]),
                                       value.numpy(), rtol=1e-10)
    (group_m,), (group_t,) = sd_m["param_groups"], sd_t["param_groups"]
    assert group_m["params"] == group_t["params"] == [0, 1, 2, 3]
    for key, value in group_m.items():
        assert group_t[key] == value


@pytest.mark.parametrize("name", ["sgd_momentum", "adam_weight_decay_amsgrad", "adamw",
                                  "rmsprop_centered_momentum"])
def test_resume_from_saved_state_equals_uninterrupted_run(name, tmp_path):
    make = CONFIGS[name]
    uninterrupted = Run(minifm, make, np.float32)
    expected = [uninterrupted.step(i) for i in range(STEPS)]

    first = Run(minifm, make, np.float32)
    for i in range(10):
        first.step(i)
    minifm.save({"params": [p.detach() for p in first.params],
                 "optimizer": first.opt.state_dict()}, tmp_path / "ckpt.safetensors")

    checkpoint = minifm.load(tmp_path / "ckpt.safetensors")
    resumed = Run(minifm, make, np.float32, weights=[p.numpy() for p in checkpoint["params"]])
    resumed.opt.load_state_dict(checkpoint["optimizer"])
    for i in range(10, STEPS):
        got = resumed.step(i)
        for a, b in zip(got, expected[i]):
            np.testing.assert_array_equal(a, b)


def test_load_state_dict_copies_buffers_and_restores_hyperparameters():
    source = Run(minifm, CONFIGS["adam"], np.float64)
    source.step(0)
    source.opt.param_groups[0]["lr"] = 0.123
    target = Run(minifm, CONFIGS["adam"], np.float32)
    target.opt.load_state_dict(source.opt.state_dict())
    assert target.opt.param_groups[0]["lr"] == 0.123
    assert target.opt.param_groups[0]["params"] == target.params
    for p_src, p_dst in zip(source.params, target.params):
        buf_src, buf_dst = source.opt.state[p_src]["exp_avg"], target.opt.state[p_dst]["exp_avg"]
        assert buf_dst.dtype == minifm.float32 and buf_dst._data is not buf_src._data
        assert target.opt.state[p_dst]["step"] == 1


def test_load_state_dict_rejects_a_different_layout():
    run = Run(minifm, CONFIGS["adam"], np.float32)
    run.step(0)
    state = run.opt.state_dict()
    other = optim.Adam(run.params[:3])
    with pytest.raises(ValueError, match="group 0 has 4 parameters, but the optimizer's has 3"):
        other.load_state_dict(state)
    two_groups = optim.Adam([{"params": run.params[:2]}, {"params": run.params[2:]}])
    with pytest.raises(ValueError, match="1 parameter groups, but the optimizer has 2"):
        two_groups.load_state_dict(state)


# ----------------------------------------------------------------------------- API details
def test_step_with_closure_returns_its_loss():
    run = Run(minifm, CONFIGS["sgd"], np.float32)
    calls = []

    def closure():
        calls.append(1)
        run.opt.zero_grad()
        loss = mlp_loss(run.params, *run.data[0])
        loss.backward()
        return loss

    with minifm.no_grad():
        loss = run.opt.step(closure)
    assert calls == [1] and loss.requires_grad


def test_zero_grad_sets_none_or_zeros():
    p = minifm.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert np.all(p.grad.numpy() == 0)
    opt.zero_grad()
    assert p.grad is None


def test_add_param_group_fills_defaults():
    a, b = (minifm.tensor(np.ones(2, np.float32), requires_grad=True) for _ in range(2))
    opt = optim.AdamW([a], lr=0.5)
    opt.add_param_group({"params": b, "weight_decay": 0.0})
    group = opt.param_groups[1]
    assert group["params"] == [b] and group["lr"] == 0.5 and group["weight_decay"] == 0.0
    assert group["betas"] == (0.9, 0.999) and group["decoupled_weight_decay"] is True


def test_pytorch_implementation_switches_are_accepted():
    p = [minifm.tensor(np.ones(2, np.float32), requires_grad=True)]
    for opt in (optim.SGD(p, foreach=True, fused=None), optim.AdamW(p, foreach=False, fused=True),
                optim.RMSprop(p, foreach=None)):
        assert "foreach" not in opt.defaults and "fused" not in opt.defaults


@pytest.mark.parametrize("call,exc,match", [
    (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "iterable of Tensors or dicts"),
    (lambda p: optim.SGD([p[0] * 2], lr=0.1), ValueError, "can't optimize a non-leaf Tensor"),
    (lambda p: optim.SGD([1.0], lr=0.1), TypeError, "can only optimize Tensors, but one of the params is float"),
    (lambda p: optim.SGD([{"params": {p[0]}}], lr=0.1), TypeError, "ordered collections"),
    (lambda p: optim.SGD([{"params": p}, {"params": p[:1]}]), ValueError, "more than one parameter group"),
    (lambda p: optim.SGD(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.AdamW(p, eps=-1e-8), ValueError, "Invalid epsilon value"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), ValueError, "Invalid alpha value: -0.1"),
])
def test_optimizer_errors(call, exc, match):
    params = [minifm.tensor(np.ones(2, np.float32), requires_grad=True) for _ in range(2)]
    with pytest.raises(exc, match=match):
        call(params)


# ----------------------------------------------------------------------------- clipping
def _grads_pair(seed=0, dtype=np.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    grads = [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]
    ours = [minifm.tensor(np.zeros(s, dtype), requires_grad=True) for s in SHAPES]
    theirs = [torch.zeros(s, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
              for s in SHAPES]
    for g, a, b in zip(grads, ours, theirs):
        a.grad = minifm.tensor(g.copy())
        b.grad = torch.tensor(g.copy())
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5, 0.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    ours, theirs = _grads_pair()
    norm_m = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    norm_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert norm_m.shape == () and norm_m.dtype == minifm.float32
    torch.testing.assert_close(torch.tensor(norm_m.item()), norm_t)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(torch.from_numpy(a.grad.numpy()), b.grad)


def test_clip_grad_norm_skips_missing_grads_and_takes_one_tensor():
    ours, theirs = _grads_pair(seed=1, scale=3.0)
    ours[1].grad, theirs[1].grad = None, None
    norm_m = utils.clip_grad_norm_(ours, 1.0)
    norm_t = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    torch.testing.assert_close(torch.tensor(norm_m.item()), norm_t)
    assert ours[1].grad is None
    single = utils.clip_grad_norm_(ours[0], 0.1)
    torch.testing.assert_close(torch.tensor(single.item()),
                               torch.nn.utils.clip_grad_norm_(theirs[0], 0.1))
    assert utils.clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_nonfinite(bad):
    ours, theirs = _grads_pair(seed=2)
    ours[2].grad._data[0, 0] = bad
    theirs[2].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    norm_m = utils.clip_grad_norm_(ours, 1.0)
    norm_t = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    torch.testing.assert_close(torch.tensor(norm_m.item()), norm_t, equal_nan=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(torch.from_numpy(a.grad.numpy()), b.grad, equal_nan=True)


def test_clip_grad_value_matches_pytorch():
    ours, theirs = _grads_pair(seed=3)
    utils.clip_grad_value_(ours, 0.4)
    torch.nn.utils.clip_grad_value_(theirs, 0.4)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(torch.from_numpy(a.grad.numpy()), b.grad, rtol=0, atol=0)


def test_parameters_to_vector_and_back():
    ours, theirs = _grads_pair(seed=4)
    vec = utils.parameters_to_vector(ours)
    np.testing.assert_array_equal(vec.detach().numpy(),
                                  torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    new = np.arange(vec.numel(), dtype=np.float32)
    utils.vector_to_parameters(minifm.tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(ValueError, match="vector of 3 elements for parameters of 67 elements"):
        utils.vector_to_parameters(minifm.zeros(3), ours)


# ----------------------------------------------------------------------------- SGD's kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    dict(), dict(momentum=0.9), dict(momentum=0.9, weight_decay=5e-4),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01), dict(maximize=True),
    dict(momentum=0.9, weight_decay=0.01, maximize=True)], ids=str)
@pytest.mark.parametrize("size", [7, 300_001])  # one range; several ranges on 2 threads
def test_sgd_kernel_gives_the_numpy_rules_bits(options, dtype, size, monkeypatch):
    """minifm.kernels.sgd_cpu's one pass and the NumPy rule agree to the bit over three
    steps (the first writes the momentum buffer), on one thread and on two."""
    numba = pytest.importorskip("numba")
    from minifm.kernels import cpu_tasks
    monkeypatch.setattr(cpu_tasks, "SERIAL_BELOW", 300_001)  # the large size is shared
    rng = np.random.default_rng(0)
    start = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(3)]
    results = {}
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for backend in ("numba", "reference"):
            monkeypatch.setenv("MINIFM_SGD_BACKEND", backend)
            read_backend_variables_again(monkeypatch)
            p = minifm.tensor(start.copy(), requires_grad=True)
            opt = optim.SGD([p], lr=0.1, **options)
            for g in grads:
                p.grad = minifm.tensor(g)
                opt.step()
            buffer = opt.state[p].get("momentum_buffer")
            results[backend] = (p.detach().numpy().copy(),
                                None if buffer is None else buffer.numpy().copy())
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(results["numba"][0], results["reference"][0])
    if results["reference"][1] is not None:
        np.testing.assert_array_equal(results["numba"][1], results["reference"][1])


def test_sgd_kernel_leaves_non_contiguous_gradients_to_numpy():
    """A gradient that is not C-contiguous (a user's transposed array) takes the NumPy
    rule, with the same result as a contiguous copy of it on the kernel."""
    rng = np.random.default_rng(1)
    start, g = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((4, 5))
    ps = [minifm.tensor(start.copy(), requires_grad=True) for _ in range(2)]
    for p, grad in zip(ps, (g.T.astype(np.float32), np.ascontiguousarray(g.T, np.float32))):
        opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
        for _ in range(2):
            p.grad = minifm.tensor(grad)
            assert p.grad._data.flags.c_contiguous == (p is ps[1])
            opt.step()
    np.testing.assert_array_equal(ps[0].detach().numpy(), ps[1].detach().numpy())
