"""Ensembles from saved predictions: the mean probability of several runs, optionally blended with the
TF-IDF baseline, with the blend weight and the thresholds chosen on dev and the test split scored once.

Every member is a folder holding `labels.json` and `eval/{dev,test}_predictions.jsonl` (a run folder, or a
`emoscope baseline` folder); no model is loaded, so combining finished runs takes seconds. `ensemble.json`
names the members relative to the ensemble folder, so that `Predictor` finds them after the folders move
together.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    ENSEMBLE_INFO,
    EVAL,
    LABELS,
    RUN_INFO,
    THRESHOLDS,
    load_thresholds,
    read_labels,
    save_thresholds,
    split_predictions,
    write_labels,
)
from emoscope.core.vocab import TUNED_THRESHOLD_STRATEGY
from emoscope.data import Example
from emoscope.evaluate.metrics import Predictions, compute_metrics, read_predictions
from emoscope.evaluate.split import score_split
from emoscope.evaluate.thresholds import choose_thresholds

BLEND_WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 0.55, 0.05))  # the baseline's share, tried on dev


def _need(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UserError(f"{folder} cannot join an ensemble: {name} is missing")
    return path


def member_labels(folder: Path) -> list[str]:
    _need(folder, LABELS)
    return read_labels(folder)["labels"]


def label_order(folder: Path, own: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Where each of `labels` sits among a member's own labels (its output columns)."""
    if sorted(own) != sorted(labels):
        raise UserError(f"{folder} predicts other labels than the first member ({len(own)} vs {len(labels)})")
    return [list(own).index(name) for name in labels]


def read_member(folder: Path, split: str, labels: Sequence[str]) -> Predictions:
    """The member's predictions on `split`, with its columns in the order of `labels`."""
    own = member_labels(folder)
    order = label_order(folder, own, labels)
    preds = read_predictions(_need(folder, f"{EVAL}/{split_predictions(split)}"), own)
    if list(own) != list(labels):
        preds = Predictions(preds.ids, preds.texts, preds.truth[:, order], preds.probs[:, order])
    return preds


def _aligned(members: Sequence[Path], split: str, labels: Sequence[str]) -> tuple[Predictions, np.ndarray]:
    """The first member's predictions and the members' probabilities stacked [members, n, labels]."""
    first = None
    stacked = []
    for folder in members:
        preds = read_member(folder, split, labels)
        if first is None:
            first = preds
        elif preds.ids != first.ids or not np.array_equal(preds.truth, first.truth):
            raise UserError(f"{folder}: its {split} predictions are not for the same examples as {members[0]}")
        stacked.append(preds.probs)
    return first, np.stack(stacked)


def _seen_from(out: Path, member: Path) -> str:
    """The member's path relative to the ensemble folder; absolute only where none exists (another drive)."""
    try:
        return os.path.relpath(member.resolve(), out.resolve())
    except ValueError:
        return str(member.resolve())


def member_folder(ensemble_dir: Path, stored: str) -> Path:
    """A member named in `ensemble.json` (relative to the ensemble folder, or absolute), checked to exist."""
    path = Path(ensemble_dir) / stored
    if not path.is_dir():
        raise UserError(
            f"ensemble member {stored} of {ensemble_dir} not found (looked for {path}): move the "
            "ensemble folder together with its members, or rebuild it with emoscope ensemble"
        )
    return path


def runs_behind(folder: Path) -> list[Path]:
    """The run folders a run, ensemble or crossfit folder stands for: itself, or its members."""
    folder = Path(folder)
    if (folder / ENSEMBLE_INFO).is_file():
        return [member_folder(folder, stored) for stored in json.loads((folder / ENSEMBLE_INFO).read_text())["runs"]]
    if (folder / RUN_INFO).is_file():
        return [folder]
    raise UserError(f"{folder} is not a run, ensemble or crossfit folder")


def training_wall_seconds_behind(folders: Sequence[Path]) -> float | None:
    """`training_wall_seconds` of every run behind `folders` (a run shared by two of them counts once);
    None when a member folder is gone, since the time is then unknown."""
    try:
        runs = [run for folder in folders for run in runs_behind(folder)]
    except UserError:
        return None
    return training_wall_seconds(runs)


def training_wall_seconds(runs: Sequence[Path]) -> float | None:
    """The members' training wall time, a span that overlapped another's (teachers trained side by side,
    `crossfit --jobs`) counted once; None when a member does not record it. A run's span is its training
    seconds up to its `finished` time (which its final scoring follows), so runs trained one after another add up."""
    spans = []
    for run in runs:
        info = json.loads((run / RUN_INFO).read_text()) if (run / RUN_INFO).is_file() else {}
        if info.get("wall_seconds") is None or not info.get("finished"):
            return None
        end = datetime.datetime.fromisoformat(info["finished"]).timestamp()
        spans.append((end - info["wall_seconds"], end))
    total, reach = 0.0, -np.inf
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return round(total, 1)


def members_strategy(runs: Sequence[Path]) -> str:
    """The threshold strategy the runs were tuned with, when they share one that is tuned on dev; else the
    project's tuned default (a fixed value belongs to its run; runs tuned differently, or without thresholds,
    leave no single choice)."""
    strategies = {load_thresholds(run / THRESHOLDS).strategy if (run / THRESHOLDS).is_file() else None for run in runs}
    shared = len(strategies) == 1 and not strategies & {"fixed", None}
    return strategies.pop() if shared else TUNED_THRESHOLD_STRATEGY


def build_ensemble(
    runs: Sequence[str | Path],
    out_dir: str | Path,
    baseline: str | Path | None = None,
    threshold_strategy: str | None = None,
) -> dict:
    """Average the runs' probabilities, blend in the baseline at the weight best on dev, choose thresholds on
    dev, and write `out_dir` like a run's evaluation (eval/, thresholds.json, labels.json, ensemble.json).
    Thresholds are tuned with `threshold_strategy`; by default the members' own, when they share a tuned one."""
    if not runs:
        raise UserError("an ensemble needs at least one run folder")
    runs = [Path(r) for r in runs]
    if threshold_strategy is None:
        threshold_strategy = members_strategy(runs)
    labels = member_labels(runs[0])
    dev, dev_runs = _aligned(runs, "dev", labels)
    test, test_runs = _aligned(runs, "test", labels)
    dev_probs, test_probs = dev_runs.mean(0), test_runs.mean(0)
    scan: dict[float, float] = {}
    weight = 0.0
    if baseline is not None:
        dev_base, dev_lex = _aligned([Path(baseline)], "dev", labels)
        test_base, test_lex = _aligned([Path(baseline)], "test", labels)
        if dev_base.ids != dev.ids or test_base.ids != test.ids:
            raise UserError(f"{baseline}: its predictions are not for the same examples as {runs[0]}")
        for w in BLEND_WEIGHTS:
            blended = (1 - w) * dev_probs + w * dev_lex[0]
            choice = choose_thresholds(threshold_strategy, dev.truth, blended, label_names=labels)
            scan[w] = compute_metrics(dev.truth, blended, choice.values, labels).summary["macro_f1"]
        weight = max(scan, key=lambda w: (scan[w], -w))  # ties go to the smaller share of the baseline
        dev_probs = (1 - weight) * dev_probs + weight * dev_lex[0]
        test_probs = (1 - weight) * test_probs + weight * test_lex[0]
    choice = choose_thresholds(threshold_strategy, dev.truth, dev_probs, label_names=labels)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_thresholds(out / THRESHOLDS, choice, labels)
    first = read_labels(runs[0])
    write_labels(out, first["taxonomy"], first["labels"], first.get("sentiment_of"), first.get("ekman_of"))
    for split, preds, probs in (("dev", dev, dev_probs), ("test", test, test_probs)):
        examples = [
            Example(text, tuple(int(j) for j in np.flatnonzero(y)), i)
            for i, text, y in zip(preds.ids, preds.texts, preds.truth, strict=True)
        ]
        table = score_split(
            out / EVAL,
            split,
            examples,
            probs,
            choice.values,
            labels,
            title=f"{split}: ensemble of {len(runs)} run(s)"
            + (f" + baseline at weight {weight:.2f}" if baseline is not None else ""),
        )
    info = {
        "runs": [_seen_from(out, r) for r in runs],
        "baseline": _seen_from(out, Path(baseline)) if baseline else None,
        "train_wall_seconds": training_wall_seconds(runs),
        "baseline_weight": weight,
        "dev_macro_f1_by_baseline_weight": scan,
        "threshold_strategy": threshold_strategy,
    }
    (out / ENSEMBLE_INFO).write_text(json.dumps(info, indent=1) + "\n")
    print(table)
    return info
