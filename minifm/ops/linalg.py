"""Linear algebra: matmul (PyTorch's 1-D, 2-D and batched-broadcast rules) and its
checked forms (mm, bmm, mv, dot, outer, the add* family), linear, fused as one op because it
is the most frequent op in every model, einsum, cross, norms (vector, matrix, cdist),
inv, solve, det, slogdet, the decompositions svd, svdvals, eigh, eigvalsh, cholesky, qr, and pinv.

Shape errors here are RuntimeErrors naming the shapes, as PyTorch's are; a singular matrix
raises LinAlgError, a RuntimeError (torch.linalg.LinAlgError). The derivatives of inv, solve,
det and slogdet are written with matrix products and `_inverse`/`_solve`, which call the
recorded op itself under create_graph, so they can be differentiated again."""
from __future__ import annotations

import math
import string
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims
from ..tensor import Tensor
from .elementwise import binary_operands, mul, to_dtype, where
from .reduce import amax, amin
from .reduce import sum as _sum
from .shape import cat, expand, select, stack, transpose, unsqueeze


class MatMul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x @ y

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
            gx = g2 @ xp.swapaxes(y2, -1, -2)
            if x.ndim == 1:
                gx = gx[..., 0, :]
        if ctx.needs_input_grad[1]:
            gy = xp.swapaxes(x2, -1, -2) @ g2
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
        out = _rows(x) @ weight.T
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved
        g2 = _rows(g)
        gx = (g2 @ weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = g2.T @ _rows(x) if ctx.needs_input_grad[1] else None
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


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm for ord 'fro', 1, -1, inf, -inf: the Frobenius norm, or
    the largest (smallest) absolute column (1) or row (inf) sum. The spectral and nuclear
    norms (2, -2, 'nuc') need an SVD and are not implemented (NotImplementedError)."""
    _check_float_input("linalg.matrix_norm", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           f"dimensions, got shape {tuple(A.shape)}")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    rows, cols = (normalize_dims("linalg.matrix_norm", d, A.ndim)[0] for d in dim)
    if rows == cols:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got {tuple(dim)}")
    if dtype is not None:
        A = to_dtype(A, np.dtype(dtype))
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        return _svd_matrix_norm(A, ord, rows, cols, keepdim)
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    summed, reduced = (rows, cols) if abs(ord) == 1 else (cols, rows)
    sums = _sum(A.abs(), summed, keepdim=True)
    if ord > 0 and sums.shape[reduced] == 0:  # the largest of no sums: 0, as in PyTorch
        out = _sum(sums, reduced, keepdim=True)
    else:
        out = (amax if ord > 0 else amin)(sums, reduced, keepdim=True)
    return out if keepdim else out.squeeze(max(rows, cols)).squeeze(min(rows, cols))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm over one dimension (or over all, flattened, when
    neither ord nor dim is given), a matrix norm over two (and for a 2-D input with ord)."""
    _check_float_input("linalg.norm", A)
    if isinstance(dim, int) or (isinstance(dim, (tuple, list)) and len(dim) == 1):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim not in (1, 2):
            raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        dim = (-2, -1)
    return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)


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


# ----------------------------------------------------------------------------- inv, solve, det
class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (a singular matrix): torch.linalg's
    LinAlgError, a RuntimeError."""


def _square(op, A):
    _check_float_input(op, A)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions, got "
                           f"shape {tuple(A.shape)}")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def _mT(a):
    return a.swapaxes(-1, -2)


def _lapack(op, routine, *arrays):
    """A NumPy/CuPy linalg routine; a singular matrix raises LinAlgError naming the op."""
    try:
        return routine(*arrays)
    except np.linalg.LinAlgError as err:
        raise LinAlgError(f"{op}: the input matrix of shape {tuple(arrays[0].shape)} is "
                          f"singular ({err}), the operation could not be completed") from None


def _tensor_of(value, like):
    return value.tensor if hasattr(value, "tensor") else Tensor._make(value, like.tensor.device)


def _inverse(xp, a):
    """inv(a): LAPACK's on raw arrays; under create_graph (a boxed Tensor) the recorded op,
    so a derivative that uses it can be differentiated again."""
    if not hasattr(a, "tensor"):
        return _lapack("linalg.inv", xp.linalg.inv, a)
    return type(a)(LinalgInvEx.apply(a.tensor))


def _solve(xp, a, b):
    """The X of a X = b for matrices b: raw, or recorded under create_graph (see _inverse)."""
    box = a if hasattr(a, "tensor") else b if hasattr(b, "tensor") else None
    if box is None:
        return _lapack("linalg.solve", xp.linalg.solve, a, b)
    return type(box)(LinalgSolveEx.apply(_tensor_of(a, box), _tensor_of(b, box)))


class LinalgInvEx(Function):
    """A^-1; d(A^-1) = -A^-1 dA A^-1, so the gradient is -A^-T g A^-T."""

    @staticmethod
    def forward(ctx, A):
        out = _lapack("linalg.inv", ctx.xp.linalg.inv, A)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (inv_,) = ctx.saved
        return -(_mT(inv_) @ g @ _mT(inv_))


class LinalgSolveEx(Function):
    """X with A X = B (B a batch of matrices); gB = A^-T g, gA = -gB X^T."""

    @staticmethod
    def forward(ctx, A, B):
        out = _lapack("linalg.solve", ctx.xp.linalg.solve, A, B)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved
        gB = _solve(ctx.xp, _mT(A), g)
        return (-(gB @ _mT(X)) if ctx.needs_input_grad[0] else None,
                gB if ctx.needs_input_grad[1] else None)


def _cofactors(xp, A):
    """The cofactor matrix of A (the derivative of det A, adj(A)^T), also where A is
    singular, from the SVD as PyTorch computes it there: det(U) det(Vh) U diag(c) Vh, where
    c_i is the product of the singular values other than S_i."""
    U, S, Vh = xp.linalg.svd(A)
    others = xp.where(xp.eye(S.shape[-1], dtype=bool), 1, S[..., None, :]).prod(axis=-1)
    alpha = xp.linalg.det(U) * xp.linalg.det(Vh)
    return alpha[..., None, None] * ((U * others[..., None, :]) @ Vh)


class LinalgDet(Function):
    """det A; d(det A) = det A * tr(A^-1 dA), so the gradient is g det(A) A^-T. A batch with
    a singular matrix gets the cofactor matrix from the SVD instead, as in PyTorch (at rank
    n-1 it is nonzero, below that zero), also under create_graph, through the recorded svd."""

    @staticmethod
    def forward(ctx, A):
        out = ctx.xp.asarray(ctx.xp.linalg.det(A), dtype=A.dtype)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, det_ = ctx.saved
        if hasattr(A, "tensor"):   # create_graph: the same, in recorded ops
            if not det_.tensor._data.all():
                return g[..., None, None] * type(A)(_recorded_cofactors(A.tensor))
        elif not det_.all():
            return g[..., None, None] * _cofactors(ctx.xp, A).astype(A.dtype, copy=False)
        return (g * det_)[..., None, None] * _mT(_inverse(ctx.xp, A))


def _recorded_cofactors(A):
    """_cofactors of a Tensor, through svd (recorded), so it can be differentiated again."""
    U, S, Vh = svd(A, full_matrices=False)
    xp = backend.array_module(A.device)
    eye = Tensor._make(xp.eye(S.shape[-1], dtype=bool), A.device)
    others = where(eye, 1.0, unsqueeze(S, -2)).prod(-1)
    alpha = xp.linalg.det(U._data) * xp.linalg.det(Vh._data)   # +-1: a constant
    return mul(matmul(U * unsqueeze(others, -2), Vh),
               Tensor._make(alpha[..., None, None].astype(A.dtype), A.device))


class LinalgSlogdet(Function):
    """log |det A|, whose gradient is g A^-T (the sign has none)."""

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return ctx.xp.asarray(ctx.xp.linalg.slogdet(A)[1], dtype=A.dtype)

    @staticmethod
    def backward(ctx, g):
        (A,) = ctx.saved
        return g[..., None, None] * _mT(_inverse(ctx.xp, A))


def inv(A):
    """torch.linalg.inv: the inverse of each square matrix; singular -> LinAlgError."""
    _square("linalg.inv", A)
    return LinalgInvEx.apply(A)


def solve(A, B, *, left=True):
    """torch.linalg.solve: X with A X = B (left=True) or X A = B (left=False). B is a batch
    of vectors when it is 1-D, or has A's batch shape and one dimension less; the batch
    dimensions broadcast."""
    _square("linalg.solve", A)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve: expected Tensor B, got {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found "
                           f"A of type {backend.dtype_name(A.dtype)} and B of type "
                           f"{backend.dtype_name(B.dtype)} instead")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = unsqueeze(B, -1)
    n = A.shape[-1]
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{'x'.join(map(str, B.shape[-2:]))})")
    try:
        np.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"linalg.solve: the batch dimensions of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)} are not broadcastable") from None
    if left:
        out = LinalgSolveEx.apply(A, B)
        return out.squeeze(-1) if vector else out
    return transpose(LinalgSolveEx.apply(transpose(A, -1, -2), transpose(B, -1, -2)), -1, -2)


def det(A):
    """torch.linalg.det: the determinant of each square matrix."""
    _square("linalg.det", A)
    return LinalgDet.apply(A)


class LinalgSlogdetSign(Function):
    """The sign of det A: a step function of A, so its gradient is zero. It is recorded, as
    PyTorch records its sign output, so that it requires grad when A does."""

    @staticmethod
    def forward(ctx, A):
        ctx.shape = A.shape
        return ctx.xp.asarray(ctx.xp.linalg.slogdet(A)[0], dtype=A.dtype)

    @staticmethod
    def backward(ctx, g):
        return ctx.xp.zeros(ctx.shape, dtype=g.dtype)


SignLogAbsDet = namedtuple("SignLogAbsDet", ["sign", "logabsdet"])


def slogdet(A):
    """torch.linalg.slogdet: (sign, log|det|) of each square matrix; a singular one gives
    (0, -inf). Only logabsdet has a gradient."""
    _square("linalg.slogdet", A)
    return SignLogAbsDet(LinalgSlogdetSign.apply(A), LinalgSlogdet.apply(A))


# ----------------------------------------------------------------------------- decompositions
# svd, eigh and qr have several outputs; a Function has one. Each is one Function whose
# output packs the factors along the last dimension, unpacked by slicing and reshaping
# (differentiable ops). Its backward unpacks the gradient the same way (an output left unused
# reaches it as zeros) and is written with matrix products and elementwise ops on ctx.xp,
# so under create_graph it is recorded and can be differentiated again.
def _pack(xp, batch, *factors):
    """The factors, each flattened after the batch dimensions, side by side."""
    return xp.concatenate([f.reshape(batch + (-1,)) for f in factors], axis=-1)


def _unpack(packed, shapes):
    """The factors of the given (trailing) shapes packed in the last dimension of `packed`
    (an array, a boxed array or a Tensor)."""
    batch, out, start = tuple(packed.shape[:-1]), [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(packed[..., start:start + size].reshape(batch + tuple(shape)))
        start += size
    return out


def _unused(g):
    """Whether a factor's gradient is all zeros on the first-order path (the factor was not
    used, as PyTorch's undefined gradient). Under create_graph (a boxed array) it is kept."""
    return not hasattr(g, "tensor") and not g.any()


def _diag_embed(xp, v):
    return v[..., :, None] * xp.eye(v.shape[-1], dtype=v.dtype)


def _svd_backward(xp, U, S, Vh, gU, gS, gVh):
    """PyTorch's svd_backward for real A = U diag(S) Vh (reduced, distinct nonzero S):
    gA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] Vh
         + (I - U U^T) gU S^-1 Vh + U S^-1 gV^T (I - V V^T),   E_ij = S_j^2 - S_i^2."""
    m, k, n = U.shape[-2], S.shape[-1], Vh.shape[-1]
    eye = xp.eye(k, dtype=S.dtype)
    S2 = S * S
    E = S2[..., None, :] - S2[..., :, None] + eye
    J, K = _mT(U) @ gU, Vh @ _mT(gVh)
    inner = (_diag_embed(xp, gS) + (J - _mT(J)) / E * S[..., None, :]
             + S[..., :, None] * ((K - _mT(K)) / E))
    gA = U @ inner @ Vh
    if m > k:
        gA = gA + ((gU - U @ J) / S[..., None, :]) @ Vh
    if n > k:
        gA = gA + U @ ((gVh - _mT(K) @ Vh) / S[..., :, None])
    return gA


class LinalgSvd(Function):
    """(U, S, Vh) packed (see _pack). With full_matrices=True the gradient reaches only the
    first min(m, n) columns of U and rows of Vh, as in PyTorch (the others are arbitrary)."""

    @staticmethod
    def forward(ctx, A, *, full_matrices):
        U, S, Vh = ctx.xp.linalg.svd(A, full_matrices=full_matrices)
        ctx.shapes = (U.shape[-2:], S.shape[-1:], Vh.shape[-2:])
        out = _pack(ctx.xp, A.shape[:-2], U, S, Vh)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        U, S, Vh = _unpack(packed, ctx.shapes)
        gU, gS, gVh = _unpack(g, ctx.shapes)
        k = S.shape[-1]
        if _unused(gU) and _unused(gVh):   # S alone: no division by S's differences
            return (U[..., :k] * gS[..., None, :]) @ Vh[..., :k, :]
        return _svd_backward(ctx.xp, U[..., :k], S, Vh[..., :k, :], gU[..., :k], gS,
                             gVh[..., :k, :])


class LinalgSvdvals(Function):
    """The singular values; gradient U diag(g) Vh. U and Vh are saved, so under create_graph
    the engine differentiates the composite (svd's S) instead."""

    node_name = "LinalgSvdBackward0"   # PyTorch computes svdvals through its svd node

    @staticmethod
    def forward(ctx, A):
        U, S, Vh = ctx.xp.linalg.svd(A, full_matrices=False)
        ctx.save_for_backward(A, U, Vh)   # A: for the composite
        return S

    @staticmethod
    def backward(ctx, g):
        _, U, Vh = ctx.saved
        return (U * g[..., None, :]) @ Vh

    @staticmethod
    def composite(A):
        return svd(A, full_matrices=False).S


def _matrix_input(op, A):
    _check_float_input(op, A)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions, got "
                           f"shape {tuple(A.shape)}")


SVD = namedtuple("SVD", ["U", "S", "Vh"])


def svd(A, full_matrices=True, *, driver=None):
    """torch.linalg.svd: A = U diag(S) Vh, S descending. The singular vectors are unique up
    to sign, so only sign-invariant functions of them have a well-defined gradient; the
    gradient needs distinct singular values (nonzero, when m != n and U or Vh is used).
    driver (a cuSOLVER choice in PyTorch) is accepted and ignored."""
    _matrix_input("linalg.svd", A)
    packed = LinalgSvd.apply(A, full_matrices=bool(full_matrices))
    m, n = A.shape[-2:]
    k = min(m, n)
    shapes = ((m, m if full_matrices else k), (k,), (n if full_matrices else k, n))
    return SVD(*_unpack(packed, shapes))


def svdvals(A, *, driver=None):
    """torch.linalg.svdvals: the singular values of A, descending."""
    _matrix_input("linalg.svdvals", A)
    return LinalgSvdvals.apply(A)


def _svd_matrix_norm(A, ord, rows, cols, keepdim):
    """matrix_norm's ord 2 (largest singular value), -2 (smallest) and 'nuc' (their sum)."""
    rest = [d for d in range(A.ndim) if d not in (rows, cols)]
    s = svdvals(A.permute(*rest, rows, cols))
    out = amax(s, -1) if ord == 2 else amin(s, -1) if ord == -2 else _sum(s, -1)
    if keepdim:
        for d in sorted((rows, cols)):
            out = unsqueeze(out, d)
    return out


def _check_uplo(op, UPLO):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"{op}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")


def _eigh_backward(xp, L, Q, gL, gQ):
    """PyTorch's backward of a real symmetric eigendecomposition (distinct eigenvalues):
    gA = Q (diag(gL) + skew(Q^T gQ) / 2 / E) Q^T,  E_ij = L_j - L_i."""
    E = L[..., None, :] - L[..., :, None] + xp.eye(L.shape[-1], dtype=L.dtype)
    J = _mT(Q) @ gQ
    return Q @ (_diag_embed(xp, gL) + (J - _mT(J)) * 0.5 / E) @ _mT(Q)


class LinalgEigh(Function):
    """(L, Q) packed (see _pack). The gradient is symmetric, as PyTorch's: it does not
    single out the triangle that UPLO reads."""

    @staticmethod
    def forward(ctx, A, *, UPLO):
        L, Q = ctx.xp.linalg.eigh(A, UPLO=UPLO)
        ctx.shapes = (L.shape[-1:], Q.shape[-2:])
        out = _pack(ctx.xp, A.shape[:-2], L, Q)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        L, Q = _unpack(packed, ctx.shapes)
        gL, gQ = _unpack(g, ctx.shapes)
        if _unused(gQ):   # the eigenvalues alone: no division by their differences
            return (Q * gL[..., None, :]) @ _mT(Q)
        return _eigh_backward(ctx.xp, L, Q, gL, gQ)


class LinalgEigvalsh(Function):
    """The eigenvalues of a symmetric matrix; gradient Q diag(g) Q^T. Q is saved, so under
    create_graph the engine differentiates the composite (eigh's eigenvalues) instead."""

    node_name = "LinalgEighBackward0"   # as PyTorch's eigvalsh

    @staticmethod
    def forward(ctx, A, *, UPLO):
        L, Q = ctx.xp.linalg.eigh(A, UPLO=UPLO)
        ctx.save_for_backward(A, Q)   # A: for the composite
        return L

    @staticmethod
    def backward(ctx, g):
        _, Q = ctx.saved
        return (Q * g[..., None, :]) @ _mT(Q)

    @staticmethod
    def composite(A, *, UPLO):
        return eigh(A, UPLO).eigenvalues


Eigh = namedtuple("Eigh", ["eigenvalues", "eigenvectors"])


def eigh(A, UPLO="L"):
    """torch.linalg.eigh: the eigenvalues (ascending) and orthonormal eigenvectors of each
    symmetric matrix, read from its lower (UPLO='L') or upper triangle. The eigenvectors are
    unique up to sign, so only sign-invariant functions of them have a well-defined gradient,
    and it needs distinct eigenvalues."""
    _square("linalg.eigh", A)
    _check_uplo("linalg.eigh", UPLO)
    n = A.shape[-1]
    return Eigh(*_unpack(LinalgEigh.apply(A, UPLO=UPLO), ((n,), (n, n))))


def eigvalsh(A, UPLO="L"):
    """torch.linalg.eigvalsh: the eigenvalues of each symmetric matrix, ascending."""
    _square("linalg.eigvalsh", A)
    _check_uplo("linalg.eigvalsh", UPLO)
    return LinalgEigvalsh.apply(A, UPLO=UPLO)


class LinalgCholeskyEx(Function):
    """The lower Cholesky factor L of A = L L^T. PyTorch's gradient, symmetrised:
    gA = sym(L^-T Phi(L^T gL) L^-1), Phi taking the lower triangle with its diagonal halved."""

    @staticmethod
    def forward(ctx, A):
        try:
            out = ctx.xp.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            raise LinAlgError(f"linalg.cholesky: The factorization could not be completed "
                              f"because the input of shape {tuple(A.shape)} is not "
                              "positive-definite") from None
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved
        xp = ctx.xp
        phi = xp.tril(_mT(L) @ g)
        phi = phi - 0.5 * phi * xp.eye(L.shape[-1], dtype=L.dtype)
        Linv = _inverse(xp, L)
        gA = _mT(Linv) @ phi @ Linv
        return 0.5 * (gA + _mT(gA))


def cholesky(A, *, upper=False):
    """torch.linalg.cholesky: L lower-triangular with A = L L^T (upper=True: U = L^T, with
    A = U^T U) for each symmetric positive-definite matrix, read from its lower triangle; a
    matrix that is not positive-definite raises LinAlgError."""
    _square("linalg.cholesky", A)
    out = LinalgCholeskyEx.apply(A)
    return transpose(out, -1, -2) if upper else out


_QR_R_ONLY = ("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
              "Please use linalg.qr(A, mode='reduced') if you are going to differentiate "
              "through linalg.qr.")


class LinalgQr(Function):
    """(Q, R) packed (see _pack), for A with at least as many rows as columns (qr builds the
    wide case from the square one). The gradient, as PyTorch's and Walter & Lehmann's:
    gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q and copyltu(M) the symmetric
    matrix with M's lower triangle. mode='complete' with more rows than columns has none (the
    extra columns of Q are arbitrary); mode='r' none either (Q was not kept), as in PyTorch."""

    @staticmethod
    def forward(ctx, A, *, mode):
        ctx.mode = mode
        Q, R = ctx.xp.linalg.qr(A, mode="reduced" if mode == "r" else mode)
        ctx.shapes = (Q.shape[-2:], R.shape[-2:])
        out = _pack(ctx.xp, A.shape[:-2], Q, R)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        Q, R = _unpack(packed, ctx.shapes)
        if ctx.mode == "r":
            raise RuntimeError(_QR_R_ONLY)
        if ctx.mode == "complete" and Q.shape[-1] > R.shape[-1]:
            raise RuntimeError("The QR decomposition is not differentiable when "
                               "mode='complete' and nrows > ncols.")
        gQ, gR = _unpack(g, ctx.shapes)
        M = R @ _mT(gR) - _mT(gQ) @ Q
        lower = ctx.xp.tril(M, -1)
        copyltu = lower + _mT(lower) + M * ctx.xp.eye(M.shape[-1], dtype=M.dtype)
        return (gQ + Q @ copyltu) @ _mT(_inverse(ctx.xp, R))


QR = namedtuple("QR", ["Q", "R"])


def qr(A, mode="reduced"):
    """torch.linalg.qr: A = Q R, Q with orthonormal columns, R upper-triangular. mode
    'reduced' (Q m x k, R k x n, k = min(m, n)), 'complete' (Q m x m, R m x n) or 'r' (R only;
    Q is an empty tensor). For a wide A (m < n), Q and the first m columns of R are the QR of
    A's first m columns, and the rest of R is Q^T times the other columns: so it is built
    and differentiated."""
    _matrix_input("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    m, n = A.shape[-2:]
    if m < n and mode != "r":
        Q, R = qr(A[..., :m])
        return QR(Q, cat([R, _mT(Q) @ A[..., m:]], -1))
    packed = LinalgQr.apply(A, mode=mode)
    k = m if mode == "complete" else min(m, n)
    Q, R = _unpack(packed, ((m, k), (k, n)))
    if mode == "r":
        Q = Tensor._make(backend.array_module(A.device).zeros((0,), A.dtype), A.device)
    return QR(Q, R)


class LinalgPinv(Function):
    """The pseudoinverse from the SVD (or, hermitian, from eigh), singular values at or below
    max(atol, rtol * the largest) treated as zero. PyTorch's backward (valid where the rank
    is constant around A), with products only, so it records under create_graph."""

    @staticmethod
    def forward(ctx, A, *, atol, rtol, hermitian):
        xp = ctx.xp
        if hermitian:
            L, Q = xp.linalg.eigh(A)
            S, left, right = xp.abs(L), Q, _mT(Q)
            values = L
        else:
            left, S, right = xp.linalg.svd(A, full_matrices=False)
            values = S
        largest = S.max(axis=-1, keepdims=True) if S.shape[-1] else S.sum(-1, keepdims=True)
        keep = S > xp.maximum(atol, rtol * largest)
        inv_values = xp.where(keep, 1 / xp.where(keep, values, 1), 0)
        out = (_mT(right) * inv_values[..., None, :]) @ _mT(left)
        out = out.astype(A.dtype, copy=False)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, P = ctx.saved
        Ph, gh = _mT(P), _mT(g)
        if A.shape[-2] <= A.shape[-1]:
            K = gh @ P
            KPh = K @ Ph
            return -_mT(P @ K) + KPh - (A @ P) @ KPh + (Ph @ P) @ (gh - K @ A)
        K = P @ gh
        PhK = Ph @ K
        return -_mT(K @ P) + (gh - A @ K) @ P @ Ph + PhK - PhK @ P @ A


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """torch.linalg.pinv: the Moore-Penrose pseudoinverse of each matrix. Singular values
    (absolute eigenvalues, hermitian=True, reading the lower triangle) at or below
    max(atol, rtol * the largest) count as zero; rtol defaults to eps * max(m, n) when atol
    is not given (or 0), else to 0, as in PyTorch."""
    _matrix_input("linalg.pinv", A)
    if hermitian:
        _square("linalg.pinv", A)
    if rtol is None:
        rtol = np.finfo(A.dtype).eps * max(A.shape[-2:]) if not atol else 0.0
    return LinalgPinv.apply(A, atol=0.0 if atol is None else float(atol), rtol=float(rtol),
                            hermitian=bool(hermitian))
