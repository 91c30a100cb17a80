"""Bootstrap CIs: point estimate equals sklearn, intervals behave, inputs are checked."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from emoscope.core.errors import UserError
from emoscope.evaluate.bootstrap import METRICS, bootstrap_ci


def noisy_predictions(n: int, n_labels: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with varied prevalence and predictions that flip about 10% of the decisions."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < np.linspace(0.03, 0.4, n_labels)).astype(int)
    pred = np.where(rng.random(y.shape) < 0.1, 1 - y, y)
    return y, pred


@pytest.mark.parametrize("metric", METRICS)
def test_point_estimate_matches_sklearn(metric):
    y, pred = noisy_predictions(300)
    average, name = metric.split("_")
    scorer = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[name]
    point, low, high = bootstrap_ci(y, pred, metric=metric, n_resamples=200)
    assert point == pytest.approx(scorer(y, pred, average=average, zero_division=0))
    assert low <= point <= high


def test_interval_narrows_with_more_data():
    widths = []
    for n in (200, 5000):
        _, low, high = bootstrap_ci(*noisy_predictions(n), n_resamples=300)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): 5x narrower in theory


def test_interval_widens_with_confidence_and_is_reproducible():
    y, pred = noisy_predictions(500)
    _, lo90, hi90 = bootstrap_ci(y, pred, confidence=0.9, n_resamples=400)
    _, lo99, hi99 = bootstrap_ci(y, pred, confidence=0.99, n_resamples=400)
    assert lo99 <= lo90 and hi90 <= hi99
    assert bootstrap_ci(y, pred, seed=3, n_resamples=50) == bootstrap_ci(y, pred, seed=3, n_resamples=50)
    # Blocking is a memory bound only: it must not change the result.
    blocked = bootstrap_ci(y, pred, seed=3, n_resamples=50, block=7)
    assert blocked == bootstrap_ci(y, pred, seed=3, n_resamples=50)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "accuracy"}, "unknown bootstrap metric 'accuracy' (choose one of macro_f1, micro_f1, "),
        ({"confidence": 95}, "confidence must lie strictly between 0 and 1, got 95"),
        ({"n_resamples": 1}, "n_resamples must be at least 2 and block at least 1, got 1 and 200"),
    ],
)
def test_bad_options(kwargs, message):
    y, pred = noisy_predictions(20)
    with pytest.raises(UserError) as info:
        bootstrap_ci(y, pred, **kwargs)
    assert str(info.value).startswith(message)


def test_bad_arrays():
    y, pred = noisy_predictions(20)
    with pytest.raises(UserError, match=r"^y_pred has shape \(20, 7\), expected \(20, 8\)"):
        bootstrap_ci(y, pred[:, :7])
    with pytest.raises(UserError, match="^y_pred must hold only 0 and 1"):
        bootstrap_ci(y, pred * 0.7)  # probabilities passed instead of decisions
