"""Synthetic run folders with planted structure, for the analysis tests and the timing benchmark.

No tests here; `python tests/test_analysis_support.py [RUN_DIR]` builds a benchmark-sized run (6 layers,
hidden 384, 5 captures of 2,000 probe texts, 10 points) and times `run_analysis` on it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from emoscope.analysis import run_analysis, save_capture, write_cooccurrence, write_probe

LABELS = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
]  # fmt: skip
SENTIMENT = {
    "positive": ["amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride",
                 "admiration", "gratitude", "relief", "approval"],
    "negative": ["fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness", "grief",
                 "disgust", "anger", "annoyance", "disapproval"],
    "ambiguous": ["realization", "surprise", "curiosity", "confusion"],
}  # fmt: skip
EKMAN = {
    "anger": ["anger", "annoyance", "disapproval"], "disgust": ["disgust"], "fear": ["fear", "nervousness"],
    "joy": ["joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
            "admiration", "desire", "caring"],
    "sadness": ["sadness", "disappointment", "embarrassment", "grief", "remorse"],
    "surprise": ["surprise", "realization", "confusion", "curiosity"],
}  # fmt: skip
SENTIMENT_OF = {e: g for g, members in SENTIMENT.items() for e in members} | {"neutral": "neutral"}
EKMAN_OF = {e: g for g, members in EKMAN.items() for e in members} | {"neutral": "neutral"}


def random_labels(n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """GoEmotions-like label tuples: mostly one label, a fifth with two."""
    out = []
    for _ in range(n):
        k = 2 if rng.random() < 0.2 else 1
        out.append(tuple(sorted(rng.choice(len(LABELS), size=k, replace=False).tolist())))
    return out


def planted(
    labels: list[tuple[int, ...]],
    sentiment_strength: float,
    emotion_strength: float,
    dim: int,
    rng: np.random.Generator,
    directions: dict | None = None,
) -> np.ndarray:
    """Noise plus, per text, the mean of its labels' sentiment and emotion directions at the given strengths.

    `directions` (sentiment group -> vector, label -> vector) may be shared between calls so that two
    representations carry the same signal.
    """
    directions = directions or make_directions(dim, rng)
    X = rng.normal(size=(len(labels), dim))
    for i, y in enumerate(labels):
        X[i] += np.mean(
            [
                sentiment_strength * directions["sentiment"][SENTIMENT_OF[LABELS[j]]]
                + emotion_strength * directions["emotion"][j]
                for j in y
            ],
            axis=0,
        )
    return X


def make_directions(dim: int, rng: np.random.Generator) -> dict:
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    return {
        "sentiment": {g: unit(rng.normal(size=dim)) for g in ("positive", "negative", "ambiguous", "neutral")},
        "emotion": [unit(rng.normal(size=dim)) for _ in LABELS],
    }


def write_labels_files(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "labels.json").write_text(
        json.dumps({"taxonomy": "original", "labels": LABELS, "sentiment_of": SENTIMENT_OF, "ekman_of": EKMAN_OF})
    )
    (run / "thresholds.json").write_text(
        json.dumps({"strategy": "per_emotion", "chosen_on": "dev", "thresholds": {name: 0.4 for name in LABELS}})
    )


def write_test_predictions(run: Path, n: int, rng: np.random.Generator) -> None:
    """Probabilities that follow the human labels, with noise and a planted anger->annoyance confusion."""
    labels = random_labels(n, rng)
    (run / "eval").mkdir(parents=True, exist_ok=True)
    with (run / "eval" / "test_predictions.jsonl").open("w", encoding="utf-8") as f:
        for i, y in enumerate(labels):
            truth = np.zeros(len(LABELS))
            truth[list(y)] = 1
            logits = 4 * truth - 2 + rng.normal(scale=1.5, size=len(LABELS))
            if LABELS.index("anger") in y:
                logits[LABELS.index("annoyance")] += 3
            probs = 1 / (1 + np.exp(-logits))
            f.write(
                json.dumps(
                    {
                        "id": f"t{i}",
                        "text": f"test comment {i}",
                        "labels": [LABELS[j] for j in y],
                        "probs": probs.round(4).tolist(),
                    }
                )
                + "\n"
            )


def make_synthetic_run(
    run: Path,
    n_probe: int = 2000,
    n_layers: int = 6,
    dim: int = 384,
    epochs: int = 5,
    onset: int = 3,
    n_test: int = 500,
    seed: int = 0,
) -> Path:
    """A run folder whose captures separate sentiment from `layer_<onset>` on at the last epoch.

    Points: embeddings, layer_1..N, attention, mlp, classifier (28 dims). Sentiment strength is 0 before
    the onset point and grows with depth and epoch after it; captures exist for epochs 0..epochs-1.
    """
    rng = np.random.default_rng(seed)
    write_labels_files(run)
    labels = random_labels(n_probe, rng)
    write_probe(
        run / "captures" / "probe.jsonl",
        [f"p{i}" for i in range(n_probe)],
        [f"probe comment {i}" for i in range(n_probe)],
        labels,
    )
    write_cooccurrence(run, random_labels(5000, rng), len(LABELS))
    points = ["embeddings", *(f"layer_{i}" for i in range(1, n_layers + 1)), "attention", "mlp", "classifier"]
    directions = make_directions(dim, rng)
    onset_depth = points.index(f"layer_{onset}")
    for epoch in range(epochs):
        reps = {}
        for depth, point in enumerate(points):
            grow = (epoch + 1) / epochs
            strength = 0.0 if depth < onset_depth else 8.0 * grow * (1 + 0.3 * (depth - onset_depth))
            X = planted(labels, strength, 0.5 * strength, dim, rng, directions)
            reps[point] = torch.from_numpy(X[:, : len(LABELS)] if point == "classifier" else X).float()
        save_capture(run / "captures" / f"epoch_{epoch}.safetensors", reps, epoch=epoch, pooling="mean")
    write_test_predictions(run, n_test, rng)
    return run


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/emoscope-analysis-bench")
    start = time.perf_counter()
    make_synthetic_run(target)
    print(f"built {target} in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    run_analysis(target, log=print)
    print(f"run_analysis: {time.perf_counter() - start:.1f} s")
