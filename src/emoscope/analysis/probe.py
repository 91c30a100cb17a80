"""What training stores for the analysis: the fixed probe set and the training labels' co-occurrence.

The probe set (the dev examples whose representations every capture records) is chosen once per run and
stored as `captures/probe.jsonl`, so every epoch's capture describes the same texts in the same order and
the analysis never needs the data loader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emoscope.analysis.structure import cooccurrence_counts, split_halves
from emoscope.core.errors import DataError
from emoscope.core.runfolder import cooccurrence_half_path, cooccurrence_path


def select_probe(labels: Sequence[Sequence[int]], n: int = 2000, seed: int = 0, n_labels: int = 28) -> list[int]:
    """Indices (sorted) of `n` examples in which every label present in `labels` appears.

    Rarest labels first, each label is topped up to a quota of n // (labels present) examples, so grief and
    relief keep all their few examples and the per-emotion metrics have something to measure; single-label
    examples are preferred there because the silhouette and the linear probe use only those. Whatever room
    is left is filled at random. Deterministic for given inputs and seed.
    """
    if n >= len(labels):
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    order = sorted(rng.permutation(len(labels)).tolist(), key=lambda i: len(labels[i]))  # stable: random ties
    candidates: list[list[int]] = [[] for _ in range(n_labels)]
    for i in order:
        for label in labels[i]:
            candidates[label].append(i)
    present = [label for label in range(n_labels) if candidates[label]]
    quota = max(1, n // max(len(present), 1))
    chosen: set[int] = set()
    count = np.zeros(n_labels, dtype=int)
    for label in sorted(present, key=lambda lab: (len(candidates[lab]), lab)):
        for i in candidates[label]:
            if count[label] >= quota or len(chosen) >= n:
                break
            if i not in chosen:
                chosen.add(i)
                count[list(labels[i])] += 1
    rest = [i for i in rng.permutation(len(labels)).tolist() if i not in chosen]
    chosen.update(rest[: n - len(chosen)])
    return sorted(chosen)


def write_probe(path: str | Path, ids: Sequence[str], texts: Sequence[str], labels: Sequence[Sequence[int]]) -> Path:
    """`captures/probe.jsonl`: one `{"id", "text", "labels": [label indices]}` a line, in capture order."""
    if not len(ids) == len(texts) == len(labels):
        raise ValueError(f"ids, texts and labels differ in length: {len(ids)}, {len(texts)}, {len(labels)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, t, y in zip(ids, texts, labels, strict=True):
            f.write(json.dumps({"id": str(i), "text": t, "labels": [int(v) for v in y]}, ensure_ascii=False) + "\n")
    return path


def read_probe(path: str | Path) -> tuple[list[str], list[str], list[tuple[int, ...]]]:
    """(ids, texts, labels) from a `probe.jsonl`; a malformed line is a DataError naming it."""
    ids, texts, labels = [], [], []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ids.append(str(row["id"]))
                texts.append(str(row["text"]))
                labels.append(tuple(int(v) for v in row["labels"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(path, n, f"not a probe record ({exc})") from exc
    return ids, texts, labels


def write_cooccurrence(run_dir: str | Path, train_labels: Sequence[Sequence[int]], n_labels: int) -> Path:
    """Training-time: `analysis_inputs/cooccurrence.csv`, the human co-annotation the RSA compares with.

    Label co-occurrence counts over the training examples ([n_labels, n_labels], the diagonal each label's
    count; rows and columns are label indices) under a `# n_examples=N` line, enough for the correlation.
    Beside it, `cooccurrence_half_1.csv` and `_2.csv` count two random halves of the examples, from which
    the analysis measures how reliable this reference is (its noise ceiling).
    """
    path = cooccurrence_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    halves = split_halves(len(train_labels))
    for target, rows in (
        (path, range(len(train_labels))),
        *zip((cooccurrence_half_path(run_dir, k) for k in (1, 2)), halves, strict=True),
    ):
        counts = cooccurrence_counts([train_labels[i] for i in rows], n_labels).astype(int)
        np.savetxt(target, counts, fmt="%d", delimiter=",", header=f"n_examples={len(rows)}")
    return path


def read_cooccurrence(path: str | Path) -> tuple[np.ndarray, int]:
    """(counts, n_examples) from a file `write_cooccurrence` wrote."""
    path = Path(path)
    first = path.open(encoding="utf-8").readline()
    match = re.match(r"#\s*n_examples=(\d+)", first)
    if not match:
        raise DataError(path, 1, "expected a '# n_examples=N' line")
    try:
        counts = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
    except ValueError as exc:
        raise DataError(path, None, f"not a matrix of counts ({exc})") from exc
    return counts, int(match.group(1))
