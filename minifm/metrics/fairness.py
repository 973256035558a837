"""Disparity metrics (fairlearn's): how far a classifier treats groups differently.

Demographic parity asks that every group be selected (predicted positive) at the same
rate; equalized odds asks that every group have the same true positive rate *and* the
same false positive rate, i.e. that errors not depend on the group once the true label
is known. Each is reported as a difference (0 is parity) or a ratio (1 is parity); the
`method` is MetricFrame's.
"""
from __future__ import annotations

import math

from .classification import false_positive_rate, selection_rate, true_positive_rate
from .metric_frame import MetricFrame


def demographic_parity_difference(y_true, y_pred, *, sensitive_features,
                                  method="between_groups"):
    """The largest gap in selection rate between groups."""
    return MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred,
                       sensitive_features=sensitive_features).difference(method=method)


def demographic_parity_ratio(y_true, y_pred, *, sensitive_features, method="between_groups"):
    """The smallest ratio of selection rates between groups."""
    return MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred,
                       sensitive_features=sensitive_features).ratio(method=method)


def _odds_frame(y_true, y_pred, sensitive_features):
    return MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                       y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features)


def _aggregate(values, worst, agg):
    """The worst of the TPR and FPR figures (`worst` is max or min), or their mean. NaNs
    as fairlearn treats them: Python's max/min over (tpr, fpr), a NaN-skipping mean."""
    if agg == "mean":
        kept = [v for v in values if not math.isnan(v)]
        return sum(kept) / len(kept) if kept else math.nan
    if agg != "worst_case":
        raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg}")
    return worst(values)


def equalized_odds_difference(y_true, y_pred, *, sensitive_features, method="between_groups",
                              agg="worst_case"):
    """The larger (agg="mean": the mean) of the TPR and the FPR differences."""
    gaps = _odds_frame(y_true, y_pred, sensitive_features).difference(method=method)
    return _aggregate(list(gaps.values()), max, agg)


def equalized_odds_ratio(y_true, y_pred, *, sensitive_features, method="between_groups",
                         agg="worst_case"):
    """The smaller (agg="mean": the mean) of the TPR and the FPR ratios."""
    ratios = _odds_frame(y_true, y_pred, sensitive_features).ratio(method=method)
    return _aggregate(list(ratios.values()), min, agg)
