"""minifm.autograd.functional against torch.autograd.functional: vjp, jvp, vhp, hvp,
jacobian and hessian on small functions of one tensor and of a tuple, float64."""
import numpy as np
import pytest
import torch

import minifm


def f_vector(lib, x):
    return (x.sin() * x.exp()).cumsum(0) + x[0] * x


def f_scalar(lib, x):
    return (x.tanh() ** 3).sum() + (x * x).prod()


def f_pair(lib, x, y):
    return (x @ y).sigmoid(), (x * x).sum(1)


def f_pair_scalar(lib, x, y):
    return ((x @ y) ** 2).sum() + x.exp().sum() * y.sum()


def _tensors(lib, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(lib.tensor(rng.standard_normal(s)) for s in shapes)


def _numpy(value):
    if isinstance(value, (tuple, list)):
        return [_numpy(v) for v in value]
    return value.detach().numpy()


def _compare(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _compare(a, b)
        return
    np.testing.assert_allclose(_numpy(ours), _numpy(theirs), rtol=1e-10, atol=1e-12)


CASES = {
    "vjp one tensor": ("vjp", f_vector, [(4,)], [(4,)]),
    "vjp tuple": ("vjp", f_pair, [(2, 3), (3, 2)], [(2, 2), (2,)]),
    "jvp one tensor": ("jvp", f_vector, [(4,)], [(4,)]),
    "jvp tuple": ("jvp", f_pair, [(2, 3), (3, 2)], [(2, 3), (3, 2)]),
    "vhp one tensor": ("vhp", f_scalar, [(4,)], [(4,)]),
    "hvp tuple": ("hvp", f_pair_scalar, [(2, 3), (3, 2)], [(2, 3), (3, 2)]),
    "jacobian one tensor": ("jacobian", f_vector, [(4,)], None),
    "jacobian tuple": ("jacobian", f_pair, [(2, 3), (3, 2)], None),
    "hessian one tensor": ("hessian", f_scalar, [(4,)], None),
    "hessian tuple": ("hessian", f_pair_scalar, [(2, 3), (3, 2)], None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_autograd_functional(name):
    op, fn, input_shapes, v_shapes = CASES[name]
    results = []
    for lib in (minifm, torch):
        inputs = _tensors(lib, *input_shapes)
        inputs = inputs if len(inputs) > 1 else inputs[0]
        args = (lambda *xs: fn(lib, *xs), inputs)
        if v_shapes is not None:
            v = _tensors(lib, *v_shapes, seed=1)
            args += (v if len(v) > 1 else v[0],)
        results.append(getattr(lib.autograd.functional, op)(*args))
    _compare(*results)


def test_create_graph_results_differentiate_again():
    """The Hessian-vector product with create_graph=True has a gradient of its own."""
    grads = []
    for lib in (minifm, torch):
        (x,) = _tensors(lib, (3,))
        x.requires_grad_()
        (v,) = _tensors(lib, (3,), seed=1)
        _, hv = lib.autograd.functional.hvp(lambda t: (t.sin() * t.sum()).sum(), x, v,
                                            create_graph=True)
        hv.sum().backward()
        grads.append(x.grad)
    _compare(*grads)
