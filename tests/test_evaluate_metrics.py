"""compute_metrics against numbers worked out by hand on a 4 x 3 example, and the eval/ files."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

from emoscope.core.errors import UserError
from emoscope.evaluate.metrics import (
    compute_metrics,
    confusion_counts,
    format_table,
    per_label_scores,
    save_eval,
    save_predictions,
)

NAMES = ["joy", "anger", "fear"]
# Worked example. With threshold 0.5 the predictions are
#   row 0: joy            (true joy, fear)
#   row 1: joy, anger     (true anger)
#   row 2: joy            (true joy, anger)
#   row 3: fear           (true fear)
Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
P = np.array([[0.9, 0.2, 0.4], [0.6, 0.7, 0.1], [0.8, 0.3, 0.2], [0.1, 0.4, 0.9]])


def test_hand_computed_summary():
    s = compute_metrics(Y, P, 0.5, NAMES).summary
    # joy TP2 FP1 FN0 -> P 2/3 R 1 F1 .8; anger TP1 FP0 FN1 -> P 1 R .5 F1 2/3; fear the same as anger.
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 2 / 3) / 3)
    assert s["macro_precision"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert s["macro_recall"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # micro: TP 4, FP 1, FN 2.
    assert s["micro_precision"] == pytest.approx(0.8)
    assert s["micro_recall"] == pytest.approx(4 / 6)
    assert s["micro_f1"] == pytest.approx(8 / 11)
    assert s["weighted_f1"] == pytest.approx(s["macro_f1"])  # every label has support 2
    # samples: F1 per row = 2|true & pred| / (|true| + |pred|) = 2/3, 2/3, 2/3, 1.
    assert s["samples_f1"] == pytest.approx(0.75)
    # AUC: joy and fear rank every positive above every negative; anger 3 of 4 pairs.
    assert s["macro_auc"] == pytest.approx((1 + 0.75 + 1) / 3)
    assert s["auc_labels_excluded"] == 0
    # micro AUC on the 12 flattened scores: 32.5 of 36 positive-negative pairs (one tie at 0.4 counts half).
    assert s["micro_auc"] == pytest.approx(32.5 / 36)
    # MCC per label = (TP*TN - FP*FN) / sqrt(...) = 2 / sqrt(12) for all three; micro TP4 TN5 FP1 FN2.
    assert s["macro_mcc"] == pytest.approx(2 / math.sqrt(12))
    assert s["micro_mcc"] == pytest.approx(18 / math.sqrt(5 * 6 * 6 * 7))
    assert s["subset_accuracy"] == pytest.approx(0.25)  # only row 3 matches exactly
    assert s["hamming_loss"] == pytest.approx(3 / 12)
    assert s["n_examples"] == 4
    assert s["label_cardinality"] == pytest.approx(1.5)
    assert s["predicted_cardinality"] == pytest.approx(1.25)


def test_per_label_rows_and_confusion():
    r = compute_metrics(Y, P, 0.5, NAMES)
    joy = r.per_label[0]
    assert joy == {
        "label": "joy",
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
        "threshold": 0.5,
        "auc": 1.0,
    }
    assert r.per_label[1]["auc"] == pytest.approx(0.75)
    assert r.confusion.shape == (3, 2, 2)
    assert r.confusion_rows()[0] == {"label": "joy", "tn": 1, "fp": 1, "fn": 0, "tp": 2}
    assert r.confusion_rows()[1] == {"label": "anger", "tn": 2, "fp": 0, "fn": 1, "tp": 1}


def test_per_label_thresholds_apply_by_column_with_greater_or_equal():
    # fear at exactly 0.4 now catches row 0 (prob 0.4 >= 0.4): TP 2, FP 1 (row 3 still), recall 1.
    r = compute_metrics(Y, P, [0.5, 0.5, 0.4], NAMES)
    fear = r.per_label[2]
    assert (fear["precision"], fear["recall"], fear["threshold"]) == (1.0, 1.0, 0.4)
    assert r.per_label[0]["f1"] == pytest.approx(0.8)  # other columns unchanged


def test_label_without_positives_is_left_out_of_macro_auc_and_scores_zero():
    y = Y.copy()
    y[:, 1] = 0
    r = compute_metrics(y, P, 0.5, NAMES)
    assert r.summary["auc_labels_excluded"] == 1
    assert math.isnan(r.per_label[1]["auc"])
    assert r.summary["macro_auc"] == pytest.approx(1.0)  # mean of joy and fear only
    assert r.per_label[1]["f1"] == 0.0 and r.per_label[1]["precision"] == 0.0  # zero_division=0


def test_save_eval_writes_json_and_csv(tmp_path):
    y = Y.copy()
    y[:, 1] = 0
    r = compute_metrics(y, P, 0.5, NAMES)
    metrics_path, csv_path = save_eval(r, tmp_path / "eval", "test")
    assert metrics_path.name == "test_metrics.json" and csv_path.name == "test_per_emotion.csv"
    summary = json.loads(metrics_path.read_text())
    assert summary["macro_f1"] == pytest.approx(r.summary["macro_f1"])
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "precision", "recall", "f1", "support", "threshold", "auc"]
    assert [row["label"] for row in rows] == NAMES
    assert rows[1]["auc"] == ""  # undefined AUC is an empty cell, not "nan"
    assert float(rows[0]["f1"]) == pytest.approx(0.8)


def test_save_predictions(tmp_path):
    path = save_predictions(
        tmp_path / "eval" / "test_predictions.jsonl",
        ["a", "b", "c", "d"],
        Y,
        P,
        0.5,
        NAMES,
        ids=["i0", "i1", "i2", "i3"],
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 4
    assert records[1] == {
        "id": "i1",
        "text": "b",
        "labels": ["anger"],
        "predicted": ["joy", "anger"],
        "probs": [0.6, 0.7, 0.1],
    }


def test_format_table_sorts_emotions_by_f1():
    text = format_table(compute_metrics(Y, P, 0.5, NAMES), "dev")
    lines = text.splitlines()
    assert lines[0] == "dev"
    assert "macro" in lines[1] and "0.7111" in text
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0] in NAMES]
    assert rows[0] == "joy"  # F1 0.8 first, then the two at 2/3


@pytest.mark.parametrize(
    ("y", "p", "t", "names", "message"),
    [
        (Y[:, 0], P, 0.5, NAMES, "y_true must be a non-empty 2-D array"),
        (Y * 2, P, 0.5, NAMES, "y_true must hold only 0 and 1"),
        (Y, P[:, :2], 0.5, NAMES, "probs has shape (4, 2), expected (4, 3)"),
        (Y, P + 0.5, 0.5, NAMES, "probs must be probabilities in [0, 1]"),
        (Y, np.where(P > 0.8, np.nan, P), 0.5, NAMES, "probs must be probabilities in [0, 1]"),
        (Y, P, 1.5, NAMES, "thresholds must lie in [0, 1]"),
        (Y, P, [0.5, 0.5], NAMES, "thresholds must be one float or 3 floats"),
        (Y, P, 0.5, NAMES[:2], "got 2 label names for 3 label columns"),
        (Y, P, 0.5, ["a", "a", "b"], "label names must be distinct"),
    ],
)
def test_bad_inputs_raise_user_error(y, p, t, names, message):
    with pytest.raises(UserError, match="^" + re.escape(message)) as info:
        compute_metrics(y, p, t, names)
    assert "\n" not in str(info.value)


def test_bad_split_name(tmp_path):
    with pytest.raises(UserError, match="split name"):
        save_eval(compute_metrics(Y, P, 0.5, NAMES), tmp_path, "../test")


def test_per_label_scores_from_counts_agree_with_the_indicator_matrices():
    pred = (P >= 0.5).astype(int)
    counts = confusion_counts(np.asarray(Y), pred)
    r = compute_metrics(Y, P, 0.5, NAMES)
    scores = per_label_scores(counts)
    for j, row in enumerate(r.per_label):
        assert [scores[k][j] for k in ("precision", "recall", "f1", "support")] == pytest.approx(
            [row["precision"], row["recall"], row["f1"], row["support"]]
        )
    # a label never predicted and never present: 0 when scoring, NaN when shown as undefined
    empty = per_label_scores([[5, 0, 0, 0]], zero_division=math.nan)
    assert math.isnan(empty["precision"][0]) and math.isnan(empty["f1"][0]) and empty["support"][0] == 0
    assert per_label_scores([[5, 0, 0, 0]])["f1"][0] == 0
