"""Module hooks against torch.nn.Module's: the same module tree with the same weights in
both libraries, the same hooks, and then the same calls in the same order, the same
grad_input/grad_output values, the same effect of a returned replacement, and handles whose
remove() takes a hook off again."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from minifm.nn.interop import load_torch_state_dict  # noqa: E402
from conftest import assert_close, from_torch, to_numpy  # noqa: E402


def build(lib):
    """A tree with a two-input module (a non-Tensor argument in between, a tuple output) over
    a Sequential: hooks see positional Tensors, None for everything else."""

    class Mix(lib.Module):
        def __init__(self):
            super().__init__()
            self.body = lib.Sequential(lib.Linear(3, 4), lib.Tanh(), lib.Linear(4, 2))

        def forward(self, x, scale, y):
            h = self.body(x) * scale + y
            return h, h * h

    return Mix()


def pair():
    """(minifm model, torch model) with equal weights, and equal inputs requiring grad."""
    torch.manual_seed(0)
    ref = build(torch.nn).double()
    ours = build(nn).double()
    load_torch_state_dict(ours, ref.state_dict())
    tx, ty = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    return (ours, from_torch(tx, True), from_torch(ty, True)), (ref, tx.requires_grad_(),
                                                                 ty.requires_grad_())


def run(model, x, y):
    a, b = model(x, 2.0, y)
    (a.sum() + b.sum()).backward()


def attach(model, log):
    """Every kind of hook on every module, logging (kind, module name, values)."""
    handles = []
    for name, module in model.named_modules():
        def pre(m, args, name=name):
            log.append(("forward_pre", name, None))

        def fwd(m, args, out, name=name):
            log.append(("forward", name, None))

        def bpre(m, grad_output, name=name):
            log.append(("backward_pre", name, grad_output))

        def bwd(m, grad_input, grad_output, name=name):
            log.append(("backward", name, (grad_input, grad_output)))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(fwd),
                    module.register_full_backward_pre_hook(bpre),
                    module.register_full_backward_hook(bwd)]
    return handles


def flat(values):
    """Nested tuples of tensors/None as a list of NumPy arrays or None."""
    if isinstance(values, tuple):
        return [v for item in values for v in flat(item)]
    return [None if values is None else to_numpy(values)]


def test_call_order_and_gradients_match_pytorch():
    (ours, x, y), (ref, tx, ty) = pair()
    mine, theirs = [], []
    attach(ours, mine)
    attach(ref, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the first Linear's input needs no gradient
        run(ours, x, y)
        run(ref, tx, ty)
    assert [(k, n) for k, n, _ in mine] == [(k, n) for k, n, _ in theirs]
    for (_, name, got), (_, _, want) in zip(mine, theirs):
        got, want = flat(got), flat(want)
        assert [g is None for g in got] == [w is None for w in want], name
        for g, w in zip(got, want):
            if g is not None:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=name)
    assert_close(x.grad, tx.grad)


def test_grad_input_is_none_for_non_tensor_arguments():
    (ours, x, y), _ = pair()
    seen = []
    ours.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    run(ours, x, y)
    (grad_input, grad_output), = seen
    assert len(grad_input) == 3 and grad_input[1] is None and len(grad_output) == 2
    assert grad_input[0].shape == x.shape and grad_input[2].shape == y.shape


def test_input_without_grad_warns_like_pytorch():
    layers = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    for layer, x in zip(layers, (minifm.ones(1, 3), torch.ones(1, 3))):
        seen = []
        layer.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            layer(x).sum().backward()
        assert seen == [(None,)]


def test_replacements_match_pytorch():
    """A pre-hook doubles the input, a forward hook negates the output, a backward pre-hook
    scales grad_output, a full backward hook scales grad_input: all four take effect."""
    results = []
    for model, x, y in pair():
        model.body.register_forward_pre_hook(lambda m, args: args[0] * 2)
        model.body[1].register_forward_hook(lambda m, args, out: -out)
        model.body[2].register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
        model.register_full_backward_hook(
            lambda m, gi, go: tuple(None if g is None else g * 5 for g in gi))
        a, b = model(x, 2.0, y)
        (a.sum() + b.sum()).backward()
        results.append([a, b, x.grad, y.grad] + [p.grad for p in model.parameters()])
    for got, want in zip(*results):
        assert_close(got, want)


def test_kwargs_hooks_match_pytorch():
    results = []
    for model, x, y in pair():
        def pre(m, args, kwargs):
            return (args[0], 3.0), dict(kwargs, y=kwargs["y"] * 0 + 1)

        def fwd(m, args, kwargs, out):
            return out[0] + kwargs["y"].sum(), out[1]
        model.register_forward_pre_hook(pre, with_kwargs=True)
        model.register_forward_hook(fwd, with_kwargs=True)
        a, b = model(x, 2.0, y=y)
        results.append([a, b])
    for got, want in zip(*results):
        assert_close(got, want)


def test_remove_and_prepend():
    layer = nn.Linear(2, 2)
    calls = []
    first = layer.register_forward_hook(lambda m, a, o: calls.append("first"))
    layer.register_forward_hook(lambda m, a, o: calls.append("prepended"), prepend=True)
    with layer.register_forward_pre_hook(lambda m, a: calls.append("pre")):
        layer(minifm.ones(1, 2))
    assert calls == ["pre", "prepended", "first"]
    first.remove()
    first.remove()  # removing twice is harmless, as in PyTorch
    calls.clear()
    layer(minifm.ones(1, 2))
    assert calls == ["prepended"]


def test_backward_hook_removal_and_no_grad():
    layer = nn.Linear(2, 2)
    calls = []
    handle = layer.register_full_backward_hook(lambda m, gi, go: calls.append(go))
    x = minifm.ones(1, 2, requires_grad=True)
    with minifm.no_grad():
        assert layer(x).grad_fn is None  # nothing is wrapped when no graph is recorded
    handle.remove()
    layer(x).sum().backward()
    assert calls == []
    assert layer(x).grad_fn.name() != "BackwardHookFunctionBackward"


def test_backward_hooks_under_create_graph_match_pytorch():
    """Gradients of gradients flow through the hooks' identity nodes."""
    results = []
    for model, x, y in pair():
        lib = minifm if isinstance(x, minifm.Tensor) else torch
        seen = []
        model.body.register_full_backward_hook(lambda m, gi, go: seen.append(gi[0]))
        a, b = model(x, 2.0, y)
        (gx,) = lib.autograd.grad((a * b).sum(), [x], create_graph=True)
        (gx * gx).sum().backward()
        results.append([gx, x.grad, seen[0]])
    for got, want in zip(*results):
        assert_close(got, want)
