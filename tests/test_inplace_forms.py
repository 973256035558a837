"""The in-place `_` forms built generically in ops/inplace.py (INPLACE_FORMS, VIEW_FORMS),
against PyTorch: the list itself, values, gradients, writes through views, the view ops'
own shape change, and the refusals."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm.ops.inplace import INPLACE_FORMS, VIEW_FORMS  # noqa: E402
from minifm.tensor_api import METHODS  # noqa: E402

RNG = np.random.default_rng(0)
A = RNG.uniform(0.1, 0.9, (4, 6))                        # inside every op's domain
C = np.where(RNG.random((4, 6)) < 0.3, A, RNG.uniform(0.1, 0.9, (4, 6)))  # some equal to A
W = np.arange(1.0, 25.0).reshape(4, 6)                   # weights: each gradient differs


def test_every_pytorch_inplace_form_of_a_method_exists():
    """Every Tensor method of minifm with a `name_` form in PyTorch has one, and every form
    built from the lists is one PyTorch has."""
    missing = [n for n in METHODS if not n.startswith("__") and hasattr(torch.Tensor, n + "_")
               and not hasattr(minifm.Tensor, n + "_")]
    assert missing == [], "add these to INPLACE_FORMS (or VIEW_FORMS) in minifm/ops/inplace.py"
    assert all(hasattr(torch.Tensor, n + "_") for n in INPLACE_FORMS + VIEW_FORMS)


def _other(lib, shape):
    return lib.tensor(C[:shape[0]] if shape[0] < 4 else C)


# name -> the arguments after self, as a function of (lib, shape of self)
FLOAT_ARGS = {name: lambda lib, s: () for name in INPLACE_FORMS}
FLOAT_ARGS.update({
    "pow": lambda lib, s: (2.5,), "fmod": lambda lib, s: (0.3,), "remainder": lambda lib, s: (0.3,),
    "floor_divide": lambda lib, s: (0.3,), "clip": lambda lib, s: (0.3, 0.6),
    "clamp_min": lambda lib, s: (0.4,), "clamp_max": lambda lib, s: (0.4,),
    "cumsum": lambda lib, s: (1,), "cumprod": lambda lib, s: (0,), "triu": lambda lib, s: (1,),
    "lerp": lambda lib, s: (_other(lib, s), 0.3),
    **{n: (lambda lib, s: (_other(lib, s),)) for n in (
        "atan2", "arctan2", "copysign", "hypot", "xlogy", "eq", "ne", "lt", "le", "gt", "ge",
        "logical_and", "logical_or", "logical_xor")},
})
INTEGER_ONLY = {n for n in INPLACE_FORMS if n.startswith("bitwise")}
SHIFT = {"acosh": 1.0, "arccosh": 1.0}                    # their domain starts at 1
UNTRACKED_IN_PYTORCH = {"logical_and", "logical_or", "logical_xor", "logical_not"}
"""PyTorch's logical_*_ leave the graph as it was (the gradient flows through the written
values as if they were the old ones); minifm records the write (a zero gradient), so the
oracle for these is copy_ of the out-of-place result."""


def _float_run(lib, name, through_view, copy=False):
    """b = a * 1 (or a view of it) written in place by name_ (or, with copy=True, by copy_
    of the out-of-place result); (b's values, the target's values, a's gradient)."""
    a = lib.tensor(A + SHIFT.get(name, 0.0), requires_grad=True)
    b = a * 1
    target = b[1:3] if through_view else b
    args = FLOAT_ARGS[name](lib, tuple(target.shape))
    if copy:  # "detach": the out-of-place op has no derivative either (floor_divide)
        source = target.detach() if copy == "detach" else target
        target.copy_(getattr(source.clone(), name)(*args))
    else:
        assert getattr(target, name + "_")(*args) is target
    (b * lib.tensor(W)).sum().backward()
    grad = a.grad.numpy() if a.grad is not None else np.zeros_like(A)
    return b.detach().numpy(), target.detach().numpy(), grad


@pytest.mark.parametrize("through_view", [False, True], ids=["tensor", "view"])
@pytest.mark.parametrize("name", sorted(set(INPLACE_FORMS) - INTEGER_ONLY))
def test_inplace_form_matches_pytorch(name, through_view):
    ours = _float_run(minifm, name, through_view)
    try:
        theirs = _float_run(torch, name, through_view, copy=name in UNTRACKED_IN_PYTORCH)
    except (NotImplementedError, RuntimeError) as err:
        if "derivative" not in str(err):
            raise
        # PyTorch has no derivative for a few _ forms (acosh_, floor_divide_): copy_ of the
        # out-of-place result is the oracle
        try:
            theirs = _float_run(torch, name, through_view, copy=True)
        except RuntimeError:
            theirs = _float_run(torch, name, through_view, copy="detach")
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("through_view", [False, True], ids=["tensor", "view"])
@pytest.mark.parametrize("name", sorted(INTEGER_ONLY))
def test_integer_inplace_form_matches_pytorch(name, through_view):
    def run(lib):
        b = lib.tensor((A * 40).astype(np.int64) - 15)
        target = b[1:3] if through_view else b
        rows = C[1:3] if through_view else C
        args = () if name == "bitwise_not" else (lib.tensor((rows * 5).astype(np.int64)),)
        assert getattr(target, name + "_")(*args) is target
        return b.numpy().copy()
    np.testing.assert_array_equal(run(minifm), run(torch))


@pytest.mark.parametrize("expr", ["x **= 2", "x %= 0.3", "x //= 0.3", "x += 1", "x /= 4"])
def test_python_inplace_operators_keep_the_tensor(expr):
    results = []
    for lib in (minifm, torch):
        x = lib.tensor(A)
        y, scope = x, {"x": x}
        exec(expr, scope)
        assert scope["x"] is y
        results.append(y.numpy())
    np.testing.assert_allclose(*results, rtol=1e-12)


@pytest.mark.parametrize("expr", ["x &= 6", "x |= 9", "x ^= 5", "x <<= 2", "x >>= 1"])
def test_python_bitwise_inplace_operators(expr):
    results = []
    for lib in (minifm, torch):
        x = lib.tensor(np.arange(-5, 7))
        y, scope = x, {"x": x}
        exec(expr, scope)
        assert scope["x"] is y
        results.append(y.numpy())
    np.testing.assert_array_equal(*results)


# ----------------------------------------------------------------------------- view forms
VIEW_CASES = {
    "t": ((3, 4), ()), "transpose": ((3, 1, 4), (0, 2)), "swapaxes": ((3, 1, 4), (2, 1)),
    "swapdims": ((3, 1, 4), (0, 1)), "unsqueeze": ((3, 1, 4), (1,)), "squeeze": ((3, 1, 4), ()),
    "squeeze_dim": ((3, 1, 4), (1,)),
}


def _view_run(lib, case, through_view):
    """The shape change on a non-leaf tensor (or on a view of one), then a write through it:
    the shapes, the values of the tensor, of the base and of a view made before, and a's
    gradient through all three."""
    shape, args = VIEW_CASES[case]
    name = case.removesuffix("_dim")
    a = lib.tensor(np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape), requires_grad=True)
    base = a * 1
    earlier = base[1]                                   # a view made before the change
    x = base[1:] if through_view else base
    assert getattr(x, name + "_")(*args) is x
    after_change = tuple(x.shape)
    x.mul_(lib.arange(1.0, 1.0 + x.shape[-1], dtype=lib.float64))  # a write through x
    loss = (x * x).sum() + (base * 3).sum() + (earlier * 5).sum()
    loss.backward()
    return (after_change, x.detach().numpy(), base.detach().numpy(), earlier.detach().numpy(),
            a.grad.numpy())


@pytest.mark.parametrize("through_view", [False, True], ids=["tensor", "view"])
@pytest.mark.parametrize("case", sorted(VIEW_CASES))
def test_view_form_matches_pytorch(case, through_view):
    ours, theirs = _view_run(minifm, case, through_view), _view_run(torch, case, through_view)
    assert ours[0] == theirs[0]
    for got, want in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", VIEW_FORMS)
def test_view_form_on_a_leaf(name):
    """Refused on a leaf that requires grad (as any in-place op); under no_grad the leaf
    changes shape and stays a leaf."""
    shape, args = VIEW_CASES[name]
    for lib in (minifm, torch):
        a = lib.ones(*shape, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            getattr(a, name + "_")(*args)
        with lib.no_grad():
            getattr(a, name + "_")(*args)
        assert a.requires_grad and a.grad_fn is None
    assert tuple(a.shape) == tuple(getattr(torch.ones(*shape), name)(*args).shape)


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("call", [
    lambda lib: lib.arange(4).exp_(), lambda lib: lib.arange(4).div_(2),
    lambda lib: lib.ones(3, dtype=lib.bool).add_(1), lambda lib: lib.arange(4).sqrt_(),
])
def test_a_result_that_cannot_be_cast_back_is_refused(call):
    with pytest.raises(RuntimeError, match="can't be cast"):
        call(torch)
    with pytest.raises(RuntimeError, match="can't be cast"):
        call(minifm)


def test_comparison_forms_write_ones_and_zeros_into_floats():
    for lib in (minifm, torch):
        x = lib.tensor([1.0, 2.0, 3.0])
        x.ge_(2.0)
        assert x.dtype == lib.float32 and x.tolist() == [0.0, 1.0, 1.0]


def test_inplace_functions_at_top_level():
    """torch.exp_(x) and its kind: the same forms as functions, where torch has them."""
    names = [n for n in dir(minifm) if n.endswith("_") and not n.startswith("_")]
    assert len(names) >= 45 and all(hasattr(torch, n) for n in names)
    for lib in (minifm, torch):
        x = lib.tensor([-1.5, 0.5, 2.0])
        assert lib.relu_(x) is x and lib.clamp_(x, 0.0, 1.0) is x and lib.exp_(x) is x
        assert lib.zero_(x) is x
    x = minifm.tensor([-1.5, 0.5, 2.0])
    minifm.sqrt_(minifm.abs_(x))
    np.testing.assert_allclose(x.numpy(), np.sqrt([1.5, 0.5, 2.0]), rtol=1e-6)
