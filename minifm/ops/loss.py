"""Loss functions, as in torch.nn.functional: cross_entropy, nll_loss, mse_loss, l1_loss,
smooth_l1_loss, binary_cross_entropy, binary_cross_entropy_with_logits and kl_div; and the
composites huber, margin ranking, hinge embedding, soft margin, cosine embedding, triplet
margin, Poisson and Gaussian NLL, and multilabel soft margin losses.

The losses that classifiers train on are fused ops with an analytic backward.
`cross_entropy` computes log_softmax and the loss in one op, and its gradient is
"softmax minus target" (scaled by the class weights): no chain of small ops, no
probability tensor kept besides the log-probabilities, and logits of +-1e4 give finite
values and gradients. The regression losses are a few lines of elementwise ops, whose
chain rule lives in those ops.

Every loss takes `reduction`: 'none' (one loss per element), 'sum', or 'mean'. For
class-index targets 'mean' divides by the total weight of the targets that are not
ignored (PyTorch's rule), so a weighted loss is a weighted average.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from ._dtypes import compute_dtype
from .activation import log_softmax, logsigmoid, stable_sigmoid
from .array_box import box, namespace_for, unbox
from .distance import pairwise_distance
from .elementwise import abs, log, square, where

_REDUCTIONS = ("none", "mean", "sum")


# ----------------------------------------------------------------------------- checks
def _check_reduction(op, reduction, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")


def _no_legacy_arguments(op, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise TypeError(f"{op}: size_average and reduce are deprecated; use reduction")


def _check_floating(op, name, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point Tensor, got "
                        f"{backend.dtype_name(t.dtype)}")


def _check_same_shape(op, input, target):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target of shape {tuple(target.shape)} must have the same shape "
                         f"as the input of shape {tuple(input.shape)}")


def _check_broadcasts(op, name, other, input):
    """`other` (a target or weight) must broadcast to the input's shape."""
    try:
        np.broadcast_shapes(tuple(other.shape), tuple(input.shape))
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {tuple(other.shape)} does not broadcast to the "
                         f"input of shape {tuple(input.shape)}") from None


def _as_weight(op, name, weight, input):
    """An optional weight Tensor in the input's dtype (PyTorch requires equal dtypes;
    minifm casts instead, so a default float32 weight works with float64 inputs)."""
    if weight is None:
        return None
    _check_floating(op, name, weight)
    _check_broadcasts(op, name, weight, input)
    return weight.to(input.dtype)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _regression_operands(op, input, target, reduction):
    """Checks shared by mse/l1/smooth_l1: float input, broadcastable target (PyTorch warns
    when the shapes differ, since broadcasting is then rarely what was meant)."""
    _check_reduction(op, reduction)
    _check_floating(op, "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        _check_broadcasts(op, "target", target, input)
        warnings.warn(f"{op}: using a target size {tuple(target.shape)} that is different from "
                      f"the input size {tuple(input.shape)}; they will be broadcast, which is "
                      "likely not what you want. Give them the same size.", stacklevel=3)


# ----------------------------------------------------------------------------- class losses
def _log_softmax_axis1(xp, x):
    """log_softmax over axis 1 of (N, C, R), max-shifted so +-1e4 logits stay finite."""
    logp = x - x.max(axis=1, keepdims=True)
    lse = xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
    logp -= lse
    return logp


def _ncr(x):
    """Batch, classes and the product of the remaining dims of an (N, C, d1, ...) array:
    every class loss works on the (N, C, R) view."""
    return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))


class _ClassTargets:
    """Class-index targets (N, R) against scores (N, C, R): which are kept, where they point,
    and the weight of each (zero where ignored). Shared by CrossEntropy and NllLoss."""

    def __init__(self, xp, y, weight, ignore_index, dtype):
        n, r = y.shape
        self.keep = y != ignore_index
        self.safe_y = xp.where(self.keep, y, 0)
        self.index = (xp.arange(n)[:, None], self.safe_y, xp.arange(r)[None, :])
        if weight is None:
            self.w_y = self.keep.astype(dtype)
        else:
            self.w_y = weight.astype(dtype, copy=False)[self.safe_y] * self.keep
        self.total_weight = self.w_y.sum()


def _reduce_class_loss(xp, loss, targets, reduction, out_shape, out_dtype):
    if reduction == "none":
        return loss.reshape(out_shape).astype(out_dtype, copy=False)
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / targets.total_weight  # nan when every target is ignored, as PyTorch
    return xp.asarray(total, dtype=out_dtype)


def _per_target_grad(xp, g, targets, reduction):
    """The output gradient spread to one value per target, (N, R)."""
    if reduction == "none":
        return g.reshape(targets.keep.shape)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            g = xp.where(targets.total_weight > 0, g / targets.total_weight, 0)
    return xp.broadcast_to(g, targets.keep.shape)


class CrossEntropy(Function):
    """Cross-entropy of logits x (N, C, R) with class indices y (N, R), fused with log_softmax.

    With s = label_smoothing and w the class weights (ones when not given), each target
    spreads its weight over the classes as a[c] = (1 - s) w[y] [c == y] + (s / C) w[c]
    (a = 0 where y is ignored), and loss = -sum_c a[c] log p[c]. Since
    d(-log p[c]) / dx[j] = p[j] - [c == j], the gradient is p * sum(a) - a: without weights
    and smoothing, softmax minus the one-hot target. The class weights are a constant
    attribute (they get no gradient, as in PyTorch).

    Under create_graph the engine differentiates `_cross_entropy_composite` instead, which
    is why forward saves the logits and the targets besides the log-probabilities.
    """

    @staticmethod
    def forward(ctx, x, y, *, weight, ignore_index, reduction, label_smoothing):
        xp = ctx.xp
        n, c, r = _ncr(x)
        x3 = x.reshape(n, c, r).astype(compute_dtype(x.dtype), copy=False)
        y2 = y.reshape(n, r)
        logp = _log_softmax_axis1(xp, x3)
        targets = _ClassTargets(xp, y2, weight, ignore_index, logp.dtype)
        loss = logp[targets.index] * (-(1.0 - label_smoothing) * targets.w_y)
        if label_smoothing:
            scored = logp if weight is None else logp * weight.astype(logp.dtype)[None, :, None]
            loss -= (label_smoothing / c) * scored.sum(axis=1) * targets.keep
        ctx.save_for_backward(x, y, logp)
        ctx.weight, ctx.targets = weight, targets
        ctx.reduction, ctx.smoothing = reduction, label_smoothing
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return _reduce_class_loss(xp, loss, targets, reduction, y.shape, x.dtype)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        _, _, logp = ctx.saved
        weight, targets, s = ctx.weight, ctx.targets, ctx.smoothing
        c = logp.shape[1]
        gn = _per_target_grad(xp, g, targets, ctx.reduction).astype(logp.dtype, copy=False)
        gn_kept = gn * targets.keep
        # sum_c a[c] = (1 - s) w[y] + (s / C) sum(w), for each kept target
        weight_sum = c if weight is None else weight.sum()
        total_a = (1.0 - s) * targets.w_y + (s / c) * weight_sum * targets.keep
        grad = xp.exp(logp)
        grad *= (gn * total_a)[:, None, :]
        if s:
            spread = (s / c) * gn_kept[:, None, :]
            grad -= spread if weight is None else spread * weight.astype(logp.dtype)[None, :, None]
        grad[targets.index] -= (1.0 - s) * gn * targets.w_y
        return grad.reshape(ctx.shape).astype(ctx.dtype, copy=False), None

    @staticmethod
    def composite(x, y, *, weight, ignore_index, reduction, label_smoothing):
        """The same loss from differentiable ops, -sum_c a[c] log_softmax(x)[c], with the
        target weights a (a constant of y) laid out as an (N, C, R) array."""
        xp = backend.array_module(x.device)
        n, c, r = _ncr(x)
        logp = log_softmax(x.reshape(n, c, r), dim=1)
        targets = _ClassTargets(xp, y._data.reshape(n, r), weight, ignore_index, logp.dtype)
        w = xp.ones(c, logp.dtype) if weight is None else weight.astype(logp.dtype)
        a = (label_smoothing / c) * w[None, :, None] * targets.keep[:, None, :]
        a[targets.index] += (1.0 - label_smoothing) * targets.w_y
        loss = -(logp * Tensor._make(a, x.device)).sum(dim=1)
        if reduction == "none":
            return loss.reshape(y.shape)
        total = loss.sum()
        return total / float(targets.total_weight) if reduction == "mean" else total


def _probability_terms(xp, x, t, weight, label_smoothing):
    """log p, a and w of CrossEntropyProbs, in NumPy's array API (its composite runs this
    on the differentiable namespace): x (N, C, *) seen as (N, C, R), t smoothed into a."""
    n, c, r = _ncr(x)
    work = compute_dtype(x.dtype)
    logp = _log_softmax_axis1(xp, x.reshape(n, c, r).astype(work, copy=False))
    a = t.reshape(n, c, r).astype(work, copy=False)
    if label_smoothing:
        a = a * (1.0 - label_smoothing) + label_smoothing / c
    w = None if weight is None else weight.astype(work)[None, :, None]
    if w is not None:
        a = a * w
    return logp, a, w


def _reduce_probability_loss(loss, reduction, dtype):
    """The (N, R) losses of CrossEntropyProbs, reduced, in the input's dtype."""
    if reduction == "none":
        return loss.astype(dtype, copy=False)
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore"):
            total = total / loss.size  # nan for an empty batch, as PyTorch
    return total.astype(dtype)


class CrossEntropyProbs(Function):
    """Cross-entropy of logits x (N, C, R) with class probabilities t (N, C, R):
    loss = -sum_c w[c] t[c] log p[c], smoothed as t -> (1 - s) t + s / C. The gradient is
    p * sum(a) - a with a = w t, as for class indices; t gets -w log p. The class weights
    are a constant attribute, and forward saves x and t for the composite."""

    @staticmethod
    def forward(ctx, x, t, *, weight, reduction, label_smoothing):
        logp, a, w = _probability_terms(ctx.xp, x, t, weight, label_smoothing)
        ctx.save_for_backward(x, t, logp, a, w)
        ctx.reduction, ctx.smoothing = reduction, label_smoothing
        ctx.shape, ctx.dtype = x.shape, x.dtype
        loss = -(a * logp).sum(axis=1).reshape((x.shape[0],) + x.shape[2:])
        return _reduce_probability_loss(loss, reduction, x.dtype)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        _, _, logp, a, w = ctx.saved
        n, _, r = logp.shape
        if ctx.reduction == "none":
            gn = g.reshape(n, 1, r)
        else:  # (max: an empty batch has an empty gradient anyway)
            gn = g / max(n * r, 1) if ctx.reduction == "mean" else g
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = xp.exp(logp) * a.sum(axis=1, keepdims=True)
            gx -= a
            gx *= gn
            gx = gx.reshape(ctx.shape).astype(ctx.dtype, copy=False)
        if ctx.needs_input_grad[1]:
            gt = logp * (-(1.0 - ctx.smoothing))
            if w is not None:
                gt *= w
            gt = (gt * gn).reshape(ctx.shape)
        return gx, gt

    @staticmethod
    def composite(x, t, *, weight, reduction, label_smoothing):
        """The same loss from differentiable ops: the forward's terms on the namespace."""
        logp, a, _ = _probability_terms(namespace_for(x.device), box(x), box(t), weight,
                                        label_smoothing)
        loss = -(a * logp).sum(axis=1).reshape((x.shape[0],) + tuple(x.shape[2:]))
        return unbox(_reduce_probability_loss(loss, reduction, x.dtype))


class NllLoss(Function):
    """Negative log-likelihood of log-probabilities x (N, C, R) at class indices y (N, R):
    loss = -w[y] x[y]; its gradient is -w[y] at the target class and 0 elsewhere."""

    @staticmethod
    def forward(ctx, x, y, weight, *, ignore_index, reduction):
        xp = ctx.xp
        n, c, r = _ncr(x)
        x3 = x.reshape(n, c, r)
        targets = _ClassTargets(xp, y.reshape(n, r), weight, ignore_index, x.dtype)
        loss = -x3[targets.index] * targets.w_y
        ctx.targets, ctx.reduction, ctx.shape3, ctx.shape = targets, reduction, x3.shape, x.shape
        return _reduce_class_loss(xp, loss, targets, reduction, y.shape, x.dtype)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        targets = ctx.targets
        gn = _per_target_grad(xp, g, targets, ctx.reduction)
        grad = xp.zeros(ctx.shape3, dtype=g.dtype)
        grad[targets.index] = -gn * targets.w_y
        return grad.reshape(ctx.shape), None, None


def _class_index_operands(op, input, target, weight, ignore_index):
    """Check an input (N, C, d1, ...) or (C,) against integer targets (N, d1, ...) or ()
    and return them batched (an unbatched (C,) input becomes (1, C)) and whether they were not."""
    _check_floating(op, "input", input)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (the classes), got a "
                         "0-d tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    expected = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{tuple(input.shape)}, got target of shape {tuple(target.shape)}")
    if weight is not None:
        _check_floating(op, "weight", weight)
        if tuple(weight.shape) != (c,):
            raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have one entry "
                             f"per class, ({c},), for input of shape {tuple(input.shape)}")
    y = target._data
    bad = ((y < 0) | (y >= c)) & (y != ignore_index)
    if bad.any():
        raise IndexError(f"{op}: target {int(y[bad].reshape(-1)[0])} is out of bounds for "
                         f"{c} classes (input of shape {tuple(input.shape)})")
    if input.ndim == 1:
        return input.reshape(1, c), target.reshape(1), True
    return input, target, False


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits `input` and `target` (class indices or probabilities).

    input: (N, C), (N, C, d1, ...) or unbatched (C,). target: integer class indices of shape
    (N,), (N, d1, ...) or (), or float class probabilities of the input's shape. `weight`
    (C,) rescales each class. size_average and reduce are PyTorch's deprecated arguments
    and are not supported.
    """
    _no_legacy_arguments("cross_entropy", size_average, reduce)
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_floating("cross_entropy", "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy: target must be a Tensor, got {type(target).__name__}")
    if target.dtype.kind == "f":
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices (an integer Tensor) or "
                        "class probabilities (a float Tensor), got "
                        f"{backend.dtype_name(target.dtype)}")
    input, target, unbatched = _class_index_operands("cross_entropy", input, target, weight,
                                                     ignore_index)
    out = CrossEntropy.apply(input, target, weight=None if weight is None else weight._data,
                             ignore_index=ignore_index, reduction=reduction,
                             label_smoothing=label_smoothing)
    return out.reshape(()) if unbatched and reduction == "none" else out


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    op = "cross_entropy (class probabilities)"
    _check_same_shape(op, input, target)
    if weight is not None:
        _check_floating(op, "weight", weight)
        if tuple(weight.shape) != (input.shape[1 if input.ndim > 1 else 0],):
            raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have one entry "
                             f"per class of the input of shape {tuple(input.shape)}")
    unbatched = input.ndim == 1
    if unbatched:
        input, target = input.reshape(1, -1), target.reshape(1, -1)
    out = CrossEntropyProbs.apply(input, target.to(input.dtype),
                                  weight=None if weight is None else weight._data,
                                  reduction=reduction, label_smoothing=label_smoothing)
    return out.reshape(()) if unbatched and reduction == "none" else out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` (N, C, ...) or (C,) at the class
    indices `target`; cross_entropy is nll_loss(log_softmax(input))."""
    _no_legacy_arguments("nll_loss", size_average, reduce)
    _check_reduction("nll_loss", reduction)
    _check_floating("nll_loss", "input", input)
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must be an integer Tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    input, target, unbatched = _class_index_operands("nll_loss", input, target, weight,
                                                     ignore_index)
    out = NllLoss.apply(input, target, weight, ignore_index=ignore_index, reduction=reduction)
    return out.reshape(()) if unbatched and reduction == "none" else out


# ----------------------------------------------------------------------------- binary losses
def _log_sigmoid(xp, x):
    """log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), finite for any x."""
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


class BinaryCrossEntropy(Function):
    """-w (t log x + (1 - t) log(1 - x)) for probabilities x, each log clamped at -100 and
    the gradient's denominator x (1 - x) at 1e-12, as PyTorch does, so x = 0 or 1 is finite."""

    @staticmethod
    def forward(ctx, x, t, weight):
        xp = ctx.xp
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        loss = -(t * log_x + (1 - t) * log_1mx)
        if weight is not None:
            loss *= weight
        ctx.save_for_backward(x, t)
        ctx.weight = weight  # a constant: the weight gets no gradient
        return loss

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        x, t = ctx.saved
        if ctx.weight is not None:
            g = g * ctx.weight
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = g * (x - t) / xp.maximum((1 - x) * x, 1e-12)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gt = g * (xp.log1p(-x) - xp.log(x))
        return gx, gt, None


class BinaryCrossEntropyWithLogits(Function):
    """Binary cross-entropy of logits x: (1 - t) x - l log(sigmoid(x)), times w, where
    l = 1 + (pos_weight - 1) t weighs the positive term. log(sigmoid) is computed stably,
    so any logit is fine. d/dx = l sigmoid(x) - l + 1 - t (sigmoid(x) - t without pos_weight)."""

    @staticmethod
    def forward(ctx, x, t, weight, pos_weight):
        xp = ctx.xp
        log_sig = _log_sigmoid(xp, x)
        if pos_weight is None:
            loss = (1 - t) * x - log_sig
        else:
            loss = (1 - t) * x - (1 + (pos_weight - 1) * t) * log_sig
        if weight is not None:
            loss *= weight
        ctx.save_for_backward(x, t)
        ctx.weight, ctx.pos_weight = weight, pos_weight  # constants: they get no gradient
        return loss

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        x, t = ctx.saved
        weight, pos_weight = ctx.weight, ctx.pos_weight
        if weight is not None:
            g = g * weight
        gx = gt = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                gx = g * (stable_sigmoid(xp, x) - t)
            else:
                lw = 1 + (pos_weight - 1) * t
                gx = g * (lw * stable_sigmoid(xp, x) - lw + 1 - t)
        if ctx.needs_input_grad[1]:
            gt = -x if pos_weight is None else -x - (pos_weight - 1) * _log_sigmoid(xp, x)
            gt = g * gt
        return gx, gt, None, None


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross-entropy of probabilities `input` (in [0, 1]) against `target` of the same
    shape; `weight` broadcasts to the input."""
    _no_legacy_arguments("binary_cross_entropy", size_average, reduce)
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    _check_floating(op, "input", input)
    _check_floating(op, "target", target)
    _check_same_shape(op, input, target)
    if input.numel() and (float(input._data.min()) < 0 or float(input._data.max()) > 1):
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 (they are "
                         "probabilities; for logits use binary_cross_entropy_with_logits)")
    loss = BinaryCrossEntropy.apply(input, target.to(input.dtype),
                                    _as_weight(op, "weight", weight, input))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid and binary cross-entropy in one stable op. `weight` broadcasts to the input;
    `pos_weight` (usually (C,), broadcast over the last dimension) weighs positive targets."""
    _no_legacy_arguments("binary_cross_entropy_with_logits", size_average, reduce)
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    _check_floating(op, "input", input)
    _check_floating(op, "target", target)
    _check_same_shape(op, input, target)
    loss = BinaryCrossEntropyWithLogits.apply(
        input, target.to(input.dtype), _as_weight(op, "weight", weight, input),
        _as_weight(op, "pos_weight", pos_weight, input))
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- regression
def _elementwise_weighted(op, loss, input, weight, reduction):
    """Scale each element's loss by `weight` (the input's shape); 'mean' is then the
    weighted average sum(w loss) / sum(w), as PyTorch 2.8+ defines it."""
    if weight is None:
        return _reduce(loss, reduction)
    _check_floating(op, "weight", weight)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's "
                         f"shape {tuple(input.shape)}")
    weight = weight.to(input.dtype)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (input - target)^2, optionally weighted per element."""
    _no_legacy_arguments("mse_loss", size_average, reduce)
    _regression_operands("mse_loss", input, target, reduction)
    return _elementwise_weighted("mse_loss", square(input - target), input, weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error |input - target| (its gradient at 0 is 0, as PyTorch's),
    optionally weighted per element."""
    _no_legacy_arguments("l1_loss", size_average, reduce)
    _regression_operands("l1_loss", input, target, reduction)
    return _elementwise_weighted("l1_loss", abs(input - target), input, weight, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target):
    quadratic near 0, linear in the tails. beta = 0 is the L1 loss."""
    _no_legacy_arguments("smooth_l1_loss", size_average, reduce)
    _regression_operands("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    diff = input - target
    if beta == 0:
        return _reduce(abs(diff), reduction)
    size = abs(diff)
    loss = where(size < beta, square(diff) * (0.5 / beta), size - 0.5 * beta)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || input-distribution) pointwise, for log-probabilities `input`:
    target (log target - input), taken as 0 where target is 0; with log_target=True the
    target is given as log-probabilities too. reduction='batchmean' (sum / batch size) is
    the true KL divergence; 'mean' divides by every element, as PyTorch does (and warns)."""
    _no_legacy_arguments("kl_div", size_average, reduce)
    op = "kl_div"
    _check_reduction(op, reduction, _REDUCTIONS + ("batchmean",))
    _check_floating(op, "input", input)
    _check_floating(op, "target", target)
    if tuple(target.shape) != tuple(input.shape):
        _check_broadcasts(op, "target", target, input)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size and "
                      "is the KL divergence's definition.", stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # target * log(target) with 0 log 0 = 0 (xlogy), minus target * input
        loss = target * log(where(target == 0, 1.0, target)) - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- more losses
# Composites of differentiable ops: their gradients (and second order) come from those ops.
def _check_targets(op, *named):
    for name, t in named:
        _check_floating(op, name, t)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (d = input - target):
    smooth_l1_loss times delta. `weight` (the input's shape) scales each element's loss
    before the plain mean, as PyTorch's does."""
    op = "huber_loss"
    _regression_operands(op, input, target, reduction)
    if delta <= 0:
        raise RuntimeError(f"{op}: huber_loss does not support non-positive values for delta "
                           f"(got {delta}).")
    diff = input - target
    size = abs(diff)
    loss = where(size < delta, square(diff) * 0.5, (size - 0.5 * delta) * delta)
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError(f"{op}: Weights and input must have the same size (weight of shape "
                             f"{tuple(weight.shape)}, input of shape {tuple(input.shape)}).")
        loss = loss * weight.to(input.dtype)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target (input1 - input2) + margin): target 1 asks input1 to rank higher."""
    op = "margin_ranking_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_targets(op, ("input1", input1), ("input2", input2), ("target", target))
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(f"{op}: All input tensors should have same dimension but got sizes: "
                           f"input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, "
                           f"target: {tuple(target.shape)}")
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """input where target is 1, max(0, margin - input) where target is -1 (both terms where
    target is neither, as PyTorch computes it)."""
    op = "hinge_embedding_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_floating(op, "input", input)
    target = target.to(input.dtype)
    _check_broadcasts(op, "target", target, input)
    margin_term = where(target != 1, (margin - input).clamp(min=0), 0.0)
    return _reduce(margin_term + where(target != -1, input, 0.0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target input)), the logistic loss of targets +-1."""
    op = "soft_margin_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _regression_operands(op, input, target, reduction)
    shape = np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    if shape != tuple(input.shape):  # PyTorch writes the loss into an input-shaped output
        raise RuntimeError(f"{op}: output with shape {tuple(input.shape)} doesn't match the "
                           f"broadcast shape {shape}")
    return _reduce(-logsigmoid(target * input), reduction)


_COSINE_EPS = 1e-12


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1; the
    cosine over the last dim of (N, D) or (D,) inputs, each squared norm plus 1e-12."""
    op = "cosine_embedding_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_targets(op, ("input1", input1), ("input2", input2))
    if target.ndim not in (0, 1):
        raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not supported "
                           f"(target of shape {tuple(target.shape)})")
    if input1.ndim != input2.ndim or input1.ndim != target.ndim + 1:
        raise RuntimeError(f"{op}: {target.ndim}D target tensor expects {target.ndim + 1}D input "
                           f"tensors, but found inputs with sizes {tuple(input1.shape)} and "
                           f"{tuple(input2.shape)}.")
    dim = input1.ndim - 1
    dot = (input1 * input2).sum(dim)
    norms = ((input1 * input1).sum(dim) + _COSINE_EPS) * ((input2 * input2).sum(dim) + _COSINE_EPS)
    cos = dot / norms.sqrt()
    target = target.to(input1.dtype)
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).clamp(min=0), 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)), d the p-norm distance
    (pairwise_distance with eps); swap also takes d(positive, negative) if it is smaller."""
    op = "triplet_margin_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_targets(op, ("anchor", anchor), ("positive", positive), ("negative", negative))
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"{op}: The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Negative log-likelihood of target under Poisson(rate): exp(input) - target input for
    log-rates (log_input), else input - target log(input + eps); full adds Stirling's
    approximation of log(target!) where target > 1."""
    op = "poisson_nll_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_targets(op, ("input", input), ("target", target))
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        safe = where(target > 1, target, 1.0)
        stirling = safe * safe.log() - safe + 0.5 * (2 * np.pi * safe).log()
        loss = loss + where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log var + (input - target)^2 / var) (+ 0.5 log 2 pi when full). var has the
    input's shape, one dim fewer (one variance per row) or a 1 where the input has a size;
    it is clamped to eps for stability, the gradient passing as if unclamped (PyTorch's)."""
    op = "gaussian_nll_loss"
    _check_targets(op, ("input", input), ("target", target))
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = input.new_full(tuple(input.shape), float(var))
    elif bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    shape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != shape:
        if shape[:-1] == vshape:
            var = var.unsqueeze(-1)
        elif not (len(shape) == len(vshape)
                  and sum(v for s, v in zip(shape, vshape) if s != v) == 1):
            raise ValueError(f"var is of incorrect size ({op}: var of shape {vshape}, input of "
                             f"shape {shape})")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not valid")
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (var.log() + square(input - target) / var)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Binary logistic loss of each class (targets 0/1), weighted per class, averaged over
    the classes (the last dim) of each sample."""
    op = "multilabel_soft_margin_loss"
    _no_legacy_arguments(op, size_average, reduce)
    _check_reduction(op, reduction)
    _check_floating(op, "input", input)
    target = target.to(input.dtype)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * _as_weight(op, "weight", weight, input)
    if input.ndim == 0:  # no class dim
        raise IndexError(f"{op}: Dimension specified as -1 but tensor has no dimensions")
    dim = input.ndim - 1
    return _reduce(loss.sum(dim) / input.shape[dim], reduction)
