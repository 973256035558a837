"""Views and in-place ops against PyTorch: values, gradients, and the cases PyTorch refuses.

Each pattern is a function of (lib, a, c): `lib` is minifm or torch, `a` a leaf that requires
grad, `c` a constant. It returns the tensors whose values must match; the sum of the first
one (weighted, so that every element's gradient differs) is backpropagated and a.grad
compared too. The same code runs on both libraries, so the table reads as PyTorch code.
"""
import numpy as np
import pytest
import torch

import minifm

A = np.arange(1.0, 25.0).reshape(4, 6) / 7.0
C = np.linspace(-1.0, 1.0, 24).reshape(4, 6)


def _run(lib, pattern):
    a = lib.tensor(A, requires_grad=True)
    c = lib.tensor(C)
    outs = pattern(lib, a, c)
    outs = outs if isinstance(outs, tuple) else (outs,)
    weights = lib.tensor(np.arange(1.0, outs[0].numel() + 1).reshape(tuple(outs[0].shape)))
    (outs[0] * weights).sum().backward()
    values = [o.detach().numpy().copy() for o in outs]
    return values, a.grad.numpy().copy()


PATTERNS = {
    # one view, one in-place op
    "slice mul_": lambda lib, a, c: _do(a * 2, lambda b: b[1:3].mul_(3)),
    "row fill_": lambda lib, a, c: _do(a * 2, lambda b: b[0].fill_(7)),
    "element fill_": lambda lib, a, c: _do(a * 2, lambda b: b[1, 2].fill_(-1)),
    "column add_": lambda lib, a, c: _do(a * 2, lambda b: b[:, 1].add_(c[:, 0])),
    "view row fill_ (issue)": lambda lib, a, c: _do(a * 2, lambda b: b.view(2, 12)[0].fill_(7)),
    "transpose copy_": lambda lib, a, c: _do(a + 1, lambda b: b.t()[2].copy_(a[:, 0] * 5)),
    "permute mul_": lambda lib, a, c: _do(a * a, lambda b: b.view(2, 2, 6).permute(2, 0, 1)[1].mul_(c[0, :4].view(2, 2))),
    "unsqueeze squeeze div_": lambda lib, a, c: _do(a * 3, lambda b: b.unsqueeze(0).squeeze(0)[3].div_(2)),
    "narrow sub_": lambda lib, a, c: _do(a * 2, lambda b: b.narrow(1, 2, 3).sub_(a[:, :3])),
    "select clamp_": lambda lib, a, c: _do(a * 4, lambda b: b.select(1, 4).clamp_(0.0, 2.0)),
    "diagonal mul_": lambda lib, a, c: _do(a * 2, lambda b: b[:, :4].diagonal().mul_(10)),
    "diagonal offset add_": lambda lib, a, c: _do(a * 2, lambda b: b.diagonal(1).add_(a[0, :4])),
    "reshape-as-view zero_": lambda lib, a, c: _do(a * 2, lambda b: b.reshape(24)[5:9].zero_()),
    "flatten masked_fill_": lambda lib, a, c: _do(a * 2, lambda b: b.flatten()[::3].masked_fill_(c.flatten()[::3] > 0, 0.5)),
    "movedim mul_": lambda lib, a, c: _do(a * 2, lambda b: b.view(2, 2, 6).movedim(2, 0)[0].mul_(a[0, :4].view(2, 2))),
    "setitem slice": lambda lib, a, c: _do(a * 2, lambda b: b.__setitem__((slice(1, 3), slice(None, None, 2)), a[:2, :3] * 3)),
    "setitem through view": lambda lib, a, c: _do(a * 2, lambda b: b.t().__setitem__(1, a[0, :4])),
    "setitem bool mask": lambda lib, a, c: _do(a * 2, lambda b: b.__setitem__(c > 0.3, 0.0)),
    "setitem int index": lambda lib, a, c: _do(a * 2, lambda b: b.__setitem__(lib.tensor([0, 2]), a[1] * 4)),
    "view of view of view": lambda lib, a, c: _do(a * 2, lambda b: b.view(4, 2, 3)[1:3].transpose(0, 2)[1].mul_(-2)),
    # other views of the same base see the write and carry the gradient
    "sibling view saved before": lambda lib, a, c: _sibling(a, before=True),
    "sibling view made after": lambda lib, a, c: _sibling(a, before=False),
    "overlapping views": lambda lib, a, c: _overlap(a),
    "view used before the write": lambda lib, a, c: _view_before(a),
    "two writes through two views": lambda lib, a, c: _do(_do(a * 2, lambda b: b[0].mul_(3)), lambda b: b[:, 0].add_(b[1, :4])),
    # in-place on a non-view, with a saved array that must keep its old values
    "mul_ after exp saved": lambda lib, a, c: _saved_then_inplace(a),
    "copy_ from constant": lambda lib, a, c: _do(a * 2, lambda b: b[2:].copy_(c[:2])),
    "copy_ broadcast": lambda lib, a, c: _do(a * 2, lambda b: b[1:3].copy_(a[0])),
    "constant base, grad value": lambda lib, a, c: _do(lib.zeros(4, 6, dtype=lib.float64), lambda b: b[1].copy_(a[2] * a[3])),
    "0-d view of a vector": lambda lib, a, c: _do(a.sum(0), lambda b: b[3].mul_(100)),
    "expand then read": lambda lib, a, c: _expand_read(a),
}


def _do(base, write):
    write(base)
    return base


def _sibling(a, before):
    b = a * 2
    other = b[:, 1:4] if before else None
    b[1:3].mul_(5)
    if other is None:
        other = b[:, 1:4]
    return (other * other).sum(1), b


def _overlap(a):
    b = a * 2
    top, left = b[:3], b[:, :4]
    top.add_(1)
    return left * 3, top


def _base_before(lib, a, c, keep):
    b = a * 2
    early = keep(b) * keep(b)   # Mul saves b's old values
    b[0].fill_(0)
    return early + b


def _view_before(a):
    b = a * 2
    v = b[1]
    early = v.exp()        # saves v's old values
    b[1].mul_(3)
    return early.sum() * b, v


def _write_base_read_view(lib, a, c, keep):
    b = a * 2
    v = b.t()[1:3]
    b.mul_(keep(b))             # Mul saves b, then b changes
    return v * 2, b


def _exp_then_add_(lib, a, c, keep):
    b = keep(a.exp())           # Exp saves its output b
    b.add_(a)
    return b


def _sigmoid_then_view_write(lib, a, c, keep):
    b = keep(a.sigmoid())       # Sigmoid saves its output b
    b[:, ::2].mul_(3)
    return b


def _saved_then_inplace(a):
    b = a * 1
    e = b.exp()
    b.mul_(2)
    return e * b


def _expand_read(a):
    b = a[0].expand(3, 6)
    return b * a[1:]


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_view_inplace_matches_pytorch(name):
    pattern = PATTERNS[name]
    values, grad = _run(minifm, pattern)
    values_t, grad_t = _run(torch, pattern)
    for got, want in zip(values, values_t):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, grad_t, rtol=1e-12, atol=1e-12)


def test_at_least_thirty_patterns():
    assert len(PATTERNS) >= 30


# Arrays saved for backward and then written in place: PyTorch's version counter refuses
# these backward passes ("modified by an inplace operation"); minifm writes copy-on-write,
# so the saved arrays keep their values and the gradient is right. The oracle is PyTorch
# with a clone() at the point where minifm keeps the old array.
SAVED_THEN_WRITTEN = {
    "mul saves the base, then a view is written": _base_before,
    "mul saves b, then b.mul_(b)": _write_base_read_view,
    "exp saves its output, then add_": _exp_then_add_,
    "sigmoid saves its output, then a view is written": _sigmoid_then_view_write,
}


@pytest.mark.parametrize("name", sorted(SAVED_THEN_WRITTEN))
def test_saved_then_written_is_right_where_pytorch_refuses(name):
    pattern = SAVED_THEN_WRITTEN[name]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        _run(torch, lambda lib, a, c: pattern(lib, a, c, keep=lambda t: t))
    values, grad = _run(minifm, lambda lib, a, c: pattern(lib, a, c, keep=lambda t: t))
    values_t, grad_t = _run(torch, lambda lib, a, c: pattern(lib, a, c, keep=torch.clone))
    for got, want in zip(values, values_t):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, grad_t, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- refusals
def _leaf_inplace(lib):
    a = lib.ones(3, requires_grad=True)
    a.mul_(2)


def _view_of_leaf(lib):
    a = lib.ones(3, 2, requires_grad=True)
    a[0].mul_(2)


def _expanded(lib):
    b = lib.ones(3) * 1
    b.expand(2, 3).add_(1)


def _unbind_output(lib):
    b = lib.ones(3, 2, requires_grad=True) * 1
    b.unbind(0)[0].mul_(2)


def _split_output(lib):
    b = lib.ones(4, 2, requires_grad=True) * 1
    b.split(2)[1].add_(1)


def _view_made_in_no_grad(lib):
    b = lib.ones(4, 2, requires_grad=True) * 1
    with lib.no_grad():
        v = b[0]
    v.mul_(2)


def _view_of_noncontiguous(lib):
    lib.ones(3, 4).t().view(12)


def _shape_mismatch(lib):
    b = lib.ones(3) * 1
    b.add_(lib.ones(2, 3))


REFUSED = {
    "in-place on a leaf that requires grad": (_leaf_inplace, "leaf"),
    "in-place on a view of such a leaf": (_view_of_leaf, "view of a leaf"),
    "in-place on an expanded tensor": (_expanded, "single memory location"),
    "in-place on an output of unbind": (_unbind_output, "multiple views"),
    "in-place on an output of split": (_split_output, "multiple views"),
    "view made in no_grad, written with grad": (_view_made_in_no_grad, "no_grad"),
    "view of a non-contiguous tensor": (_view_of_noncontiguous, "reshape"),
    "result shape differs": (_shape_mismatch, "shape"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_where_pytorch_refuses(name):
    case, words = REFUSED[name]
    with pytest.raises(RuntimeError):
        case(torch)
    with pytest.raises(RuntimeError, match=words):
        case(minifm)


# ----------------------------------------------------------------------------- without graphs
def test_writes_outside_autograd_reach_base_and_every_view():
    x = minifm.zeros(3, 4)
    row, col, flat = x[1], x.t()[2], x.view(12)
    row.add_(1)
    col.fill_(5)
    flat[0:2] = minifm.tensor([8.0, 9.0])
    expected = torch.zeros(3, 4)
    expected[1] += 1
    expected.t()[2].fill_(5)
    expected.view(12)[0:2] = torch.tensor([8.0, 9.0])
    np.testing.assert_array_equal(x.numpy(), expected.numpy())
    np.testing.assert_array_equal(row.numpy(), expected[1].numpy())
    np.testing.assert_array_equal(flat.numpy(), expected.view(12).numpy())


def test_parameter_update_under_no_grad_reaches_views():
    w = minifm.ones(2, 3, requires_grad=True)
    wt = w.t()
    with minifm.no_grad():
        w.mul_(4)
        w[0].zero_()
    np.testing.assert_array_equal(wt.detach().numpy(), np.array([[0, 4], [0, 4], [0, 4.0]]))


def test_views_share_memory_and_know_their_base():
    x = minifm.zeros(2, 3)
    for v in (x[0], x.t(), x.view(6), x.unsqueeze(0), x.expand(4, 2, 3), x.narrow(1, 0, 2),
              x.diagonal(), x.movedim(0, 1), x.select(1, 2), x[0, 1]):
        assert v._base is x and v._is_view()
        assert np.shares_memory(v._data, x._data)
    assert x.t().t()._base is x  # a view of a view has the root as its base
    assert x[[0, 1]]._base is None  # advanced indexing copies


def test_grad_fn_name_follows_pytorch():
    b, bt = minifm.ones(3, requires_grad=True) * 1, torch.ones(3, requires_grad=True) * 1
    b[0].mul_(2)
    bt[0].mul_(2)
    assert b.grad_fn.name() == type(bt.grad_fn).__name__ == "CopySlices"
