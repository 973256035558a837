"""minifm.metrics: evaluating a classifier, overall and across groups.

    classification.py  scikit-learn's accuracy_score, precision_score, recall_score,
                       f1_score (average=), confusion_matrix; fairlearn's selection_rate,
                       true_positive_rate, false_positive_rate
    metric_frame.py    fairlearn's MetricFrame: metrics per group of a sensitive feature
    fairness.py        demographic parity and equalized odds, as differences and ratios
    image.py           scikit-image's peak signal-to-noise ratio and structural similarity
                       (psnr, ssim), for super-resolution

NumPy only; scikit-learn, fairlearn and scikit-image are the oracles of the tests.
"""
from .classification import (
    accuracy_score, confusion_matrix, f1_score, false_positive_rate, precision_score,
    recall_score, selection_rate, true_positive_rate,
)
from .fairness import (
    demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
    equalized_odds_ratio,
)
from .image import psnr, ssim
from .metric_frame import MetricFrame

__all__ = ["accuracy_score", "confusion_matrix", "f1_score", "false_positive_rate",
           "precision_score", "recall_score", "selection_rate", "true_positive_rate",
           "MetricFrame", "demographic_parity_difference", "demographic_parity_ratio",
           "equalized_odds_difference", "equalized_odds_ratio", "psnr", "ssim"]
