"""The probe set: deterministic, stratified so every emotion (grief and relief too) is present."""

from __future__ import annotations

import numpy as np
import pytest

from emoscope.analysis import read_probe, select_probe, write_probe
from emoscope.core.errors import DataError


def read_dev(folder):
    texts, labels, ids = [], [], []
    for line in (folder / "dev.tsv").read_text(encoding="utf-8").splitlines():
        text, label_ids, comment_id = line.split("\t")
        texts.append(text)
        labels.append(tuple(sorted(int(v) for v in label_ids.split(","))))
        ids.append(comment_id)
    return texts, labels, ids


def test_dev_probe_has_every_emotion_and_all_of_the_rare_ones(goemotions_dir):
    texts, labels, _ = read_dev(goemotions_dir)
    emotions = (goemotions_dir / "emotions.txt").read_text().split()
    index = select_probe(labels, n=2000, seed=0, n_labels=len(emotions))
    assert len(index) == len(set(index)) == 2000 and index == sorted(index)
    assert index == select_probe(labels, n=2000, seed=0, n_labels=len(emotions))
    assert index != select_probe(labels, n=2000, seed=1, n_labels=len(emotions))
    total = np.zeros(len(emotions), int)
    chosen = np.zeros(len(emotions), int)
    for y in labels:
        total[list(y)] += 1
    for i in index:
        chosen[list(labels[i])] += 1
    assert (chosen > 0).all()
    quota = 2000 // len(emotions)
    np.testing.assert_array_equal(chosen >= np.minimum(total, quota), True)  # rare labels keep them all
    for name in ("grief", "relief"):
        k = emotions.index(name)
        assert total[k] < quota and chosen[k] == total[k]


def test_small_sources_and_round_trip(tmp_path):
    labels = [(0,), (1, 2), (2,)]
    assert select_probe(labels, n=10, n_labels=3) == [0, 1, 2]
    path = write_probe(tmp_path / "captures" / "probe.jsonl", ["a", "b", "c"], ["x", 'y "quoted"', "z"], labels)
    assert read_probe(path) == (["a", "b", "c"], ["x", 'y "quoted"', "z"], labels)
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(DataError, match="probe.jsonl:4"):
        read_probe(path)
