"""Score one split of a run and write its files: the one path from probabilities to `eval/`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emoscope.core.runfolder import split_predictions
from emoscope.evaluate.bootstrap import bootstrap_ci
from emoscope.evaluate.metrics import (
    EvalResult,
    as_indicator_matrix,
    compute_metrics,
    format_table,
    save_eval,
    save_predictions,
)


def score_labelled(
    eval_dir: Path,
    split: str,
    texts: Sequence[str],
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray,
    label_names: Sequence[str],
    ids: Sequence[str] | None = None,
    n_resamples: int = 1000,
) -> EvalResult:
    """Metrics (with a bootstrap 95% CI of macro- and micro-F1 over examples), per-emotion table and
    predictions of `texts` with gold indicator rows `y`; every model and the lexical floor score here."""
    result: EvalResult = compute_metrics(y, probs, thresholds, label_names)
    predicted = (probs >= np.asarray(thresholds)).astype(np.int8)
    for metric in ("macro_f1", "micro_f1"):
        _, low, high = bootstrap_ci(y, predicted, metric=metric, n_resamples=n_resamples, seed=0)
        result.summary[f"{metric}_ci95_low"], result.summary[f"{metric}_ci95_high"] = float(low), float(high)
    save_eval(result, eval_dir, split)
    save_predictions(eval_dir / split_predictions(split), texts, y, probs, thresholds, label_names, ids=ids)
    return result


def score_split(
    eval_dir: Path,
    split: str,
    examples: Sequence,
    probs: np.ndarray,
    thresholds: np.ndarray,
    label_names: Sequence[str],
    title: str | None = None,
    n_resamples: int = 1000,
) -> str:
    """`score_labelled` for `examples` (objects with `.text`, `.labels`, `.id`); returns the terminal table."""
    y = as_indicator_matrix([e.labels for e in examples], split, len(label_names))
    texts, ids = [e.text for e in examples], [e.id for e in examples]
    result = score_labelled(eval_dir, split, texts, y, probs, thresholds, label_names, ids, n_resamples)
    return format_table(result, title=title or split)
