"""How often does the analysis' silhouette interval hold the value it estimates? Asked of simulated data.

    python scripts/interval_coverage.py [--samples 60] [--size 500]

A population of texts in 10 emotions (5 positive, 5 negative) lies around per-sentiment and per-emotion
directions scaled by a structure strength (0: none). Its positive-vs-negative silhouette on 4,000 texts stands for
the value; each of `--samples` probe sets of `--size` texts gets the analysis' resamples
(`weighted_silhouettes`, 200 draws) and two intervals: percentiles of the resamples, and the estimate ± 1.96 of
their standard deviations (what `emoscope analyze` writes). Prints the share of probe sets whose interval holds
the value, per strength.
"""

from __future__ import annotations

import argparse

import numpy as np

from emoscope.analysis.structure import cosine_distances, silhouette, weighted_silhouettes
from emoscope.analysis.uncertainty import interval
from emoscope.evaluate.bootstrap import resample_counts

EMOTIONS, DIM, POPULATION = 10, 32, 4000
SENTIMENT = np.array(["positive"] * 5 + ["negative"] * 5)


def population(strength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    emotion = rng.integers(0, EMOTIONS, POPULATION)
    sentiment_direction = {s: rng.normal(size=DIM) / np.sqrt(DIM) for s in ("positive", "negative")}
    emotion_direction = rng.normal(size=(EMOTIONS, DIM)) / np.sqrt(DIM)
    centre = np.stack([sentiment_direction[SENTIMENT[e]] for e in emotion]) + 0.4 * emotion_direction[emotion]
    return strength * centre + rng.normal(size=(POPULATION, DIM)) / np.sqrt(DIM), emotion


def posneg_silhouette(X: np.ndarray, emotion: np.ndarray) -> tuple[float, np.ndarray]:
    D = cosine_distances(X - X.mean(0))
    return silhouette(D, SENTIMENT[emotion]), D


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args()
    grouping = {"posneg": SENTIMENT}
    print("strength | value | percentile interval holds it | normal interval holds it")
    for strength in (0.0, 0.25, 0.5, 1.0):
        rng = np.random.default_rng(0)
        X, emotion = population(strength, rng)
        value = posneg_silhouette(X, emotion)[0]
        held = {"percentile": 0, "normal": 0}
        for draw in range(args.samples):
            rows = rng.choice(POPULATION, args.size, replace=False)
            point, D = posneg_silhouette(X[rows], emotion[rows])
            weights = resample_counts(args.size, 200, seed=draw).astype(np.float32)
            samples = weighted_silhouettes(D.astype(np.float32), emotion[rows], grouping, weights)["posneg"]
            low, high = np.quantile(samples, [0.025, 0.975])
            held["percentile"] += low <= value <= high
            low, high = interval(samples, point)
            held["normal"] += low <= value <= high
        shares = [f"{held[k] / args.samples:.2f}" for k in ("percentile", "normal")]
        print(f"{strength} | {value:.4f} | {shares[0]} | {shares[1]}")


if __name__ == "__main__":
    main()
