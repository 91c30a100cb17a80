"""Word-dropped copies of the train texts: more text for a student to learn its teachers' view from.

A copy keeps its original's gold labels and id (with a suffix) and loses each word with a given probability;
with teachers, each copy gets its own soft label from them (`emoscope.recipes.distill`), so a copy that lost the
words carrying an emotion is taught that the emotion is weaker there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emoscope.data.formats import Example


def word_dropped_copies(
    examples: Sequence[Example], copies: int, word_drop: float, seed: int
) -> tuple[list[Example], list[int]]:
    """`copies` copies of each example, each word dropped with probability `word_drop` (one word always
    stays), and the index of each copy's original in `examples`; the same arguments give the same copies."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies must be an integer >= 0, got {copies!r}")
    if not 0 <= word_drop < 1:
        raise ValueError(f"word_drop must be in [0, 1), got {word_drop!r}")
    rng = np.random.default_rng(seed)
    out, origin = [], []
    for k in range(1, copies + 1):
        for i, example in enumerate(examples):
            words = example.text.split()
            keep = rng.random(len(words)) >= word_drop
            if words and not keep.any():
                keep[rng.integers(len(words))] = True
            text = " ".join(w for w, kept in zip(words, keep, strict=True) if kept)
            out.append(Example(text=text, labels=example.labels, id=f"{example.id}~copy{k}"))
            origin.append(i)
    return out, origin
