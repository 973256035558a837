"""Linear algebra on products: matmul (PyTorch's 1-D, 2-D and batched-broadcast rules) and
its checked forms (mm, bmm, mv, dot, outer, the add* family), linear, fused as one op because
it is the most frequent op in every model, einsum, cross, vector norms and cdist. The
matrix functions LAPACK computes (inv, solve, det, the decompositions, matrix norms) are in
decompositions.py.

Shape errors here are RuntimeErrors naming the shapes, as PyTorch's are."""
from __future__ import annotations

import math
import string

import numpy as np

from .. import backend, kernels
from ..autograd import Function
from ..dims import normalize_dims
from ..tensor import Tensor
from .elementwise import binary_operands, mul, to_dtype, where
from .reduce import sum as _sum
from .shape import expand, select, stack, unsqueeze


# Multiply-adds from which a product goes to the matmul kernel (kernels/matmul_cpu.py, which
# cuts products from its SPLIT_FROM, the same number, among minifm's threads): below, the
# kernel would run NumPy's product whole, after 2.5-3.5 us of choosing to (a (16, 16)
# product: 1.4 us in all with NumPy's @).
MATMUL_KERNEL_FROM = 1 << 22


def _product(a, b):
    """a @ b of two arrays. NumPy float products of matrices (2-d, or stacks of them with
    one batch shape; a stack of rows times one matrix as one matrix) of at least
    MATMUL_KERNEL_FROM multiply-adds run on minifm's threads (kernels.select("matmul"));
    any other, NumPy's or CuPy's @."""
    if isinstance(a, np.ndarray) and a.dtype == b.dtype and a.ndim >= 2 and b.ndim >= 2:
        if a.size * b.shape[-1] < MATMUL_KERNEL_FROM:
            return a @ b
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            return _product(_rows(a), b).reshape(a.shape[:-1] + b.shape[-1:])
        if a.ndim == b.ndim > 3 and a.shape[:-2] == b.shape[:-2]:  # heads of a batch, say
            product = _product(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]))
            return product.reshape(a.shape[:-1] + b.shape[-1:])
        if a.ndim == b.ndim and a.ndim in (2, 3) and a.shape[:-2] == b.shape[:-2]:
            kernel = kernels.select("matmul", "cpu", dtype=a.dtype)
            if kernel is not None:
                return kernel.matmul(a, b)
    return a @ b


class MatMul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return _product(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        xp = ctx.xp
        # Treat a 1-D x as a row (1, n) and a 1-D y as a column (n, 1), then undo it.
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        g2 = g
        if y.ndim == 1:
            g2 = g2[..., None]
        if x.ndim == 1:
            g2 = g2[..., None, :]
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = _product(g2, xp.swapaxes(y2, -1, -2))
            if x.ndim == 1:
                gx = gx[..., 0, :]
        if ctx.needs_input_grad[1]:
            gy = _product(xp.swapaxes(x2, -1, -2), g2)
            if y.ndim == 1:
                gy = gy[..., 0]
        return gx, gy   # batch dimensions are summed by the engine's unbroadcast


def matmul(input, other):
    input, other = binary_operands(input, other)
    xs, ys = input._data.shape, other._data.shape
    if not xs or not ys:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{xs} and {ys}")
    inner_y = ys[-2] if len(ys) > 1 else ys[0]
    if xs[-1] != inner_y:
        raise ValueError(f"matmul: shapes {xs} and {ys} cannot be multiplied "
                         f"({xs[-1]} != {inner_y})")
    if len(xs) > 2 or len(ys) > 2:
        try:
            np.broadcast_shapes(xs[:-2], ys[:-2])
        except ValueError:
            raise ValueError(f"matmul: the batch dimensions of shapes {xs} and {ys} are not "
                             "broadcastable") from None
    return MatMul.apply(input, other)


# ----------------------------------------------------------------------------- checked products
# MatMul under PyTorch's node names for the checked forms (y.grad_fn prints MmBackward0...).
class Mm(MatMul):
    pass


class Bmm(MatMul):
    pass


class Mv(MatMul):
    pass


class Dot(MatMul):
    pass


class Vdot(MatMul):
    pass


def _shape_str(t):
    return "x".join(map(str, t.shape))


def _need_ndim(op, name, t, ndim):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected Tensor {name}, got {type(t).__name__}")
    if t.ndim != ndim:
        kind = {1: "a vector", 2: "a matrix", 3: "a 3D tensor"}[ndim]
        raise RuntimeError(f"{op}: {name} must be {kind}, got shape {tuple(t.shape)}")


def _same_dtype(op, a, b):
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: expected both arguments to have the same dtype, but found "
                           f"{backend.dtype_name(a.dtype)} and {backend.dtype_name(b.dtype)}")


def mm(input, mat2):
    """The product of two matrices: (n, m) @ (m, p)."""
    _need_ndim("mm", "self", input, 2)
    _need_ndim("mm", "mat2", mat2, 2)
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mm: mat1 and mat2 shapes cannot be multiplied "
                           f"({_shape_str(input)} and {_shape_str(mat2)})")
    _same_dtype("mm", input, mat2)
    return Mm.apply(input, mat2)


def bmm(input, mat2):
    """Batched matrix product: (b, n, m) @ (b, m, p), batch sizes equal (no broadcasting)."""
    _need_ndim("bmm", "batch1", input, 3)
    _need_ndim("bmm", "batch2", mat2, 3)
    expected = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != expected:
        raise RuntimeError(f"bmm: expected size for first two dimensions of batch2 tensor to "
                           f"be: {expected} but got: {list(mat2.shape[:2])} (shapes "
                           f"{tuple(input.shape)} and {tuple(mat2.shape)})")
    _same_dtype("bmm", input, mat2)
    return Bmm.apply(input, mat2)


def mv(input, vec):
    """Matrix times vector: (n, m) @ (m,)."""
    _need_ndim("mv", "mat", input, 2)
    _need_ndim("mv", "vec", vec, 1)
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"mv: size mismatch, got mat ({_shape_str(input)}), vec "
                           f"({vec.shape[0]})")
    _same_dtype("mv", input, vec)
    return Mv.apply(input, vec)


def _inner(op, node, input, other):
    _need_ndim(op, "self", input, 1)
    _need_ndim(op, "other", other, 1)
    if input.shape != other.shape:
        raise RuntimeError(f"{op}: inconsistent tensor size, expected tensors of shapes "
                           f"{tuple(input.shape)} and {tuple(other.shape)} to have the same "
                           "number of elements")
    _same_dtype(op, input, other)
    return node.apply(input, other)


def dot(input, other):
    """The inner product of two 1-D tensors of one size and dtype (a 0-d tensor)."""
    return _inner("dot", Dot, input, other)


def vdot(input, other):
    """dot with the first argument conjugated: for real tensors, dot."""
    return _inner("vdot", Vdot, input, other)


def outer(input, vec2):
    """The outer product of two 1-D tensors: out[i, j] = input[i] * vec2[j]."""
    _need_ndim("outer", "self", input, 1)
    _need_ndim("outer", "vec2", vec2, 1)
    return mul(unsqueeze(input, 1), vec2)


ger = outer


def _scaled_sum(op, input, product, beta, alpha):
    """beta * input + alpha * product, input broadcast to the product's shape. With beta 0
    the input is ignored (its NaNs and infinities do not propagate; its gradient is 0), as
    in PyTorch."""
    try:
        if np.broadcast_shapes(tuple(input.shape), tuple(product.shape)) != tuple(product.shape):
            raise ValueError
    except ValueError:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} cannot be expanded to "
                           f"the product's shape {tuple(product.shape)}") from None
    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:
        ignored = Tensor._make(backend.array_module(input.device).zeros(input.shape, bool),
                               input.device)
        return where(ignored, input, product)
    return product + (input if beta == 1 else mul(input, beta))


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2)."""
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2)."""
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (the sum over the batch of bmm(batch1, batch2))."""
    return _scaled_sum("addbmm", input, _sum(bmm(batch1, batch2), 0), beta, alpha)


def _rows(a):
    """(..., n) as one (rows, n) matrix: one BLAS call instead of one per leading index
    (NumPy's matmul loops over the batch of a 3-D @ 2-D product)."""
    return a.reshape(-1, a.shape[-1])


class LinearFunction(Function):
    """y = x @ W.T + b for x of shape (..., in), W (out, in), b (out,)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = _product(_rows(x), weight.T)
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        g2 = _rows(g)
        gx = _product(g2, weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = _product(g2.T, _rows(x)) if ctx.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected input (..., {weight.shape[-1]}))")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"linear: input dtype {input.dtype} and weight dtype {weight.dtype} differ")
    return LinearFunction.apply(input, weight, bias)


# ----------------------------------------------------------------------------- einsum
def _einsum_subscripts(equation, shapes):
    """(each operand's subscripts, the output's) of an einsum equation in explicit form and
    letters only: '...' is spelled out with unused letters (right-aligned, so operands with
    fewer ellipsis dims broadcast), and an implicit output is the ellipsis dims followed by
    the letters that appear once, in alphabetical order (PyTorch's and NumPy's rule)."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} names {len(inputs)} operands, "
                         f"got {len(shapes)}")
    free = [c for c in string.ascii_letters if c not in equation]
    ranks = [len(shape) - len(subs.replace("...", ""))
             for subs, shape in zip(inputs, shapes) if "..." in subs]
    ellipsis = "".join(free[:max(ranks, default=0)])
    spelled = []
    for subs, shape in zip(inputs, shapes):
        rank = len(shape) - len(subs.replace("...", ""))
        if "..." in subs and rank >= 0:
            subs = subs.replace("...", ellipsis[len(ellipsis) - rank:])
        if len(subs) != len(shape) or not set(subs) <= set(string.ascii_letters):
            raise ValueError(f"einsum: subscripts {subs!r} do not fit an operand of shape "
                             f"{tuple(shape)}")
        spelled.append(subs)
    letters = "".join(spelled)
    if arrow:
        output = rhs.replace("...", ellipsis)
        unknown = set(output) - set(letters)
        if unknown or len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {rhs!r} must be distinct letters of "
                             "the inputs")
    else:
        output = ellipsis + "".join(sorted(c for c in set(letters) - set(ellipsis)
                                           if letters.count(c) == 1))
    return spelled, output


class Einsum(Function):
    """np.einsum of the operands. The gradient of operand i is the einsum of the output's
    gradient with the other operands, giving operand i's letters: letters it alone has
    (summed away in the forward) come back by broadcasting, and a repeated letter (a
    diagonal, as in 'ii->') by writing onto that diagonal of zeros."""

    @staticmethod
    def forward(ctx, *operands, inputs, output):
        ctx.inputs, ctx.output = inputs, output
        ctx.save_for_backward(*operands)
        return ctx.xp.einsum(",".join(inputs) + "->" + output, *operands, optimize=True)

    @staticmethod
    def backward(ctx, g):
        operands, xp = ctx.saved, ctx.xp
        sizes = {c: n for subs, x in zip(ctx.inputs, operands) for c, n in zip(subs, x.shape)}
        grads = []
        for i, (subs, x) in enumerate(zip(ctx.inputs, operands)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(ctx.output, g)] + [(s, y) for j, (s, y) in
                                          enumerate(zip(ctx.inputs, operands)) if j != i]
            distinct = "".join(dict.fromkeys(subs))
            present = set("".join(s for s, _ in others))
            kept = "".join(c for c in distinct if c in present)
            grad = xp.einsum(",".join(s for s, _ in others) + "->" + kept,
                             *(a for _, a in others), optimize=True)
            grad = xp.broadcast_to(grad.reshape([sizes[c] if c in kept else 1 for c in distinct]),
                                   tuple(sizes[c] for c in distinct))
            if distinct != subs:
                diagonal = grad
                grad = xp.zeros(x.shape, dtype=g.dtype)
                grad[tuple(xp.arange(sizes[c]).reshape([-1 if d == c else 1 for d in distinct])
                           for c in subs)] = diagonal
            grads.append(grad)
        return tuple(grads)


def einsum(equation, *operands):
    """PyTorch's einsum: operands given one by one or as one list; '...' and repeated
    letters (traces, diagonals) allowed. A letter of size 1 in one operand broadcasts to its
    size in the others (the operand is expanded, so its gradient is summed back)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    inputs, output = _einsum_subscripts(equation, [tuple(x.shape) for x in operands])
    if len({x.dtype for x in operands}) > 1:
        raise TypeError(f"einsum: operands must have one dtype, got "
                        f"{sorted({str(x.dtype) for x in operands})}")
    sizes = {}
    for subs, x in zip(inputs, operands):
        if any(n != m for c, n in zip(subs, x.shape) for d, m in zip(subs, x.shape) if c == d):
            raise ValueError(f"einsum: subscripts {subs!r} repeat a letter over dimensions of "
                             f"different sizes in an operand of shape {tuple(x.shape)}")
        for c, n in zip(subs, x.shape):
            if n != 1 and sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: subscript {c!r} has size {sizes[c]} in one place "
                                 f"and {n} in another (operand of shape {tuple(x.shape)})")
    operands = [expand(x, *(sizes.get(c, 1) for c in subs)) for subs, x in zip(inputs, operands)]
    return Einsum.apply(*operands, inputs=inputs, output=output)


# ----------------------------------------------------------------------------- cross
def _cross(op, input, other, dim):
    """The cross product along `dim` (size 3), broadcast; written as products of the three
    components, so its derivatives of every order come from mul and sub."""
    input, other = binary_operands(input, other)
    if input.ndim != other.ndim:
        raise RuntimeError(f"{op}: inputs must have the same number of dimensions, got shapes "
                           f"{tuple(input.shape)} and {tuple(other.shape)}")
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the shapes {tuple(input.shape)} and {tuple(other.shape)} "
                           "are not broadcastable") from None
    if dim is None:  # torch.cross's deprecated default: the first dimension of size 3
        dim = next((d for d, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise RuntimeError(f"{op}: no dimension of size 3 in input of shape {shape}")
    axis = normalize_dims(op, dim, len(shape))[0]
    if input.shape[axis] != 3 or other.shape[axis] != 3:
        raise RuntimeError(f"{op}: inputs dimension {dim} must have length 3. Got "
                           f"{input.shape[axis]} and {other.shape[axis]}")
    a = [select(expand(input, *shape), axis, i) for i in range(3)]
    b = [select(expand(other, *shape), axis, i) for i in range(3)]
    return stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                  a[0] * b[1] - a[1] * b[0]], axis)


def cross(input, other, dim=None):
    """torch.cross: along `dim`, by default the first dimension of size 3."""
    return _cross("cross", input, other, dim)


def linalg_cross(input, other, *, dim=-1):
    """torch.linalg.cross: along `dim` (the last by default)."""
    return _cross("linalg.cross", input, other, dim)


# ----------------------------------------------------------------------------- norms
class LinalgVectorNorm(Function):
    """(sum |x|^ord)^(1/ord) over `dims`; ord inf/-inf is max/min |x|, ord 0 counts the
    nonzero elements. The gradient is PyTorch's: 0 where the norm is 0 (so cdist and
    normalize have a gradient at coinciding points), split evenly over ties for inf."""

    @staticmethod
    def forward(ctx, x, *, ord, dims, keepdim):
        ctx.ord, ctx.dims = ord, dims
        a = ctx.xp.abs(x)
        if ord == math.inf:
            out = a.max(axis=dims, keepdims=True)
        elif ord == -math.inf:
            out = a.min(axis=dims, keepdims=True)
        elif ord == 0:
            out = (a != 0).sum(axis=dims, keepdims=True).astype(x.dtype)
        elif ord == 1:
            out = a.sum(axis=dims, keepdims=True)
        elif ord == 2:
            out = ctx.xp.sqrt((x * x).sum(axis=dims, keepdims=True))
        else:
            out = (a ** ord).sum(axis=dims, keepdims=True) ** (1.0 / ord)
        ctx.keep_shape = out.shape
        out = out if keepdim else out.reshape([n for d, n in enumerate(out.shape)
                                               if d not in dims])
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, norm = ctx.saved
        xp, p = ctx.xp, ctx.ord
        g, norm = g.reshape(ctx.keep_shape), norm.reshape(ctx.keep_shape)
        if p == 0:
            return xp.zeros_like(x)
        if p in (math.inf, -math.inf):
            ties = (xp.abs(x) == norm).astype(x.dtype)
            return xp.sign(x) * ties * (g / ties.sum(axis=ctx.dims, keepdims=True))
        zero = norm == 0
        safe = xp.where(zero, 1.0, norm)          # no 0/0 on either derivative's path
        if p == 1:
            return xp.sign(x) * g
        if p == 2:
            return x * xp.where(zero, 0.0, g / safe)
        nonzero = x != 0
        magnitude = xp.where(nonzero, xp.abs(x), 1.0)
        scaled = xp.where(nonzero, xp.sign(x) * magnitude ** (p - 1), 0.0)
        return scaled * xp.where(zero, 0.0, g / safe ** (p - 1))


def _check_float_input(op, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected Tensor input, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point tensor as input. Got "
                           f"{backend.dtype_name(t.dtype)}")


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: the ord-norm of x over `dim` (all dimensions by default),
    x first cast to `dtype` if given (a widening cast only). float16 is computed in float32."""
    _check_float_input("linalg.vector_norm", x)
    if isinstance(ord, str) or not isinstance(ord, (int, float)):
        raise TypeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if np.promote_types(x.dtype, dtype) != dtype:
            raise RuntimeError(f"linalg.vector_norm: the dtype of the input "
                               f"({backend.dtype_name(x.dtype)}) should be convertible without "
                               f"narrowing to the specified dtype ({backend.dtype_name(dtype)})")
        x = to_dtype(x, dtype)
    dims = normalize_dims("linalg.vector_norm", dim, x.ndim)
    if (ord < 0 or ord == math.inf) and any(x.shape[d] == 0 for d in dims):  # no identity
        raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty "
                           "tensor because the operation does not have an identity")
    if x.dtype == np.float16:
        wide = LinalgVectorNorm.apply(to_dtype(x, np.dtype(np.float32)), ord=float(ord),
                                      dims=dims, keepdim=keepdim)
        return to_dtype(wide, x.dtype)
    return LinalgVectorNorm.apply(x, ord=float(ord), dims=dims, keepdim=keepdim)


def cdist(x1, x2, p=2.0, compute_mode=None):
    """Distances between the rows of x1 (..., P, M) and of x2 (..., R, M): (..., P, R), the
    batch dimensions broadcast. The p-norm of each difference (p >= 0, inf allowed), so the
    gradient at a zero distance is 0 as in PyTorch. compute_mode is accepted for PyTorch's
    signature; the differences are always taken directly (exact, O(P R M) memory)."""
    for name, t in (("X1", x1), ("X2", x2)):
        if t.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{t.ndim}D (shape {tuple(t.shape)})")
        if t.dtype.kind != "f":
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{backend.dtype_name(t.dtype)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]} (shapes {tuple(x1.shape)} and "
                           f"{tuple(x2.shape)})")
    _same_dtype("cdist", x1, x2)
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    return vector_norm(unsqueeze(x1, -2) - unsqueeze(x2, -3), p, -1)
