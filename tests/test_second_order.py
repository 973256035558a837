"""Second derivatives of the functional ops outside the op table (losses, normalization,
convolution, pooling, embedding, attention, linear) against PyTorch, float64.

Each case builds float64 inputs from one seed, computes the first derivatives of
<v, f(inputs)> with create_graph=True, then the gradients of <w, first derivatives> with
respect to every input: what a gradient penalty, a Hessian-vector product or a
meta-learning step needs. The fused kernels take part: under create_graph they fall back
to a differentiable form (their reference's backward, or a composite).
"""
import numpy as np
import pytest
import torch
import torch.nn.attention
import torch.nn.functional as TF

import minifm
import minifm.nn.functional as F


def _normal(rng, *shape):
    return rng.standard_normal(shape)


def _targets(rng, n, classes):
    return rng.integers(0, classes, size=n)


def _attention(lib, F, q, k, v, **kwargs):
    """scaled_dot_product_attention; PyTorch's through its math backend, as its flash
    kernel has no second derivative."""
    if lib is not torch:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, **kwargs)


# name: (function of (lib, F, *tensors), inputs that require grad, constant inputs)
CASES = {
    "linear": (lambda lib, F, x, w, b: F.linear(x, w, b),
               lambda r: [_normal(r, 3, 4), _normal(r, 5, 4), _normal(r, 5)], []),
    "cross_entropy": (lambda lib, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                      lambda r: [_normal(r, 4, 5)], lambda r: [_targets(r, 4, 5)]),
    "nll_loss of log_softmax": (lambda lib, F, x, t: F.nll_loss(F.log_softmax(x, dim=1), t),
                                lambda r: [_normal(r, 4, 5)], lambda r: [_targets(r, 4, 5)]),
    "mse_loss": (lambda lib, F, x, y: F.mse_loss(x, y),
                 lambda r: [_normal(r, 3, 4), _normal(r, 3, 4)], []),
    "smooth_l1_loss": (lambda lib, F, x, y: F.smooth_l1_loss(x, y),
                       lambda r: [_normal(r, 3, 4), _normal(r, 3, 4)], []),
    "binary_cross_entropy_with_logits": (
        lambda lib, F, x, y: F.binary_cross_entropy_with_logits(x, y),
        lambda r: [_normal(r, 3, 4)], lambda r: [r.uniform(size=(3, 4))]),
    "binary_cross_entropy": (lambda lib, F, x, y: F.binary_cross_entropy(x.sigmoid(), y),
                             lambda r: [_normal(r, 3, 4)], lambda r: [r.uniform(size=(3, 4))]),
    "layer_norm (no affine)": (lambda lib, F, x: F.layer_norm(x, (6,)) ** 3,
                               lambda r: [_normal(r, 2, 3, 6)], []),
    "layer_norm (weight only)": (lambda lib, F, x, w: F.layer_norm(x, (6,), w) ** 3,
                                 lambda r: [_normal(r, 2, 3, 6), _normal(r, 6)], []),
    "layer_norm": (lambda lib, F, x, w, b: F.layer_norm(x, (6,), w, b),
                   lambda r: [_normal(r, 2, 3, 6), _normal(r, 6), _normal(r, 6)], []),
    "batch_norm (training)": (
        lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        lambda r: [_normal(r, 4, 3, 2, 2), _normal(r, 3), _normal(r, 3)], []),
    "conv2d": (lambda lib, F, x, w, b: F.conv2d(x, w, b, stride=1, padding=1),
               lambda r: [_normal(r, 2, 3, 5, 5), _normal(r, 4, 3, 3, 3), _normal(r, 4)], []),
    "conv_transpose2d": (
        lambda lib, F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1),
        lambda r: [_normal(r, 2, 3, 4, 4), _normal(r, 3, 2, 4, 4), _normal(r, 2)], []),
    "max_pool2d": (lambda lib, F, x: F.max_pool2d(x, 2) ** 2,
                   lambda r: [_normal(r, 2, 3, 4, 4)], []),
    "avg_pool2d": (lambda lib, F, x: F.avg_pool2d(x, 2) ** 2,
                   lambda r: [_normal(r, 2, 3, 4, 4)], []),
    "adaptive_avg_pool2d": (lambda lib, F, x: F.adaptive_avg_pool2d(x, 1) ** 2,
                            lambda r: [_normal(r, 2, 3, 4, 4)], []),
    "embedding": (lambda lib, F, w, i: F.embedding(i, w) ** 2,
                  lambda r: [_normal(r, 7, 3)], lambda r: [r.integers(0, 7, size=(2, 5))]),
    "scaled_dot_product_attention": (
        lambda lib, F, q, k, v: _attention(lib, F, q, k, v),
        lambda r: [_normal(r, 1, 2, 5, 4) for _ in range(3)], []),
    "scaled_dot_product_attention (causal)": (
        lambda lib, F, q, k, v: _attention(lib, F, q, k, v, is_causal=True),
        lambda r: [_normal(r, 1, 2, 5, 4) for _ in range(3)], []),
    "gelu then softmax": (lambda lib, F, x: F.softmax(F.gelu(x), dim=-1),
                          lambda r: [_normal(r, 3, 8)], []),
}


def _second_derivatives(lib, name):
    fn, make_grad, make_const = CASES[name]
    rng = np.random.default_rng(0)
    grad_arrays = make_grad(rng)
    consts = make_const(rng) if callable(make_const) else []
    functional = TF if lib is torch else F
    leaves = [lib.tensor(a, requires_grad=True) for a in grad_arrays]
    constants = [lib.tensor(a) for a in consts]
    out = fn(lib, functional, *leaves, *constants)
    v = lib.tensor(rng.standard_normal(tuple(out.shape)))
    firsts = lib.autograd.grad(out, leaves, v, create_graph=True)
    total = sum((g * lib.tensor(rng.standard_normal(tuple(g.shape)))).sum()
                for g in firsts if g.requires_grad)
    seconds = lib.autograd.grad(total, leaves, allow_unused=True)
    return [g.detach().numpy() for g in firsts], [
        None if g is None else g.detach().numpy() for g in seconds]


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_order_matches_pytorch(name):
    firsts, seconds = _second_derivatives(minifm, name)
    t_firsts, t_seconds = _second_derivatives(torch, name)
    for got, want in zip(firsts, t_firsts):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    for got, want in zip(seconds, t_seconds):
        if want is None or got is None:
            assert (got is None or not got.any()) and (want is None or not want.any())
            continue
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_dropout_second_order_matches_pytorch_with_its_mask():
    """Dropout's scale mask is a constant of the input (a random draw): the second
    derivative of <v, dropout(x)^3>'s gradient is 6 x scale^3 v w, as in PyTorch given the
    same mask (recovered from minifm's output: x is nonzero)."""
    rng = np.random.default_rng(0)
    x_np, v, w = (rng.standard_normal((4, 5)) for _ in range(3))
    x = minifm.tensor(x_np, requires_grad=True)
    out = F.dropout(x, p=0.4, generator=minifm.Generator().manual_seed(0))
    scale = torch.tensor(out.detach().numpy() / x_np)
    t_x = torch.tensor(x_np, requires_grad=True)
    results = []
    for lib, leaf, y in ((minifm, x, out), (torch, t_x, t_x * scale)):
        (g,) = lib.autograd.grad((y ** 3 * lib.tensor(v)).sum(), leaf, create_graph=True)
        (gg,) = lib.autograd.grad((g * lib.tensor(w)).sum(), leaf)
        results.append((g.detach().numpy(), gg.detach().numpy()))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _critic(nn, lib):
    """A small WGAN critic: Conv2d -> LeakyReLU -> Linear to one score."""
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 1)).to(lib.float64)


def test_gradient_penalty_through_a_conv_critic_matches_pytorch():
    """WGAN-GP's penalty ((||grad_x D(x)||_2 - 1)^2).mean() on interpolates x: the critic
    parameters' gradients need the second derivatives of conv2d, leaky_relu and linear.
    (The last bias does not reach grad_x D: its gradient is None in both libraries. The
    conv bias reaches it only through leaky_relu's piecewise-constant slope: PyTorch gives
    zeros, minifm None.)"""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((4, 2, 6, 6))
    t_critic = _critic(torch.nn, torch)
    critic = _critic(minifm.nn, minifm)
    for p, t_p in zip(critic.parameters(), t_critic.parameters()):
        p.data = minifm.tensor(t_p.detach().numpy().copy())
    results = []
    for lib, model in ((minifm, critic), (torch, t_critic)):
        x = lib.tensor(x_np, requires_grad=True)
        (g,) = lib.autograd.grad(model(x).sum(), x, create_graph=True)
        penalty = ((g.reshape(4, -1).norm(2, dim=1) - 1) ** 2).mean()
        penalty.backward()
        results.append([penalty.detach().numpy()] + [
            None if p.grad is None else p.grad.detach().numpy() for p in model.parameters()])
    for got, want in zip(*results):
        if want is None or got is None:
            assert (got is None or not got.any()) and (want is None or not want.any())
            continue
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
