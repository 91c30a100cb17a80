"""`run_analysis` on run folders: every file written, missing inputs explained, the summary's verdicts."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_analysis_support import (
    LABELS,
    make_synthetic_run,
    random_labels,
    write_labels_files,
    write_test_predictions,
)
from transformers import AutoTokenizer

from emoscope.analysis import (
    TrackerObserver,
    load_capture,
    read_cooccurrence,
    read_probe,
    run_analysis,
    save_capture,
    write_cooccurrence,
)
from emoscope.analysis.pipeline import METRICS as METRIC_NAMES
from emoscope.analysis.pipeline import Uncertainty
from emoscope.analysis.summary import summary_markdown
from emoscope.core.errors import UserError
from emoscope.models import build_classifier

FAST = Uncertainty(resamples=50, permutations=50)  # the intervals have tests of their own
FIGURES = [
    "layer_metrics",
    "cka_layers",
    "cka_epoch0",
    "dendrograms",
    "per_emotion_f1",
    "confusion_2x2",
    "misclassification",
    "correlation",
    "label_prob_correlation",
]
TABLES = [
    "layer_metrics.csv",
    "tsne_coords.csv",
    "confident_mistakes.csv",
    "summary.md",
    "tsne_emotion.png",
    "tsne_sentiment.png",
]

COLUMNS = (
    "epoch,point,depth,silhouette_emotion,silhouette_sentiment,silhouette_ekman,probe_macro_f1,rsa_sentiment,"
    "rsa_ekman,rsa_cooccurrence,ari_sentiment_k3,ari_ekman_k6,cka_vs_epoch0,"
    + ",".join(f"{m}_ci95_{side}" for m in METRIC_NAMES for side in ("low", "high"))
    + ",rsa_sentiment_p,rsa_ekman_p,rsa_cooccurrence_p,rdm_reliability"
)
WORDS = [
    "happy",
    "sad",
    "angry",
    "love",
    "hate",
    "wow",
    "sorry",
    "thanks",
    "why",
    "great",
    "awful",
    "lol",
    "scared",
    "proud",
    "okay",
    "really",
    "so",
    "the",
    "movie",
    "dog",
]


@pytest.fixture(scope="module")
def model_run(tiny_models, tmp_path_factory):
    """A run folder as training with --visualize leaves it: a tiny BERT captured before and after a step."""
    run = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    write_labels_files(run)
    pool = random_labels(300, rng)
    pool[:28] = [(k,) for k in range(28)]
    dev = [
        SimpleNamespace(text=" ".join(rng.choice(WORDS, size=rng.integers(2, 9))), labels=y, id=f"c{i}")
        for i, y in enumerate(pool)
    ]
    data = SimpleNamespace(train=dev[:200], dev=dev, taxonomy=SimpleNamespace(labels=tuple(LABELS)))
    write_test_predictions(run, 150, rng)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    torch.manual_seed(0)
    model = build_classifier(str(tiny_models["bert"]), "mlp-attention", 28, head_dropout=0.1)
    observer = TrackerObserver(max_len=64, probe_size=120, batch_size=32)
    observer.setup(run, model, tokenizer, data)
    observer.on_epoch(model, 0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    observer.on_epoch(model, 1)
    (run / "analysis_inputs" / "cooccurrence.csv").unlink()  # the analysis falls back on the probe labels
    return run


def test_every_figure_and_table_is_written(model_run):
    out = run_analysis(model_run, tsne_iter=30, uncertainty=FAST)
    for stem in FIGURES:
        for ext in ("png", "csv"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    for name in TABLES:
        assert (out / name).stat().st_size > 0, name
    lines = (out / "layer_metrics.csv").read_text().splitlines()
    points = ["embeddings", "layer_1", "layer_2", "attention", "mlp", "classifier"]
    assert lines[0] == COLUMNS and len(lines) == 1 + 2 * len(points)
    with (out / "tsne_coords.csv").open() as f:
        coords = list(csv.DictReader(f))
    assert len(coords) == 2 * len(points) * 120
    with (out / "confident_mistakes.csv").open() as f:
        mistakes = list(csv.DictReader(f))
    assert {m["kind"] for m in mistakes} == {"false_positive", "false_negative"}
    summary = (out / "summary.md").read_text()
    assert "first capture (epoch 0)" in summary and "entangled" in summary
    assert "probe-set labels" in summary  # this run wrote no co-occurrence file


def test_points_and_epochs_can_be_narrowed(model_run, tmp_path):
    out = run_analysis(model_run, points=["layer_2", "embeddings"], max_epochs=1, tsne=False, uncertainty=FAST)
    lines = (out / "layer_metrics.csv").read_text().splitlines()[1:]
    assert [line.split(",")[:3] for line in lines] == [["1", "embeddings", "0"], ["1", "layer_2", "1"]]
    assert "t-SNE skipped" in (out / "summary.md").read_text()
    with pytest.raises(UserError, match="layer_7"):
        run_analysis(model_run, points=["layer_7"], tsne=False)


def test_missing_inputs_are_explained(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run_analysis(tmp_path / "nowhere")
    write_labels_files(tmp_path)
    with pytest.raises(UserError, match="--visualize"):
        run_analysis(tmp_path)


def test_captures_with_different_poolings_are_refused(tmp_path):
    run = make_synthetic_run(tmp_path / "run", n_probe=60, n_layers=1, dim=8, epochs=2, onset=1, n_test=10)
    arrays, _ = load_capture(run / "captures" / "epoch_1.safetensors")
    save_capture(
        run / "captures" / "epoch_1.safetensors",
        {k: torch.from_numpy(v) for k, v in arrays.items()},
        epoch=1,
        pooling="cls",
    )
    with pytest.raises(UserError, match="mix poolings"):
        run_analysis(run, tsne=False)


def test_planted_run_summary_names_the_first_separating_layer(tmp_path):
    run = make_synthetic_run(tmp_path / "run", n_probe=400, n_layers=4, dim=48, epochs=3, onset=2, n_test=200)
    (run / "eval" / "test_predictions.jsonl").unlink()
    out = run_analysis(run, tsne=False, uncertainty=FAST)
    summary = (out / "summary.md").read_text()
    assert "After training (epoch 2): **layer_2** is the first point" in summary
    assert "training labels (`analysis_inputs/cooccurrence.csv`)" in summary
    assert "No `eval/test_predictions.jsonl`" in summary
    findings = json.loads((out / "summary.json").read_text())
    assert findings["separation"][0] == {**findings["separation"][0], "epoch": 2, "first_point": "layer_2"}
    assert findings["confusions"] is None and summary_markdown(findings) == summary
    assert not (out / "per_emotion_f1.png").exists()
    rows = list(csv.DictReader((out / "layer_metrics.csv").open()))
    last = [r for r in rows if r["epoch"] == "2"]
    assert float(last[-2]["silhouette_sentiment"]) > float(last[0]["silhouette_sentiment"]) + 0.2


def test_observer_reuses_the_runs_probe_set(model_run, tiny_models, tmp_path):
    """A capture from a checkpoint (or a resumed run) must describe the same texts as the others."""
    before = read_probe(model_run / "captures" / "probe.jsonl")
    model = build_classifier(str(tiny_models["bert"]), "mlp-attention", 28, head_dropout=0.1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    observer = TrackerObserver(max_len=64, probe_size=50)
    observer.setup(model_run, model, tokenizer, SimpleNamespace(train=[], dev=[], taxonomy=None))
    assert read_probe(model_run / "captures" / "probe.jsonl") == before
    assert sum(len(b["index"]) for b in observer._batches) == 120


def test_cooccurrence_round_trip(tmp_path):
    labels = [(0, 2), (2,), (1,), (0, 2, 3)]
    path = write_cooccurrence(tmp_path, labels, 4)
    counts, n = read_cooccurrence(path)
    assert n == 4 and counts.tolist() == [[2, 0, 2, 1], [0, 1, 0, 0], [2, 0, 3, 1], [1, 0, 1, 1]]


def test_test_set_tables_follow_their_definitions(model_run):
    out = model_run / "analysis"
    if not (out / "misclassification.csv").exists():
        run_analysis(model_run, tsne=False, uncertainty=FAST)
    preds = [json.loads(line) for line in (model_run / "eval" / "test_predictions.jsonl").open()]
    truth = np.array([[name in p["labels"] for name in LABELS] for p in preds])
    predicted = np.array([p["probs"] for p in preds]) >= 0.4  # thresholds.json says 0.4 everywhere
    rows = list(csv.reader((out / "misclassification.csv").open()))
    M = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows[1:]])
    anger, annoyance = LABELS.index("anger"), LABELS.index("annoyance")
    has_anger = truth[:, anger]
    expected = (has_anger & predicted[:, annoyance] & ~truth[:, annoyance]).sum() / has_anger.sum()
    assert M[anger, annoyance] == pytest.approx(expected, abs=1e-5)
    assert M[anger, anger] == pytest.approx((has_anger & predicted[:, anger]).sum() / has_anger.sum(), abs=1e-5)
    confusion = {r["label"]: r for r in csv.DictReader((out / "confusion_2x2.csv").open())}
    assert int(confusion["anger"]["tp"]) == (has_anger & predicted[:, anger]).sum()
    assert sum(int(confusion["anger"][k]) for k in ("tn", "fp", "fn", "tp")) == len(preds)
