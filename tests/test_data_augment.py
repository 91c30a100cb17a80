"""Word-dropped copies of train texts: what each copy keeps, what it loses, and that a seed repeats them."""

from __future__ import annotations

import re

import pytest

from emoscope.data import Example
from emoscope.data.augment import word_dropped_copies

TEXTS = [Example(" ".join(f"w{n}_{k}" for k in range(n + 1)), (n % 3,), f"id{n}") for n in range(200)]


def test_a_copy_keeps_its_originals_labels_and_words_in_order():
    copies, origin = word_dropped_copies(TEXTS, 2, 0.3, seed=1)
    assert len(copies) == 400 and origin == [*range(200), *range(200)]
    for copy, i in zip(copies, origin, strict=True):
        original = TEXTS[i].text.split()
        kept = copy.text.split()
        assert kept and copy.labels == TEXTS[i].labels and copy.id.startswith(TEXTS[i].id + "~copy")
        assert [w for w in original if w in kept] == kept  # a subsequence: words only dropped, never moved
    assert len({c.id for c in copies}) == 400


def test_words_are_dropped_at_the_asked_rate_and_a_seed_repeats_the_copies():
    copies, _ = word_dropped_copies(TEXTS, 1, 0.3, seed=1)
    words = sum(len(e.text.split()) for e in TEXTS)
    dropped = words - sum(len(c.text.split()) for c in copies)
    assert 0.27 < dropped / words < 0.33
    assert copies == word_dropped_copies(TEXTS, 1, 0.3, seed=1)[0]
    assert copies != word_dropped_copies(TEXTS, 1, 0.3, seed=2)[0]
    assert [c.text for c in word_dropped_copies(TEXTS, 1, 0.0, seed=1)[0]] == [e.text for e in TEXTS]
    assert word_dropped_copies(TEXTS, 0, 0.3, seed=1) == ([], [])


@pytest.mark.parametrize(
    ("copies", "word_drop", "problem"),
    [(-1, 0.1, "copies must be an integer >= 0, got -1"), (1, 1.0, "word_drop must be in [0, 1), got 1.0")],
)
def test_bad_arguments_are_named(copies, word_drop, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        word_dropped_copies(TEXTS, copies, word_drop, seed=0)
