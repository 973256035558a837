"""Matrix products: matmul (PyTorch's 1-D, 2-D and batched-broadcast rules), linear,
fused as one op because it is the most frequent op in every model, and einsum."""
from __future__ import annotations

import string

import numpy as np

from ..autograd import Function
from .elementwise import binary_operands
from .shape import expand


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
