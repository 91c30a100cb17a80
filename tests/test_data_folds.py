"""Cross-fitting folds: balanced, a function of the ids (not their order), and refused when they cannot work."""

from __future__ import annotations

import numpy as np
import pytest

from emoscope.data.folds import assign_folds


def test_folds_are_balanced_and_cover_every_example():
    ids = [f"c{i}" for i in range(103)]
    fold = assign_folds(ids, 4, seed=0)
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3]
    sizes = np.bincount(fold)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 103


def test_a_text_keeps_its_fold_whatever_the_order_of_the_file():
    ids = [f"c{i}" for i in range(50)]
    fold = dict(zip(ids, assign_folds(ids, 3, seed=7), strict=True))
    shuffled = list(np.random.default_rng(1).permutation(ids))
    assert dict(zip(shuffled, assign_folds(shuffled, 3, seed=7), strict=True)) == fold
    assert dict(zip(ids, assign_folds(ids, 3, seed=8), strict=True)) != fold


@pytest.mark.parametrize(
    ("ids", "folds", "message"),
    [
        (["a", "b", "c"], 1, "folds must be an integer >= 2"),
        (["a", "b"], 3, "cannot fill 3 folds"),
        (["a", "a", "b"], 2, "its own id"),
    ],
)
def test_folds_that_cannot_work_are_refused(ids, folds, message):
    with pytest.raises(ValueError, match=message):
        assign_folds(ids, folds, seed=0)
