"""How sure the layer metrics are: bootstrap intervals over probe texts, RSA permutation p-values and the
co-annotation reference's noise ceiling.

A resample is a vector of draw counts over the probe texts (`evaluate.bootstrap.resample_counts`);
`metrics.point_metrics(..., weights=...)` recomputes every number on each one. The analysis draws one set of
resamples and uses it at every point and epoch, so the difference of two numbers has its own paired interval.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from emoscope.analysis.structure import coannotation_rdm, rsa

CONFIDENCE = 0.95


def interval(samples: np.ndarray, point: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Normal bootstrap interval: `point` +- z x the standard deviation of the defined resamples; (NaN, NaN)
    when fewer than half are defined. Percentiles would carry the resamples' own bias: a statistic of
    centroids (RSA, CKA) is attenuated again on every resample, and its percentile interval sat wholly on one
    side of the estimate."""
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) < max(2, len(samples) / 2) or not math.isfinite(point):
        return math.nan, math.nan
    half_width = float(norm.ppf(0.5 + confidence / 2)) * float(finite.std(ddof=1))
    return point - half_width, point + half_width


def difference(a: np.ndarray, b: np.ndarray, point: float) -> dict:
    """The paired comparison of two numbers bootstrapped on the same resamples: `point` (a - b on all
    texts), its interval and whether the interval excludes zero (None when undefined)."""
    low, high = interval(np.asarray(a) - np.asarray(b), point)
    excludes = None if math.isnan(low) else bool(low > 0 or high < 0)
    return {"difference": point, "ci95": [low, high], "excludes_zero": excludes}


def permutation_p(model_rdm: np.ndarray, reference: np.ndarray, n_permutations: int, seed: int) -> float:
    """One-sided p-value of `rsa(model_rdm, reference)` against relabelled references: the reference's rows
    and columns permuted together (the items' labels shuffled), (1 + #{permuted >= observed}) / (1 + n)."""
    observed = rsa(model_rdm, reference)
    if math.isnan(observed):
        return math.nan
    upper = np.triu_indices(len(reference), 1)
    ranked = np.zeros_like(reference, dtype=np.float64)
    ranked[upper] = rankdata(reference[upper])  # permuting the items permutes these ranks: rank once
    ranked += ranked.T
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(len(reference)) for _ in range(n_permutations)])
    ranks = ranked[perms[:, upper[0]], perms[:, upper[1]]]
    ranks -= ranks.mean(1, keepdims=True)
    model = rankdata(model_rdm[upper])
    model -= model.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        null = (ranks @ model) / (np.linalg.norm(ranks, axis=1) * np.linalg.norm(model))
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))


def split_half_ceiling(
    half_a: tuple[np.ndarray, int], half_b: tuple[np.ndarray, int], emotions: list[int]
) -> dict[str, float]:
    """The co-annotation reference's reliability from two halves of the annotated examples (co-occurrence
    counts and example count each): the Spearman correlation of the halves' RDMs, stepped up to the full
    size by Spearman-Brown (2r / (1 + r)). Its square root is the noise ceiling: the RSA a model matching
    the true structure would reach against this noisy reference."""
    rdms = [coannotation_rdm(counts, n)[np.ix_(emotions, emotions)] for counts, n in (half_a, half_b)]
    r = rsa(*rdms)
    reliability = 2 * r / (1 + r) if not math.isnan(r) and r > -1 else math.nan
    ceiling = math.sqrt(reliability) if reliability >= 0 else math.nan
    return {"split_half_r": r, "reliability": reliability, "noise_ceiling": ceiling}
