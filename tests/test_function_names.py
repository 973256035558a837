"""The names of the autograd Functions in minifm/ops: none is an nn Module's name, and a
Function spelled after PyTorch's autograd node gives the grad_fn name PyTorch gives."""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import minifm
import minifm.nn as nn
import minifm.nn.functional as F
import minifm.ops
from minifm.autograd import Function

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _classes(package, base):
    """Every subclass of base defined in the modules of package, by name."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, base) and cls.__module__ == module.__name__:
                found[name] = cls
    return found


FUNCTIONS = _classes(minifm.ops, Function)
MODULES = _classes(nn, nn.Module)
# Spelled as PyTorch's nodes, these differ from their Module's name in case only.
PYTORCH_SPELLINGS = {"Relu", "LeakyRelu", "Silu", "AvgPool2D", "AdaptiveAvgPool2D", "NllLoss",
                     "AvgPool3D", "AdaptiveAvgPool3D", "AdaptiveMaxPool2D", "MaxUnpool2D"}


def test_no_function_has_a_module_name():
    assert set(FUNCTIONS) & set(MODULES) == set()


def test_names_equal_but_for_case_are_pytorch_spellings():
    modules = {name.lower() for name in MODULES}
    same_but_case = {name for name in FUNCTIONS if name.lower() in modules} - set(MODULES)
    assert same_but_case == PYTORCH_SPELLINGS


def _rand(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


# op(lib, x) for lib minifm or torch: the ops whose Function is named after PyTorch's node
CASES = {
    "relu": lambda lib, x: lib.relu(x),
    "leaky_relu": lambda lib, x: (F if lib is minifm else TF).leaky_relu(x, 0.1),
    "silu": lambda lib, x: (F if lib is minifm else TF).silu(x),
    "avg_pool2d": lambda lib, x: (F if lib is minifm else TF).avg_pool2d(x, 2),
    "max_pool2d": lambda lib, x: (F if lib is minifm else TF).max_pool2d(x, 2),
    "adaptive_avg_pool2d": lambda lib, x: (F if lib is minifm else TF).adaptive_avg_pool2d(x, 3),
    "conv2d": lambda lib, x: (F if lib is minifm else TF).conv2d(
        x, lib.ones(4, 3, 3, 3, requires_grad=True)),
    "nll_loss": lambda lib, x: (F if lib is minifm else TF).nll_loss(
        x.reshape(2, 3 * 8 * 8), lib.tensor([0, 5])),
}


@pytest.mark.parametrize("op", CASES)
def test_grad_fn_names_follow_pytorch(op):
    x = _rand(2, 3, 8, 8)
    ours = CASES[op](minifm, minifm.tensor(x, requires_grad=True)).grad_fn.name()
    theirs = type(CASES[op](torch, torch.tensor(x, requires_grad=True)).grad_fn).__name__
    assert ours == theirs
