"""minifm.metrics against scikit-learn and fairlearn, on random labels and on the edge
cases where the conventions matter: a group with one sample, a group with no positives
or no negatives, a class never predicted, zero_division."""
import math
import warnings

import numpy as np
import pytest

import minifm
from minifm import metrics

skm = pytest.importorskip("sklearn.metrics")
fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


def same(a, b):
    """Equal numbers, NaN equal to NaN, inf to inf."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


def random_case(seed, n=60, classes=2, groups=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, classes, n), rng.integers(0, classes, n),
            rng.choice(groups, n))


# Edge cases (y_true, y_pred, groups): one sample in a group, a group without positives,
# a group without negatives, nothing predicted positive anywhere, one label only.
EDGE_CASES = {
    "one-sample group": ([1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 0], ["a", "a", "a", "a", "a", "b"]),
    "group without positives": ([0, 0, 0, 1, 1, 0], [0, 1, 0, 1, 0, 1], ["a", "a", "a", "b", "b", "b"]),
    "group without negatives": ([1, 1, 0, 1, 0], [1, 0, 1, 1, 0], ["a", "a", "b", "b", "b"]),
    "no positive predictions": ([1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1]),
    "one label only": ([0, 0, 0], [0, 0, 0], ["x", "y", "y"]),
}


# ---------------------------------------------------------------- scikit-learn's metrics
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None, "binary"])
@pytest.mark.parametrize("name", ["precision_score", "recall_score", "f1_score"])
def test_prf_equal_scikit_learn_on_random_labels(seed, classes, average, name):
    if average == "binary" and classes > 2:
        pytest.skip("binary needs two classes")
    y_true, y_pred, _ = random_case(seed, n=25, classes=classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(skm, name)(y_true, y_pred, average=average)
        same(getattr(metrics, name)(y_true, y_pred, average=average), expected)


@pytest.mark.parametrize("zero_division", [0, 1, np.nan, "warn"])
@pytest.mark.parametrize("average", ["binary", "micro", "macro", "weighted", None])
@pytest.mark.parametrize("name", ["precision_score", "recall_score", "f1_score"])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_prf_zero_division_equals_scikit_learn(case, name, average, zero_division):
    y_true, y_pred, _ = EDGE_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(skm, name)(y_true, y_pred, average=average,
                                      zero_division=zero_division)
        same(getattr(metrics, name)(y_true, y_pred, average=average,
                                    zero_division=zero_division), expected)


def test_prf_warn_like_scikit_learn():
    with pytest.warns(UserWarning, match="ill-defined"):
        assert metrics.precision_score([1, 0], [0, 0]) == 0.0


def test_pos_label_and_string_labels():
    y_true, y_pred = ["cat", "dog", "dog", "cat"], ["cat", "dog", "cat", "cat"]
    for name in ("precision_score", "recall_score", "f1_score"):
        same(getattr(metrics, name)(y_true, y_pred, pos_label="cat"),
             getattr(skm, name)(y_true, y_pred, pos_label="cat"))
    with pytest.raises(ValueError, match="pos_label"):
        metrics.precision_score(y_true, y_pred)
    with pytest.raises(ValueError, match="multiclass"):
        metrics.f1_score([0, 1, 2], [0, 1, 2])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_and_accuracy_equal_scikit_learn(seed, normalize):
    y_true, y_pred, _ = random_case(seed, n=30, classes=4)
    y_pred[y_pred == 3] = 2  # a class never predicted: an empty column
    same(metrics.confusion_matrix(y_true, y_pred, normalize=normalize),
         skm.confusion_matrix(y_true, y_pred, normalize=normalize))
    same(metrics.confusion_matrix(y_true, y_pred, labels=[2, 0]),
         skm.confusion_matrix(y_true, y_pred, labels=[2, 0]))
    same(metrics.accuracy_score(y_true, y_pred), skm.accuracy_score(y_true, y_pred))
    assert metrics.accuracy_score(y_true, y_pred, normalize=False) == skm.accuracy_score(
        y_true, y_pred, normalize=False)


def test_tensors_and_lists_are_accepted():
    y_true, y_pred = [1, 0, 1, 1], [1, 1, 0, 1]
    expected = skm.f1_score(y_true, y_pred)
    same(metrics.f1_score(minifm.tensor(y_true), minifm.tensor(y_pred)), expected)
    same(metrics.f1_score(np.array(y_true), y_pred), expected)


# ---------------------------------------------------------------- fairlearn's rates
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_rates_equal_fairlearn(case):
    y_true, y_pred, _ = EDGE_CASES[case]
    for name in ("true_positive_rate", "false_positive_rate", "selection_rate"):
        same(getattr(metrics, name)(y_true, y_pred),
             getattr(fairlearn_metrics, name)(y_true, y_pred))


def test_rates_refuse_what_fairlearn_refuses():
    with pytest.raises(ValueError, match="two unique"):
        metrics.true_positive_rate([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="pos_label"):
        metrics.false_positive_rate([2, 3], [3, 3])
    assert metrics.true_positive_rate([2, 3], [3, 3], pos_label=3) == 1.0
    with pytest.raises(ValueError, match="Empty"):
        metrics.selection_rate([], [])


# ---------------------------------------------------------------- MetricFrame
def assert_frames_equal(mine, theirs, single):
    """Every summary of `mine` (plain dicts) equals `theirs` (pandas objects)."""
    if single:
        same(mine.overall, theirs.overall)
        for group, value in theirs.by_group.items():
            same(mine.by_group[group], value)
        assert list(mine.by_group) == list(theirs.by_group.index)
        same(mine.group_min(), theirs.group_min())
        same(mine.group_max(), theirs.group_max())
        for method in ("between_groups", "to_overall"):
            same(mine.difference(method=method), theirs.difference(method=method))
            same(mine.ratio(method=method), theirs.ratio(method=method))
        return
    for name in theirs.overall.index:
        same(mine.overall[name], theirs.overall[name])
        for group in theirs.by_group.index:
            same(mine.by_group[name][group], theirs.by_group[name][group])
        same(mine.group_min()[name], theirs.group_min()[name])
        same(mine.group_max()[name], theirs.group_max()[name])
        for method in ("between_groups", "to_overall"):
            same(mine.difference(method=method)[name], theirs.difference(method=method)[name])
            same(mine.ratio(method=method)[name], theirs.ratio(method=method)[name])


def _fns(package, accuracy):
    return {"acc": accuracy, "sel": package.selection_rate,
            "tpr": package.true_positive_rate, "fpr": package.false_positive_rate}


def run_both(y_true, y_pred, groups, single):
    """MetricFrame of each package with its own metric functions, compared."""
    mine = metrics.MetricFrame(
        metrics=metrics.true_positive_rate if single else _fns(metrics, metrics.accuracy_score),
        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    theirs = fairlearn_metrics.MetricFrame(
        metrics=fairlearn_metrics.true_positive_rate if single else _fns(fairlearn_metrics, skm.accuracy_score),
        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert_frames_equal(mine, theirs, single)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("single", [False, True])
def test_metric_frame_equals_fairlearn_on_random_labels(seed, single):
    run_both(*random_case(seed, n=40), single)


@pytest.mark.parametrize("single", [False, True])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_metric_frame_equals_fairlearn_on_edge_cases(case, single):
    run_both(*EDGE_CASES[case], single)


def test_metric_frame_nan_results_follow_pandas():
    """A metric that is NaN for a group (zero_division=nan) is skipped by min, max and
    differences; all-NaN gives NaN; a zero group max makes the ratio NaN (0/0)."""
    def precision(t, p):
        return skm.precision_score(t, p, zero_division=np.nan)

    def mine_precision(t, p):
        return metrics.precision_score(t, p, zero_division=np.nan)

    y_true, y_pred, groups = [1, 0, 1, 0, 1], [0, 0, 1, 0, 1], ["a", "a", "b", "c", "c"]
    mine = metrics.MetricFrame(metrics={"p": mine_precision, "s": metrics.selection_rate},
                               y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    theirs = fairlearn_metrics.MetricFrame(
        metrics={"p": precision, "s": fairlearn_metrics.selection_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert math.isnan(mine.by_group["p"]["a"])
    assert_frames_equal(mine, theirs, single=False)


def test_metric_frame_accepts_tensors():
    y_true, y_pred, groups = random_case(0, n=20)
    codes = np.unique(groups, return_inverse=True)[1]
    frame = metrics.MetricFrame(metrics=metrics.accuracy_score, y_true=minifm.tensor(y_true),
                                y_pred=minifm.tensor(y_pred),
                                sensitive_features=minifm.tensor(codes))
    for code, group in enumerate(np.unique(groups)):
        same(frame.by_group[code], np.mean(y_true[groups == group] == y_pred[groups == group]))


# ---------------------------------------------------------------- disparity metrics
@pytest.mark.parametrize("agg", ["worst_case", "mean"])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("case", [*EDGE_CASES, "random 0", "random 1", "random 2"])
def test_disparity_metrics_equal_fairlearn(case, method, agg):
    y_true, y_pred, groups = (random_case(int(case[-1])) if case.startswith("random")
                              else EDGE_CASES[case])
    kwargs = dict(sensitive_features=groups, method=method)
    for name in ("demographic_parity_difference", "demographic_parity_ratio"):
        same(getattr(metrics, name)(y_true, y_pred, **kwargs),
             getattr(fairlearn_metrics, name)(y_true, y_pred, **kwargs))
    for name in ("equalized_odds_difference", "equalized_odds_ratio"):
        same(getattr(metrics, name)(y_true, y_pred, agg=agg, **kwargs),
             getattr(fairlearn_metrics, name)(y_true, y_pred, agg=agg, **kwargs))
