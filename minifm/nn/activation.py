"""Activation functions as modules, so they can sit in a Sequential. Each forwards to the
fused op in minifm/ops/activation.py; with inplace=True the module overwrites its input
(the op's inplace form), as PyTorch's does."""
from __future__ import annotations

from .. import creation
from . import functional as F
from .module import Module
from .parameter import Parameter


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh formula (GPT-2)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (also called swish)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class _Pointwise(Module):
    """A module that calls one functional activation with fixed keyword arguments: the
    arguments (inplace among them) are the module's attributes (PyTorch's names) and its
    repr."""

    function = None   # the F.<activation> it calls
    defaults = {}     # argument name -> default
    hidden = ()       # arguments PyTorch's repr leaves out

    def __init__(self, *args, **kwargs):
        super().__init__()
        names = list(self.defaults)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} arguments")
        values = {**self.defaults, **dict(zip(names, args)), **kwargs}
        unknown = set(values) - set(names)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(unknown)}")
        self.__dict__.update(values)

    def forward(self, input):
        kwargs = {n: getattr(self, n) for n in self.defaults}
        return type(self).function(input, **kwargs)

    def extra_repr(self):
        return ", ".join(f"{n}={getattr(self, n)}" for n in self.defaults
                         if n not in self.hidden and (n != "inplace" or self.inplace))


def _pointwise(name, function, doc, hidden=(), **defaults):
    return type(name, (_Pointwise,), {"function": staticmethod(function), "hidden": hidden,
                                      "defaults": defaults, "__doc__": doc})


ELU = _pointwise("ELU", F.elu, "x if x > 0 else alpha (e^x - 1).", alpha=1.0, inplace=False)
CELU = _pointwise("CELU", F.celu, "max(0, x) + min(0, alpha (e^(x/alpha) - 1)).",
                  alpha=1.0, inplace=False)
SELU = _pointwise("SELU", F.selu, "scale * elu(x, alpha), self-normalizing constants.",
                  inplace=False)
Mish = _pointwise("Mish", F.mish, "x * tanh(softplus(x)).", inplace=False)
Hardtanh = _pointwise("Hardtanh", F.hardtanh, "x clamped to [min_val, max_val].",
                      min_val=-1.0, max_val=1.0, inplace=False)
ReLU6 = _pointwise("ReLU6", F.relu6, "min(max(0, x), 6).", inplace=False)
Hardsigmoid = _pointwise("Hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6.", hidden=("inplace",),
                         inplace=False)
Hardswish = _pointwise("Hardswish", F.hardswish, "x * relu6(x + 3) / 6.", hidden=("inplace",),
                       inplace=False)
Softsign = _pointwise("Softsign", F.softsign, "x / (1 + |x|).")
LogSigmoid = _pointwise("LogSigmoid", F.logsigmoid, "log(sigmoid(x)), without overflow.")
Softmin = _pointwise("Softmin", F.softmin, "softmax(-x) over dim.", dim=None)
GLU = _pointwise("GLU", F.glu, "a * sigmoid(b), a and b the halves of x along dim.", dim=-1)
Threshold = _pointwise("Threshold", F.threshold, "value where x <= threshold, else x.",
                       threshold=None, value=None, inplace=False)



class _Shrink(_Pointwise):
    defaults = {"lambd": 0.5}

    def extra_repr(self):
        return str(self.lambd)  # PyTorch's repr: Hardshrink(0.5)


Hardshrink = type("Hardshrink", (_Shrink,), {"function": staticmethod(F.hardshrink),
                                             "__doc__": "0 where |x| <= lambd, else x."})
Softshrink = type("Softshrink", (_Shrink,), {"function": staticmethod(F.softshrink),
                                             "__doc__": "x shrunk towards 0 by lambd (0 inside)."})
Tanhshrink = _pointwise("Tanhshrink", F.tanhshrink, "x - tanh(x).")


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of a (C, H, W) or (N, C, H, W) input."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D "
                             "instead")
        return F.softmax(input, -3)


class RReLU(Module):
    """Randomized leaky ReLU: random negative slopes in [lower, upper) in training, their
    mean (lower + upper) / 2 in eval."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """max(0, x) + weight * min(0, x) with a learned slope per channel (num_parameters of
    them, or one shared), initialized to `init` (0.25)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(creation.full((num_parameters,), init, dtype=dtype,
                                              device=device))

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
