"""PyTorch's everyday conveniences (issue 18) that the op table cannot express: activation
modules against torch.nn's, format specs on 0-d tensors, randint's signature forms."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from conftest import assert_close  # noqa: E402

MODULES = [("ELU", (0.5,)), ("CELU", (0.7,)), ("SELU", ()), ("Mish", ()), ("Hardtanh", (-0.5, 1.5)),
           ("ReLU6", ()), ("Hardsigmoid", ()), ("Hardswish", ()), ("Softsign", ()),
           ("LogSigmoid", ()), ("Softmin", (1,)), ("GLU", (1,)), ("Threshold", (0.1, -2.0)),
           ("PReLU", (4,)), ("GELU", ("tanh",)), ("Softplus", (2.0, 3.0))]


@pytest.mark.parametrize("name,args", MODULES, ids=[m[0] for m in MODULES])
def test_activation_module_matches_torch(name, args):
    x = np.random.default_rng(0).uniform(-4, 4, (3, 4, 2)).astype(np.float32)
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    a = minifm.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    out, ref = ours(a), theirs(b)
    assert_close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    assert_close(a.grad, b.grad)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad)


def test_format_spec_on_a_0d_tensor():
    loss = minifm.tensor(1.23456)
    assert f"{loss:.4f}" == "1.2346" and f"{loss}" == f"{torch.tensor(1.23456)}"
    assert f"{minifm.tensor(7):>3d}" == "  7"
    with pytest.raises(TypeError):
        f"{minifm.ones(2):.2f}"


def test_randint_signature_forms():
    minifm.manual_seed(0)
    for args, kwargs in [((10, (3, 4)), {}), ((10,), {"size": (3, 4)}), ((5, 10, (3, 4)), {}),
                         ((5, 10), {"size": [3, 4]})]:
        x = minifm.randint(*args, **kwargs)
        low = args[0] if len(args) == 3 or "size" in kwargs and len(args) == 2 else 0
        assert x.shape == (3, 4) and x.dtype == minifm.int64
        assert low <= int(x.min()) and int(x.max()) < 10
