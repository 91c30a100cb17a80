"""Test-set numbers behind the error-analysis figures, from `eval/test_predictions.jsonl` and the thresholds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from emoscope.evaluate.metrics import Predictions


def decide(probs: np.ndarray, labels: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    """Predicted label matrix: probability at or above the label's threshold (0.5 when none is given)."""
    return probs >= np.array([thresholds.get(name, 0.5) for name in labels])


def misclassification(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """M[i, j]: share of the examples truly labelled i for which j is predicted.

    The diagonal is label i's recall. Off the diagonal, j counts only when j is not one of the example's
    own human labels, so co-labelled pairs are not counted as confusions. Rows are normalised by the
    number of examples with true label i (a row need not sum to 1: an example may get 0 or many labels).
    """
    t, p = truth.astype(float), predicted.astype(float)
    counts = t.T @ (p * (1 - t))
    np.fill_diagonal(counts, (t * p).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / t.sum(0)[:, None]


def confident_mistakes(
    preds: Predictions, predicted: np.ndarray, labels: Sequence[str], per_kind: int = 5
) -> list[dict]:
    """Per label, the false positives with the highest probability and the false negatives with the lowest."""
    rows = []
    for j, name in enumerate(labels):
        for kind, wrong, order in (
            ("false_positive", predicted[:, j] & ~preds.truth[:, j], -1),
            ("false_negative", ~predicted[:, j] & preds.truth[:, j], 1),
        ):
            idx = np.flatnonzero(wrong)
            idx = idx[np.argsort(order * preds.probs[idx, j], kind="stable")][:per_kind]
            rows += [
                {
                    "label": name,
                    "kind": kind,
                    "prob": float(preds.probs[i, j]),
                    "id": preds.ids[i],
                    "text": preds.texts[i],
                    "true_labels": ";".join(labels[k] for k in np.flatnonzero(preds.truth[i])),
                    "predicted_labels": ";".join(labels[k] for k in np.flatnonzero(predicted[i])),
                }
                for i in idx
            ]
    return rows


def column_correlation(values: np.ndarray) -> np.ndarray:
    """Pearson correlation between columns; NaN where a column is constant (a label absent from test)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(values, rowvar=False)


def label_prob_correlation(truth: np.ndarray, probs: np.ndarray) -> list[float]:
    """Per label, the correlation of the predicted probability with the 0/1 human label (point-biserial)."""
    out = []
    for j in range(truth.shape[1]):
        y, p = truth[:, j].astype(float), probs[:, j]
        out.append(float(np.corrcoef(y, p)[0, 1]) if np.ptp(y) > 0 and np.ptp(p) > 0 else math.nan)
    return out
