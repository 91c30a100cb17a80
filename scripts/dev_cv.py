"""How well do thresholds tuned on dev carry over to unseen texts? Asked of dev alone, never of test.

    python scripts/dev_cv.py RUN_DIR [--repeats 20]

Splits dev in random halves, tunes thresholds on one half with each strategy, scores macro-F1 on the other,
both ways, `--repeats` times; prints the mean (and its standard error) per strategy. Strategies: the three
tuned ones of `emoscope.evaluate.thresholds` (global, per_emotion, per_emotion_bagged) and candidates that were
not kept (docs/tried.md): per-emotion values shrunk towards the global one by dev support,
per-emotion values chosen on an F1 curve smoothed over neighbouring grid points, and a decision that never
leaves a text without a label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from emoscope.core.runfolder import eval_file, read_labels, split_predictions
from emoscope.evaluate.metrics import read_predictions
from emoscope.evaluate.thresholds import GRID, tune_global, tune_per_label, tune_per_label_bagged
from emoscope.evaluate.thresholds import _dev_f1_grid as dev_f1_grid  # F1 of every label at every grid value


def per_emotion(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return tune_per_label(y, p)[0]


def shrunk(y: np.ndarray, p: np.ndarray, k: float) -> np.ndarray:
    per = per_emotion(y, p)
    weight = y.sum(0) / (y.sum(0) + k)
    return weight * per + (1 - weight) * tune_global(y, p)


def smoothed(y: np.ndarray, p: np.ndarray, half_width: int) -> np.ndarray:
    f1, _ = dev_f1_grid(y, p)
    kernel = np.ones(2 * half_width + 1) / (2 * half_width + 1)
    curves = np.array([np.convolve(np.pad(row, half_width, mode="edge"), kernel, "valid") for row in f1])
    return GRID[np.argmax(curves, axis=1)]


def above(p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return p >= thresholds


def never_empty(score):
    """A decision that predicts the best-scoring emotion (score(p, thresholds)) for a text that none reaches."""

    def decide(p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        predicted = p >= thresholds
        empty = ~predicted.any(axis=1)
        predicted[empty, np.argmax(score(p[empty], thresholds), axis=1)] = True
        return predicted

    return decide


STRATEGIES = {
    "global": tune_global,
    "per_emotion": per_emotion,
    **{f"per_emotion shrunk (k={k})": (lambda y, p, k=k: shrunk(y, p, k)) for k in (10, 30, 100)},
    **{f"per_emotion smoothed (+-{w})": (lambda y, p, w=w: smoothed(y, p, w)) for w in (1, 2, 3)},
    "per_emotion_bagged": lambda y, p: tune_per_label_bagged(y, p)[0],
    "per_emotion, never empty (p/t)": per_emotion,
    "per_emotion, never empty (max p)": per_emotion,
}
DECISIONS = {
    "per_emotion, never empty (p/t)": never_empty(lambda p, t: p / t),
    "per_emotion, never empty (max p)": never_empty(lambda p, t: p),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    run = Path(args.run_dir)
    labels = read_labels(run)["labels"]
    dev = read_predictions(eval_file(run, split_predictions("dev")), labels)
    y, p = dev.truth.astype(int), dev.probs
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    for _ in range(args.repeats):
        order = rng.permutation(len(y))
        halves = order[: len(y) // 2], order[len(y) // 2 :]
        for tune, score in (halves, halves[::-1]):
            for name, strategy in STRATEGIES.items():
                thresholds = strategy(y[tune], p[tune])
                predicted = DECISIONS.get(name, above)(p[score], thresholds)
                scores[name].append(f1_score(y[score], predicted, average="macro", zero_division=0))
    for name, values in scores.items():
        print(f"{name:32s} dev 2-fold macro-F1 {np.mean(values):.4f} (se {np.std(values) / np.sqrt(len(values)):.4f})")


if __name__ == "__main__":
    main()
