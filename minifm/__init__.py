"""minifm: a from-scratch deep-learning engine on NumPy (CuPy on GPUs, Numba kernels).

The API follows PyTorch's: `import minifm as torch` style code runs after changing imports.
"""
from . import backend
from .backend import (
    bool_ as bool, device, float16, float32, float64, int8, int16, int32, int64, uint8,
    get_default_dtype, set_default_dtype, promote_types, Generator, manual_seed,
    get_rng_state, set_rng_state, default_generator,
)
from .tensor import Tensor
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .autograd.grad_mode import inference_mode, is_inference_mode_enabled
from . import autograd
from . import tensor_api  # noqa: F401  (gives Tensor its methods and operators)
from .ops import array_box  # noqa: F401  (NumPy's API on Tensors, for create_graph)

from .creation import (  # noqa: E402
    tensor, as_tensor, from_numpy, zeros, ones, empty, full, arange, linspace, eye,
    zeros_like, ones_like, empty_like, full_like, rand_like, randn_like, randint_like,
)
from .creation import rand, randn, randint, randperm  # noqa: E402
from .ops.random import multinomial, normal, bernoulli, poisson  # noqa: E402
from .ops.elementwise import (  # noqa: E402
    add, sub, mul, div, pow, neg, abs, exp, log, log1p, sqrt, rsqrt, sin, cos, square,
    clamp, maximum, minimum, masked_fill, eq, ne, lt, le, gt, ge, isnan, isinf,
    isfinite, logical_and, logical_or, logical_not, equal, allclose, sign, floor, ceil, round,
    reciprocal, tan, asin, acos, atan, atan2, sinh, cosh, asinh, acosh, atanh, erf, erfc,
    erfinv, exp2, expm1, log2, log10, trunc, frac, fmod, remainder, copysign, lerp, hypot,
    logaddexp, logaddexp2, xlogy, nan_to_num, isclose, isposinf, isneginf, logical_xor,
    floor_divide, bitwise_and, bitwise_or, bitwise_xor, bitwise_not, bitwise_left_shift,
    bitwise_right_shift,
)
from .ops.elementwise import (  # noqa: E402  (NumPy's spellings, as torch has them)
    asin as arcsin, acos as arccos, atan as arctan, atan2 as arctan2, asinh as arcsinh,
    acosh as arccosh, atanh as arctanh, trunc as fix,
)
from .ops.elementwise import clamp as clip  # noqa: E402
from .ops.activation import (  # noqa: E402
    sigmoid, tanh, relu, softmax, log_softmax, selu, celu, threshold, prelu,
)
from .ops.reduce import (  # noqa: E402
    sum, mean, var, std, max, min, amax, amin, logsumexp, prod, cumsum, norm, argmax, argmin,
    all, any, cumprod, cummax, cummin, logcumsumexp, var_mean, std_mean, nansum, nanmean,
    count_nonzero, aminmax, median, quantile,
)
from .ops.shape import (  # noqa: E402
    reshape, permute, transpose, unsqueeze, squeeze, flatten, unflatten, cat, concat, stack,
    split, chunk, unbind, narrow, repeat, flip, roll, tril, triu, broadcast_to, movedim,
    swapaxes, swapdims, select, diagonal, pixel_shuffle, pixel_unshuffle, moveaxis, meshgrid,
    tile, rot90, diag, diag_embed, trace, block_diag, repeat_interleave, tril_indices,
    triu_indices,
)
from .ops.index import (  # noqa: E402
    gather, scatter, scatter_add, index_select, index_add, index_copy, index_fill, take,
    take_along_dim, masked_select, nonzero, where, searchsorted, bucketize, unique, sort, topk,
    argsort,
)
from .ops.linalg import (  # noqa: E402
    matmul, einsum, mm, bmm, mv, dot, vdot, outer, ger, addmm, addmv, addbmm, baddbmm, cross,
    cdist,
)
from .ops.decompositions import det, inv as inverse, slogdet  # noqa: E402
from . import linalg  # noqa: E402,F401  (torch.linalg)
from .ops.distance import cosine_similarity, pairwise_distance, pdist  # noqa: E402
from .ops.norm import group_norm, instance_norm, rms_norm  # noqa: E402
from .serialization import save, load  # noqa: E402

# PyTorch's dtype aliases
float = float32
double = float64
half = float16
int = int32
long = int64
short = int16

from math import inf, nan  # noqa: E402  (torch.inf, torch.nan)

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


# torch.exp_(x), torch.relu_(x), torch.clamp_(x, 0, 1)...: Tensor's in-place forms as functions
from .tensor_api import METHODS as _METHODS  # noqa: E402
globals().update({_name + "_": _METHODS[_name + "_"] for _name in """
    abs neg reciprocal square sqrt rsqrt exp exp2 expm1 log log1p log2 log10 sin cos tan asin
    acos atan arcsin arccos arctan sinh cosh tanh asinh acosh atanh arcsinh arccosh arctanh
    sigmoid relu erf erfc frac floor ceil round trunc fix nan_to_num xlogy clip clamp_min
    clamp_max clamp fill zero""".split()})


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,
            options=None, disable=False):
    """torch.compile's signature, and no compiler: minifm runs every op eagerly, so the model
    (a Module or a function) comes back as it was, where PyTorch returns a compiled wrapper.
    Written so that code calling torch.compile runs unchanged: `compile(model)`,
    `@compile` and `compile(mode=...)(fn)`."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be "
                           "specified at the same time.")
    if model is None:
        return lambda fn: fn
    return model


# The layers above the engine, so that `minifm.nn.functional.relu` works after a bare
# `import minifm`, as `torch.nn.functional.relu` does after `import torch`.
from . import nn, optim  # noqa: E402,F401
from .quantization.qtypes import qint8, quint8  # noqa: E402,F401  (torch.qint8, torch.quint8)
from . import cuda  # noqa: E402,F401
from .autograd import functional as _functional  # noqa: E402,F401  (autograd.functional needs the ops)
