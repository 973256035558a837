"""make_dot against torchviz's picture of PyTorch's graph: the same op names on the same MLP
(where minifm's ops are PyTorch's), parameters by name and shape, saved arrays' shapes, and
a file written whether or not Graphviz is installed."""
from __future__ import annotations

import re
import warnings
from collections import Counter

import pytest

import minifm
import minifm.nn as nn
from minifm.viz import make_dot

torch = pytest.importorskip("torch")


def mlp_loss(lib, ones):
    model = lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 2))
    return model, ((model(ones(5, 3)) - 1) ** 2).mean()


def torchviz_names(fn, seen=None):
    """The op names torchviz draws: type(fn).__name__ over grad_fn.next_functions."""
    seen = set() if seen is None else seen
    if fn is None or fn in seen:
        return []
    seen.add(fn)
    return [type(fn).__name__] + [n for f, _ in fn.next_functions for n in torchviz_names(f, seen)]


def labels(dot, color):
    return re.findall(rf'label="([^"]*)" fillcolor={color}', dot.source)


def test_mlp_graph_names_ops_and_parameters_as_torchviz():
    model, loss = mlp_loss(nn, minifm.ones)
    dot = make_dot(loss, params=dict(model.named_parameters()))
    ours = Counter(re.findall(r'label="(\w+)"\]', dot.source))
    _, ref = mlp_loss(torch.nn, torch.ones)
    theirs = Counter(torchviz_names(ref.grad_fn))
    # PyTorch's Linear is addmm of a transposed weight, minifm's one fused op; PyTorch's
    # leaves hang off AccumulateGrad nodes, minifm's off the op itself.
    assert ours.pop("LinearBackward0") == theirs.pop("AddmmBackward0") == 2
    for extra in ("TBackward0", "AccumulateGrad"):
        theirs.pop(extra)
    assert ours == theirs
    assert sorted(labels(dot, "lightblue")) == [
        "0.bias\\n(4)", "0.weight\\n(4, 3)", "2.bias\\n(2)", "2.weight\\n(2, 4)"]
    assert labels(dot, "darkolivegreen1") == ["()"]
    assert dot.source.startswith("digraph {") and dot.source.rstrip().endswith("}")


def test_show_saved_draws_saved_shapes():
    x = minifm.ones(2, 3, requires_grad=True)
    dot = make_dot((x * x).exp().sum(), show_saved=True)
    assert "saved[0]\\n(2, 3)" in labels(dot, "orange")
    assert labels(dot, "lightblue") == ["(2, 3)"]  # an unnamed leaf: its shape only


def test_save_and_render(tmp_path):
    _, loss = mlp_loss(nn, minifm.ones)
    dot = make_dot(loss)
    assert open(dot.save(tmp_path / "g.dot")).read() == dot.source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Graphviz absent: it says so and writes g.dot
        written = dot.render(tmp_path / "g", format="svg")
    assert written in (str(tmp_path / "g.svg"), str(tmp_path / "g.dot"))
    assert (tmp_path / written).exists()
