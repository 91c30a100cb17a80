"""Cross-fitting folds of the train split: which texts each teacher never sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def assign_folds(ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. folds-1) of each example: balanced (sizes differ by at most one) and a function of the
    set of ids and the seed alone, so a text falls in the same fold whatever the order of the file."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if len(ids) < folds:
        raise ValueError(f"ids: {len(ids)} examples cannot fill {folds} folds")
    if len(set(ids)) != len(ids):
        raise ValueError("ids: every example needs its own id to be given a fold")
    by_id = np.array(sorted(range(len(ids)), key=lambda i: ids[i]))
    shuffled = by_id[np.random.default_rng(seed).permutation(len(ids))]
    fold = np.empty(len(ids), dtype=np.int64)
    fold[shuffled] = np.arange(len(ids)) % folds
    return fold
