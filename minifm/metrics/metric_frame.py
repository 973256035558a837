"""MetricFrame: metrics computed on the whole data and on each group, as fairlearn's.

A model can be accurate on average and poor for one group of people or one kind of input.
MetricFrame evaluates each metric once overall and once per value of a sensitive feature,
then summarizes the spread: the largest gap between groups (`difference`), the smallest
ratio (`ratio`), the worst and best group (`group_min`, `group_max`).

fairlearn returns pandas objects; MetricFrame returns plain dicts indexed the same way:
with a dict of metrics, `frame.overall["acc"]`, `frame.by_group["acc"]["a"]`,
`frame.difference()["acc"]`; with a single metric function, the unnested form
(`frame.overall` a number, `frame.by_group["a"]`, `frame.difference()` a number). Groups
come in sorted order, as pandas' groupby gives them. Missing values follow pandas: NaN
results are skipped by min, max and the differences, and a ratio with a zero denominator
is inf or NaN as the division gives it. One sensitive feature at a time; no control
features and no sample parameters.
"""
from __future__ import annotations

import math

import numpy as np

from .classification import as_labels


def _nan_reduce(reduce, values):
    """min or max of `values`, skipping NaNs (pandas' skipna); NaN when all are NaN."""
    kept = [v for v in values if not math.isnan(v)]
    return reduce(kept) if kept else math.nan


def _divide(a, b):
    """a / b with pandas' (IEEE) rules: x/0 is +-inf, 0/0 NaN, instead of an exception."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


class MetricFrame:
    """Metrics of (y_true, y_pred) overall and per group of `sensitive_features`.

    metrics: a function f(y_true, y_pred) -> float, or a dict {name: function}.
    y_true, y_pred, sensitive_features: one entry per sample (arrays, lists or Tensors).
    """

    def __init__(self, *, metrics, y_true, y_pred, sensitive_features):
        self._single = callable(metrics)
        self._metrics = {metrics.__name__: metrics} if self._single else dict(metrics)
        y_true, y_pred = as_labels(y_true), as_labels(y_pred)
        features = as_labels(sensitive_features)
        if not len(y_true) == len(y_pred) == len(features):
            raise ValueError(f"MetricFrame: y_true, y_pred and sensitive_features have "
                             f"{len(y_true)}, {len(y_pred)} and {len(features)} entries")
        groups = np.unique(features).tolist()
        self._overall = {name: f(y_true, y_pred) for name, f in self._metrics.items()}
        self._by_group = {name: {g: f(y_true[features == g], y_pred[features == g])
                                 for g in groups}
                          for name, f in self._metrics.items()}

    def _shaped(self, per_metric):
        """{metric: value}, or the one value for a single metric function."""
        return next(iter(per_metric.values())) if self._single else per_metric

    @property
    def overall(self):
        """Each metric on all the samples."""
        return self._shaped(self._overall)

    @property
    def by_group(self):
        """Each metric on the samples of each group: {metric: {group: value}}."""
        return self._shaped(self._by_group)

    def group_min(self):
        """Each metric's smallest value over the groups."""
        return self._shaped({name: _nan_reduce(min, groups.values())
                             for name, groups in self._by_group.items()})

    def group_max(self):
        """Each metric's largest value over the groups."""
        return self._shaped({name: _nan_reduce(max, groups.values())
                             for name, groups in self._by_group.items()})

    def difference(self, method="between_groups"):
        """Each metric's largest gap: group_max - group_min ("between_groups"), or the
        largest |group - overall| ("to_overall")."""
        if method == "between_groups":
            low, high = self._unshaped(self.group_min()), self._unshaped(self.group_max())
            return self._shaped({name: high[name] - low[name] for name in self._metrics})
        self._check_method(method)
        return self._shaped({
            name: _nan_reduce(max, [abs(v - self._overall[name]) for v in groups.values()])
            for name, groups in self._by_group.items()})

    def ratio(self, method="between_groups"):
        """Each metric's smallest ratio: group_min / group_max ("between_groups"), or the
        smallest of group / overall, each taken as at most 1 (inverted when above), for
        "to_overall"."""
        if method == "between_groups":
            low, high = self._unshaped(self.group_min()), self._unshaped(self.group_max())
            return self._shaped({name: _divide(low[name], high[name])
                                 for name in self._metrics})
        self._check_method(method)
        ratios = {name: [_divide(v, self._overall[name]) for v in groups.values()]
                  for name, groups in self._by_group.items()}
        return self._shaped({name: _nan_reduce(min, [1 / r if r > 1 else r for r in values])
                             for name, values in ratios.items()})

    def _unshaped(self, result):
        return {next(iter(self._metrics)): result} if self._single else result

    @staticmethod
    def _check_method(method):
        if method != "to_overall":
            raise ValueError(f"method must be 'between_groups' or 'to_overall', got {method!r}")
