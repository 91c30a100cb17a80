"""Decision thresholds: fixed, one global value tuned on dev, or one per emotion tuned on dev (directly, or
bagged over bootstrap resamples of dev for a steadier value).

The tuning functions take only development-set arrays, named ``y_dev`` / ``p_dev``: thresholds chosen on
the test set would inflate test scores, so every caller has to spell out that it passes dev data.
Tuning searches the grid 0.01, 0.02, ..., 0.99 with the rule ``prob >= threshold`` used by
`compute_metrics`, so a tuned threshold scores on dev exactly what the search saw (a bagged one is a median
of such values).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from emoscope.core.errors import UserError
from emoscope.core.runfolder import ThresholdChoice
from emoscope.core.vocab import THRESHOLD_STRATEGIES
from emoscope.evaluate.bootstrap import resample_counts
from emoscope.evaluate.metrics import as_indicator_matrix, as_label_names, as_prob_matrix, as_threshold_vector

GRID = np.round(np.arange(1, 100) / 100, 2)


def fixed(value: float, n_labels: int) -> np.ndarray:
    """The same untuned threshold for every label."""
    if n_labels < 1:
        raise UserError(f"n_labels must be at least 1, got {n_labels}")
    return as_threshold_vector(value, n_labels)


def _dev_f1_grids(y_dev, p_dev, counts: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Dev F1 of every label at every grid threshold, [L, len(GRID)], plus the positives per label: once for dev
    as it is, or with `counts` (bootstrap draw counts [R, n] per dev text) once for each resample in turn.

    Each probability is binned by how many grid thresholds it reaches (once, whatever the resamples); per-label
    histograms of those bins summed from the top give TP and FP at every threshold at once, in O(N * L), with no
    loop over labels.
    """
    y = as_indicator_matrix(y_dev, "y_dev")
    p = as_prob_matrix(p_dev, "p_dev", y.shape)
    n_labels, n_bins = y.shape[1], len(GRID) + 1
    reached = np.searchsorted(GRID, p, side="right") + n_bins * np.arange(n_labels)  # predicted iff bin > g
    for weights in [None] if counts is None else counts:
        w = None if weights is None else np.broadcast_to(weights[:, None], y.shape)
        pos, neg = (
            np.bincount(reached[rows], None if w is None else w[rows], n_labels * n_bins).reshape(n_labels, n_bins)
            for rows in (y == 1, y == 0)
        )
        tp = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1][:, 1:]
        fp = np.cumsum(neg[:, ::-1], axis=1)[:, ::-1][:, 1:]
        n_pos = pos.sum(axis=1, keepdims=True)
        denom = tp + fp + n_pos  # 2TP + FP + FN
        yield np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0), n_pos[:, 0]  # zero_division=0


def _dev_f1_grid(y_dev, p_dev) -> tuple[np.ndarray, np.ndarray]:
    """`_dev_f1_grids` on dev as it is."""
    return next(_dev_f1_grids(y_dev, p_dev))


def _best_global(f1: np.ndarray) -> float:
    """The grid value with the best macro-F1 over labels (the lowest on ties)."""
    return GRID[int(np.argmax(f1.mean(axis=0)))]


def tune_global(y_dev, p_dev) -> np.ndarray:
    """One threshold for all labels, the grid value with the best dev macro-F1 (the lowest on ties)."""
    f1, _ = _dev_f1_grid(y_dev, p_dev)
    return np.full(f1.shape[0], _best_global(f1))


def tune_per_label(y_dev, p_dev, label_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Each label's grid threshold with the best dev F1 for that label (the lowest on ties).

    A label without dev positives has F1 0 at every threshold, so it gets the global tuned value instead;
    the returned notes name those labels. Per-label F1 is at least the global one on dev, label by label.
    """
    f1, n_pos = _dev_f1_grid(y_dev, p_dev)
    names = [str(j) for j in range(len(f1))] if label_names is None else as_label_names(label_names, len(f1))
    values = _best_per_label(f1, n_pos)
    empty = n_pos == 0
    notes = []
    if empty.any():
        notes.append(
            f"no dev positives for {', '.join(n for n, e in zip(names, empty, strict=True) if e)}: "
            f"they get the global tuned threshold {_best_global(f1):.2f}"
        )
    return values, notes


def _best_per_label(f1: np.ndarray, n_pos: np.ndarray) -> np.ndarray:
    """Each label's grid value with the best F1 (the lowest on ties); the best global value where a label
    has no positives."""
    values = GRID[np.argmax(f1, axis=1)]
    values[n_pos == 0] = _best_global(f1)
    return values


def tune_per_label_bagged(
    y_dev, p_dev, label_names: Sequence[str] | None = None, resamples: int = 50, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Each label's threshold as the median, over `resamples` bootstrap resamples of the dev texts, of that
    resample's best threshold (`tune_per_label`). A rare emotion's best dev threshold rests on a dozen positives
    and jumps with each of them; the median moves less, and carries over to unseen text a little better
    (docs/tried.md). Labels without dev positives get the global tuned threshold, as in `tune_per_label`."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise UserError(f"resamples must be a whole number of at least 1, got {resamples!r}")
    y = as_indicator_matrix(y_dev, "y_dev")
    p = as_prob_matrix(p_dev, "p_dev", y.shape)
    direct, notes = tune_per_label(y, p, label_names)
    grids = _dev_f1_grids(y, p, resample_counts(len(y), resamples, seed))
    values = np.median([_best_per_label(f1, n_pos) for f1, n_pos in grids], axis=0)
    empty = y.sum(axis=0) == 0
    values[empty] = direct[empty]
    return values, notes


def choose_thresholds(
    strategy: str, y_dev=None, p_dev=None, fixed_value: float = 0.5, label_names: Sequence[str] | None = None
) -> ThresholdChoice:
    """Thresholds by strategy name: "fixed" (``fixed_value``; needs ``p_dev`` or ``label_names`` only for
    the label count), "global", "per_emotion" or "per_emotion_bagged" (tuned on ``y_dev`` / ``p_dev``, the dev
    split)."""
    if strategy not in THRESHOLD_STRATEGIES:
        raise UserError(f"unknown threshold strategy {strategy!r} (choose one of {', '.join(THRESHOLD_STRATEGIES)})")
    if strategy == "fixed":
        if label_names is None and p_dev is None:
            raise UserError("the fixed strategy needs label_names or p_dev to know the number of labels")
        n_labels = len(label_names) if label_names is not None else np.shape(p_dev)[-1]
        return ThresholdChoice("fixed", None, fixed(fixed_value, n_labels))
    if y_dev is None or p_dev is None:
        raise UserError(f"the {strategy} strategy tunes on dev: pass y_dev and p_dev")
    if strategy == "global":
        return ThresholdChoice("global", "dev", tune_global(y_dev, p_dev))
    tune = tune_per_label_bagged if strategy == "per_emotion_bagged" else tune_per_label
    values, notes = tune(y_dev, p_dev, label_names)
    return ThresholdChoice(strategy, "dev", values, tuple(notes))
