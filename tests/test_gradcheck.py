"""minifm.autograd.gradcheck: it passes right gradients, as torch.autograd.gradcheck does on
the same functions, and it catches wrong ones."""
import numpy as np
import pytest
import torch

import minifm
from minifm.autograd import Function, GradcheckError, gradcheck


class WrongSquare(Function):
    """x**2 with a backward that is off by a factor of 1.01 at one element."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        grad = 2 * x * g
        grad.flat[1] *= 1.01
        return grad


def _inputs(lib, *shapes):
    rng = np.random.default_rng(0)
    return [lib.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


FUNCTIONS = {
    "tanh of a matmul": (lambda a, b: (a @ b).tanh(), [(3, 4), (4, 2)]),
    "softmax with two outputs": (lambda a: (a.softmax(-1), a.exp().sum(0)), [(2, 5)]),
    "broadcast and reduce": (lambda a, b: (a * b).sum(1), [(3, 1), (3, 4)]),
    "views and an in-place write": (lambda a: _write_through_view(a), [(3, 4)]),
}


def _write_through_view(a):
    b = a * 1
    b[1].mul_(a[0])
    return b.sin()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("fast_mode", [False, True])
def test_passes_where_pytorch_passes(name, fast_mode):
    fn, shapes = FUNCTIONS[name]
    assert torch.autograd.gradcheck(fn, _inputs(torch, *shapes), fast_mode=fast_mode)
    assert gradcheck(fn, _inputs(minifm, *shapes), fast_mode=fast_mode)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_catches_a_wrong_backward(fast_mode):
    (x,) = _inputs(minifm, (2, 3))
    with pytest.raises(GradcheckError, match="input 0" if fast_mode else r"element \(0, 1\)"):
        gradcheck(WrongSquare.apply, [x], fast_mode=fast_mode)
    assert gradcheck(WrongSquare.apply, [x], raise_exception=False) is False


def test_refuses_single_precision():
    x = minifm.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [x])


def test_leaves_inputs_unchanged():
    (x,) = _inputs(minifm, (2, 2))
    before = x.detach().numpy().copy()
    gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(x.detach().numpy(), before)


class FalseConstant(Function):
    """x**3 whose backward uses x*x, saved as if it were a constant (saved_constants is a
    false promise here): first derivatives are right, second ones miss d(x*x)/dx."""

    saved_constants = True

    @staticmethod
    def forward(ctx, x):
        square = x * x
        ctx.save_for_backward(square)
        return square * x

    @staticmethod
    def backward(ctx, g):
        (square,) = ctx.saved
        return g * 3 * square


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradgradcheck_passes_where_pytorch_passes(name):
    fn, shapes = FUNCTIONS[name]
    assert torch.autograd.gradgradcheck(fn, _inputs(torch, *shapes))
    assert minifm.autograd.gradgradcheck(fn, _inputs(minifm, *shapes))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    (x,) = _inputs(minifm, (2, 2))
    assert gradcheck(FalseConstant.apply, [x])
    with pytest.raises(GradcheckError):
        minifm.autograd.gradgradcheck(FalseConstant.apply, [x])
