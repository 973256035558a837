"""Classification metrics with scikit-learn's names, arguments and results.

Each takes the true and the predicted labels as NumPy arrays, lists or minifm Tensors
(anything `np.asarray` reads). Precision, recall and F1 share one computation
(`_per_class_counts`, then `_divide`, then `_average`), as scikit-learn's
`precision_recall_fscore_support` does. Unlike scikit-learn there are no sample weights
and no multilabel targets; `selection_rate`, `true_positive_rate` and
`false_positive_rate` are fairlearn's (scikit-learn has none of them).
"""
from __future__ import annotations

import warnings

import numpy as np

AVERAGES = ("binary", "micro", "macro", "weighted", None)


def as_labels(values):
    """A 1-D NumPy array of labels from an array, a list or a (CPU or CUDA) Tensor."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D array of labels, got shape {array.shape}")
    return array


def _pair(y_true, y_pred):
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels and y_pred {len(y_pred)}")
    return y_true, y_pred


def accuracy_score(y_true, y_pred, *, normalize=True):
    """The fraction (or, normalize=False, the number) of labels predicted exactly."""
    y_true, y_pred = _pair(y_true, y_pred)
    hits = y_true == y_pred
    return float(hits.mean()) if normalize else int(hits.sum())


def confusion_matrix(y_true, y_pred, *, labels=None, normalize=None):
    """C[i, j] = the number of samples of true label labels[i] predicted as labels[j].

    labels defaults to the sorted labels present in either array. normalize "true" divides
    each row by its sum, "pred" each column, "all" the whole; an empty row or column gives
    zeros, as scikit-learn's does.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    labels = np.union1d(y_true, y_pred) if labels is None else as_labels(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    kept = [i for i, (t, p) in enumerate(zip(y_true.tolist(), y_pred.tolist()))
            if t in index and p in index]
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[t] for t in y_true[kept].tolist()],
                       [index[p] for p in y_pred[kept].tolist()]), 1)
    if normalize is None:
        return matrix
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(matrix / matrix.sum(axis=axis, keepdims=True))


def _per_class_counts(y_true, y_pred, labels, average, pos_label):
    """(true positives, predicted positives, actual positives) per class considered."""
    present = np.union1d(y_true, y_pred)
    if average == "binary":
        if len(present) > 2:
            raise ValueError("Target is multiclass but average='binary'. Please choose "
                             "another average setting, one of [None, 'micro', 'macro', "
                             "'weighted'].")
        if pos_label not in present.tolist() and len(present) == 2:
            raise ValueError(f"pos_label={pos_label} is not a valid label. It should be one "
                             f"of {present.tolist()}")
        labels = [pos_label]
    elif labels is None:
        labels = present
    labels = np.asarray(labels)[:, None]
    tp = ((y_true == labels) & (y_pred == labels)).sum(axis=1)
    predicted, actual = (y_pred == labels).sum(axis=1), (y_true == labels).sum(axis=1)
    if average == "micro":
        return tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    return tp, predicted, actual


def _divide(numerator, denominator, zero_division, what):
    """numerator / denominator per class, with `zero_division` where the denominator is 0
    (0 plus a warning for "warn")."""
    if zero_division not in ("warn", 0, 1) and not np.isnan(zero_division):
        raise ValueError(f"zero_division must be 'warn', 0, 1 or nan, got {zero_division!r}")
    empty = denominator == 0
    result = numerator / np.where(empty, 1, denominator).astype(np.float64)
    if empty.any():
        if zero_division == "warn":
            warnings.warn(f"{what} is ill-defined and being set to 0.0 in labels with no "
                          "samples to divide by; use zero_division to control this",
                          UserWarning, stacklevel=4)
        result[empty] = 0.0 if zero_division == "warn" else zero_division
    return result


def _average(scores, average, actual):
    """The per-class scores averaged as `average` says (None: all of them). NaN scores
    (zero_division=nan) are left out of the average, as scikit-learn does."""
    if average is None:
        return scores
    kept = ~np.isnan(scores)
    if not kept.any():
        return float("nan")
    weights = actual[kept] if average == "weighted" and actual[kept].sum() > 0 else None
    return float(np.average(scores[kept], weights=weights))


def _scores(y_true, y_pred, labels, pos_label, average, zero_division, which):
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    y_true, y_pred = _pair(y_true, y_pred)
    tp, predicted, actual = _per_class_counts(y_true, y_pred, labels, average, pos_label)
    if which == "precision":
        scores = _divide(tp, predicted, zero_division, "Precision")
    elif which == "recall":
        scores = _divide(tp, actual, zero_division, "Recall")
    else:  # F1 = 2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall
        scores = _divide(2 * tp, predicted + actual, zero_division, "F-score")
    return _average(scores, average, actual)


def precision_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                    zero_division="warn"):
    """Of the samples predicted as a class, the fraction that belong to it: tp / (tp + fp).

    average "binary" scores the class pos_label only; "micro" pools the counts of all
    classes; "macro" is the mean of the per-class scores; "weighted" weighs them by each
    class's number of true samples; None returns the per-class scores (for `labels`,
    default the sorted labels present).
    """
    return _scores(y_true, y_pred, labels, pos_label, average, zero_division, "precision")


def recall_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                 zero_division="warn"):
    """Of the samples of a class, the fraction predicted as it: tp / (tp + fn). `average`
    as in precision_score."""
    return _scores(y_true, y_pred, labels, pos_label, average, zero_division, "recall")


def f1_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
             zero_division="warn"):
    """The harmonic mean of precision and recall, 2 tp / (2 tp + fp + fn). `average` as
    in precision_score."""
    return _scores(y_true, y_pred, labels, pos_label, average, zero_division, "f1")


def selection_rate(y_true, y_pred, *, pos_label=1):
    """The fraction of predictions equal to pos_label (y_true is ignored; fairlearn's)."""
    selected = as_labels(y_pred) == pos_label
    if len(selected) == 0:
        raise ValueError("Empty y_pred passed to selection_rate function.")
    return float(selected.mean())


def _binary_rate(y_true, y_pred, pos_label, actual_positive):
    """P(predicted positive | actually positive) or | actually negative, 0 when no sample
    is (fairlearn's rates: a row of scikit-learn's confusion matrix normalized by "true")."""
    y_true, y_pred = _pair(y_true, y_pred)
    present = np.union1d(y_true, y_pred).tolist()
    if len(present) > 2:
        raise ValueError("Must have no more than two unique y values")
    if pos_label is None:
        if not (set(present) <= {0, 1} or set(present) <= {-1, 1}):
            raise ValueError("If pos_label is not specified, values must be from {0, 1} "
                             "or {-1, 1}")
        pos_label = 1
    rows = (y_true == pos_label) == actual_positive
    return float((y_pred[rows] == pos_label).mean()) if rows.any() else 0.0


def true_positive_rate(y_true, y_pred, *, pos_label=None):
    """Recall of the positive class, tp / (tp + fn); 0 when no sample is positive.
    pos_label None means 1, for labels in {0, 1} or {-1, 1} (fairlearn's rule)."""
    return _binary_rate(y_true, y_pred, pos_label, actual_positive=True)


def false_positive_rate(y_true, y_pred, *, pos_label=None):
    """The fraction of negatives predicted positive, fp / (fp + tn); 0 when no sample is
    negative. pos_label as in true_positive_rate."""
    return _binary_rate(y_true, y_pred, pos_label, actual_positive=False)
