"""Multi-label metrics on one split, and the `eval/` files of a run folder that hold them.

Every score comes from scikit-learn with ``zero_division=0``: a label that is never predicted (or never
present) scores 0 precision / recall / F1 instead of raising or warning, so a model that ignores a rare
emotion is penalised in the macro averages rather than silently skipped.

A label is predicted when ``prob >= threshold``; `emoscope.evaluate.thresholds` tunes with the same rule.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    hamming_loss,
    matthews_corrcoef,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from emoscope.core.errors import DataError, UserError
from emoscope.core.runfolder import split_metrics, split_per_emotion

PER_LABEL_COLUMNS = ("label", "precision", "recall", "f1", "support", "threshold", "auc")


@dataclass(frozen=True)
class EvalResult:
    """Scores of one split: ``summary`` (name -> number), ``per_label`` rows (`PER_LABEL_COLUMNS`) and
    ``confusion`` [L, 2, 2] as sklearn's multilabel_confusion_matrix gives it (``[[tn, fp], [fn, tp]]``).

    Undefined numbers (AUC of a label with one class only) are NaN here and null / empty in the files.
    """

    summary: dict[str, float | int]
    per_label: list[dict[str, float | int | str]]
    confusion: np.ndarray

    def confusion_rows(self) -> list[dict[str, int | str]]:
        """Per-label 2x2 counts as ``label,tn,fp,fn,tp`` rows, the layout of `analysis/confusion_2x2.csv`."""
        return [
            {"label": row["label"], "tn": int(c[0, 0]), "fp": int(c[0, 1]), "fn": int(c[1, 0]), "tp": int(c[1, 1])}
            for row, c in zip(self.per_label, self.confusion, strict=True)
        ]


def as_indicator_matrix(y, name: str = "y_true", n_labels: int | None = None) -> np.ndarray:
    """A {0,1} int8 matrix [N, L] from a 2-D array, or (given ``n_labels``) from label-index tuples.

    Only a numpy array is read as an indicator matrix; any other sequence with ``n_labels`` given is one
    tuple of label indices per example (the shape of `Example.labels`), so the two cannot be confused.
    """
    if n_labels is not None and not isinstance(y, np.ndarray):
        rows = [tuple(r) for r in y]
        flat = [i for r in rows for i in r]
        if not all(isinstance(i, (int, np.integer)) and 0 <= i < n_labels for i in flat):
            raise UserError(f"{name} holds a label index outside 0..{n_labels - 1}")
        out = np.zeros((len(rows), n_labels), dtype=np.int8)
        out[np.repeat(np.arange(len(rows)), [len(r) for r in rows]), np.asarray(flat, dtype=np.intp)] = 1
        y = out
    arr = np.asarray(y)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(f"{name} must be a non-empty 2-D array [examples, labels], got shape {arr.shape}")
    if n_labels is not None and arr.shape[1] != n_labels:
        raise UserError(f"{name} has {arr.shape[1]} label columns, expected {n_labels}")
    if not np.isin(arr, (0, 1)).all():
        raise UserError(f"{name} must hold only 0 and 1")
    return arr.astype(np.int8)


def as_prob_matrix(probs, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Float64 probabilities of the given shape, all finite and in [0, 1] (float64 so that comparisons
    with thresholds agree bit for bit between tuning and evaluation)."""
    arr = np.asarray(probs, dtype=np.float64)
    if arr.shape != shape:
        raise UserError(f"{name} has shape {arr.shape}, expected {shape} to match the labels")
    if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
        raise UserError(
            f"{name} must be probabilities in [0, 1] (found values from {np.nanmin(arr):.4g} "
            f"to {np.nanmax(arr):.4g}{', and NaN/inf' if not np.isfinite(arr).all() else ''})"
        )
    return arr


def as_threshold_vector(thresholds, n_labels: int) -> np.ndarray:
    """A float64 vector [L] from one float or one per label, each in [0, 1]."""
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n_labels, float(arr))
    if arr.shape != (n_labels,):
        raise UserError(f"thresholds must be one float or {n_labels} floats, got shape {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
        raise UserError(f"thresholds must lie in [0, 1], got values from {arr.min():.4g} to {arr.max():.4g}")
    return arr


def as_label_names(label_names: Sequence[str], n_labels: int) -> list[str]:
    """The label names as a list, one distinct name per label column."""
    names = [str(n) for n in label_names]
    if len(names) != n_labels:
        raise UserError(f"got {len(names)} label names for {n_labels} label columns")
    if len(set(names)) != len(names):
        raise UserError("label names must be distinct")
    return names


def confusion_counts(y_true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """[L, 4]: tn, fp, fn, tp of each label against the rest, from {0,1} matrices [N, L]."""
    return multilabel_confusion_matrix(y_true, predicted).reshape(-1, 4)


def per_label_scores(counts, *, zero_division: float = 0.0) -> dict[str, np.ndarray]:
    """Per-label precision, recall, F1 and support from `confusion_counts` rows (tn, fp, fn, tp).

    The one place these are derived: evaluation, the analysis figures and the report all call it. A ratio
    with a zero denominator (never predicted, never present) is `zero_division`: 0 for scoring, NaN to show
    it as undefined.
    """
    tn, fp, fn, tp = np.asarray(counts, dtype=np.float64).reshape(-1, 4).T

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.full_like(num, zero_division), where=den > 0)

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "support": (tp + fn).astype(np.int64),
    }


def compute_metrics(y_true, probs, thresholds, label_names: Sequence[str]) -> EvalResult:
    """Score probabilities [N, L] against {0,1} labels [N, L] after thresholding (``prob >= threshold``).

    Macro ROC-AUC averages only labels with both classes in ``y_true`` (AUC is undefined otherwise);
    ``summary["auc_labels_excluded"]`` says how many were left out. MCC is given micro (all label
    decisions flattened) and macro (mean over labels; sklearn returns 0 for a constant label).
    """
    y = as_indicator_matrix(y_true, "y_true")
    p = as_prob_matrix(probs, "probs", y.shape)
    n, n_labels = y.shape
    t = as_threshold_vector(thresholds, n_labels)
    names = as_label_names(label_names, n_labels)
    pred = (p >= t).astype(np.int8)

    summary: dict[str, float | int] = {}
    for avg in ("macro", "micro", "weighted", "samples"):
        prec, rec, f1, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        summary.update({f"{avg}_f1": float(f1), f"{avg}_precision": float(prec), f"{avg}_recall": float(rec)})

    support = y.sum(axis=0)
    auc = np.array([roc_auc_score(y[:, j], p[:, j]) if 0 < support[j] < n else math.nan for j in range(n_labels)])
    scored = ~np.isnan(auc)
    summary["macro_auc"] = float(auc[scored].mean()) if scored.any() else math.nan
    summary["auc_labels_excluded"] = int((~scored).sum())
    summary["micro_auc"] = float(roc_auc_score(y.ravel(), p.ravel())) if 0 < y.sum() < y.size else math.nan
    summary["micro_mcc"] = float(matthews_corrcoef(y.ravel(), pred.ravel()))
    with warnings.catch_warnings():
        # A label absent from both y and pred has MCC 0 by sklearn's convention; its warning is noise here.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        mcc = [matthews_corrcoef(y[:, j], pred[:, j]) for j in range(n_labels)]
    summary["macro_mcc"] = float(np.mean(mcc))
    summary["subset_accuracy"] = float(accuracy_score(y, pred))
    summary["hamming_loss"] = float(hamming_loss(y, pred))
    summary["n_examples"] = int(n)
    summary["n_labels"] = int(n_labels)
    summary["label_cardinality"] = float(y.sum(axis=1).mean())
    summary["predicted_cardinality"] = float(pred.sum(axis=1).mean())

    counts = confusion_counts(y, pred)
    scores = per_label_scores(counts)
    per_label = [
        {
            "label": names[j],
            "precision": float(scores["precision"][j]),
            "recall": float(scores["recall"][j]),
            "f1": float(scores["f1"][j]),
            "support": int(scores["support"][j]),
            "threshold": float(t[j]),
            "auc": float(auc[j]),
        }
        for j in range(n_labels)
    ]
    return EvalResult(summary=summary, per_label=per_label, confusion=counts.reshape(-1, 2, 2))


def _check_split(split: str) -> None:
    if not split or not split.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"split name must be letters, digits, '-' or '_', got {split!r}")


def _json_number(value: float | int) -> float | int | None:
    """NaN is not JSON: undefined numbers are written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def save_eval(result: EvalResult, eval_dir: str | Path, split: str) -> tuple[Path, Path]:
    """Write ``<split>_metrics.json`` (the summary) and ``<split>_per_emotion.csv`` into ``eval_dir``."""
    _check_split(split)
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = eval_dir / split_metrics(split)
    summary = {k: _json_number(v) for k, v in result.summary.items()}
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n")
    csv_path = eval_dir / split_per_emotion(split)
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PER_LABEL_COLUMNS)
        writer.writeheader()
        for row in result.per_label:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return metrics_path, csv_path


def save_predictions(
    path: str | Path,
    texts: Sequence[str],
    y_true,
    probs,
    thresholds,
    label_names: Sequence[str],
    ids: Sequence[str] | None = None,
) -> Path:
    """Write ``<split>_predictions.jsonl``: ``{"id", "text", "labels", "predicted", "probs"}`` per example.

    ``labels`` are the human labels and ``predicted`` those over threshold, both as names, so mistakes can
    be read without the thresholds; ids default to the row index when the data has none.
    """
    y = as_indicator_matrix(y_true, "y_true")
    p = as_prob_matrix(probs, "probs", y.shape)
    t = as_threshold_vector(thresholds, y.shape[1])
    names = as_label_names(label_names, y.shape[1])
    if len(texts) != len(y) or (ids is not None and len(ids) != len(y)):
        raise UserError(
            f"got {len(texts)} texts and {len(ids) if ids is not None else 'no'} ids for {len(y)} rows of labels"
        )
    ids = [str(i) for i in range(len(y))] if ids is None else ids
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(len(y)):
            record = {
                "id": ids[i],
                "text": texts[i],
                "labels": [names[j] for j in np.flatnonzero(y[i])],
                "predicted": [names[j] for j in np.flatnonzero(p[i] >= t)],
                "probs": p[i].tolist(),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def format_table(result: EvalResult, title: str = "") -> str:
    """Plain-text report for the terminal: summary block, then one row per emotion, best F1 first."""
    s = result.summary

    def num(v: float | int) -> str:
        return "n/a" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}"

    lines = [title] if title else []
    lines.append(f"{'':<12}{'macro':>9}{'micro':>9}{'weighted':>9}{'samples':>9}")
    for shown, key in (("F1", "f1"), ("precision", "precision"), ("recall", "recall")):
        lines.append(
            f"{shown:<12}" + "".join(f"{num(s[f'{a}_{key}']):>9}" for a in ("macro", "micro", "weighted", "samples"))
        )
    lines.append(
        f"{'ROC-AUC':<12}{num(s['macro_auc']):>9}{num(s['micro_auc']):>9}"
        + (
            f"   ({s['auc_labels_excluded']} label(s) with one class left out of macro)"
            if s["auc_labels_excluded"]
            else ""
        )
    )
    lines.append(f"{'MCC':<12}{num(s['macro_mcc']):>9}{num(s['micro_mcc']):>9}")
    lines.append(
        f"subset accuracy {num(s['subset_accuracy'])}   Hamming loss {num(s['hamming_loss'])}   "
        f"examples {s['n_examples']}   labels/example {s['label_cardinality']:.3f} true, "
        f"{s['predicted_cardinality']:.3f} predicted"
    )
    lines.append("")
    width = max(len("emotion"), *(len(str(r["label"])) for r in result.per_label))
    lines.append(f"{'emotion':<{width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'AUC':>6}  {'thr':>5}  support")
    for r in sorted(result.per_label, key=lambda r: r["f1"], reverse=True):
        auc = "n/a" if math.isnan(r["auc"]) else f"{r['auc']:.3f}"
        lines.append(
            f"{r['label']:<{width}}  {r['precision']:>6.3f}  {r['recall']:>6.3f}  {r['f1']:>6.3f}  "
            f"{auc:>6}  {r['threshold']:>5.2f}  {r['support']:>7d}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Predictions:
    ids: list[str]
    texts: list[str]
    truth: np.ndarray  # [n, n_labels] bool, the human labels
    probs: np.ndarray  # [n, n_labels] float


def read_predictions(path: str | Path, labels: Sequence[str]) -> Predictions:
    """`{"id", "text", "labels": [names], "probs": [one per label]}` a line; a bad line is a DataError."""
    index = {name: i for i, name in enumerate(labels)}
    ids, texts, truth, probs = [], [], [], []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                p = [float(v) for v in row["probs"]]
                names = list(row["labels"])
                ids.append(str(row["id"]))
                texts.append(str(row["text"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(path, n, f"not a prediction record ({exc})") from exc
            if len(p) != len(labels):
                raise DataError(path, n, f"{len(p)} probabilities for {len(labels)} labels (labels.json)")
            unknown = [x for x in names if x not in index]
            if unknown:
                raise DataError(path, n, f"unknown label(s) {', '.join(map(str, unknown))}")
            y = np.zeros(len(labels), dtype=bool)
            y[[index[x] for x in names]] = True
            truth.append(y)
            probs.append(p)
    if not ids:
        raise DataError(path, None, "no predictions")
    return Predictions(ids, texts, np.array(truth), np.array(probs, dtype=float))
