"""TF-IDF baseline on a slice of the real GoEmotions data: it learns and writes a run-like folder."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_TEXTS

from emoscope.core.errors import UserError
from emoscope.core.runfolder import BASELINE_FEATURES, eval_file, load_thresholds, split_predictions
from emoscope.evaluate.baseline import BaselineModel, build_model, run_baseline, save_model
from emoscope.evaluate.metrics import as_indicator_matrix, compute_metrics, read_predictions
from emoscope.evaluate.thresholds import choose_thresholds, tune_per_label, tune_per_label_bagged


def read_split(data_dir: Path, name: str, limit: int) -> tuple[list[str], list[tuple[int, ...]], list[str]]:
    """The first ``limit`` rows of an official TSV (text, comma-separated label ids, comment id)."""
    texts, labels, ids = [], [], []
    with (data_dir / f"{name}.tsv").open(encoding="utf-8") as f:
        for line, _ in zip(f, range(limit), strict=False):
            text, label_ids, comment_id = line.rstrip("\n").split("\t")
            texts.append(text)
            labels.append(tuple(int(i) for i in label_ids.split(",")))
            ids.append(comment_id)
    return texts, labels, ids


@pytest.fixture(scope="module")
def small_run(goemotions_dir, tmp_path_factory):
    names = (goemotions_dir / "emotions.txt").read_text().split()
    train, dev, test = (
        read_split(goemotions_dir, split, n) for split, n in (("train", 3000), ("dev", 1500), ("test", 500))
    )
    out = tmp_path_factory.mktemp("baseline")
    result = run_baseline(train[0], train[1], dev[0], dev[1], test[0], test[1], names, out, test_ids=test[2], n_jobs=1)
    return out, result, names, train, dev, test


def test_writes_a_run_like_folder(small_run):
    out, result, names, _, _, test = small_run
    for rel in (
        "labels.json",
        "thresholds.json",
        "baseline.json",
        "eval/dev_metrics.json",
        "eval/test_metrics.json",
        "eval/test_per_emotion.csv",
        "eval/test_predictions.jsonl",
    ):
        assert (out / rel).is_file(), rel
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert thresholds["strategy"] == "per_emotion_bagged" and thresholds["chosen_on"] == "dev"
    assert list(thresholds["thresholds"]) == names
    assert json.loads((out / "labels.json").read_text())["labels"] == names
    test_metrics = json.loads((out / "eval/test_metrics.json").read_text())
    assert test_metrics["macro_f1"] == pytest.approx(result.summary["macro_f1"])
    for split in ("dev", "test"):  # the floor's numbers carry their intervals, like a model's
        scores = json.loads((out / f"eval/{split}_metrics.json").read_text())
        for metric in ("macro_f1", "micro_f1"):
            low, high = scores[f"{metric}_ci95_low"], scores[f"{metric}_ci95_high"]
            assert low < scores[metric] < high and high - low < 0.2, (split, metric)
    assert test_metrics["n_examples"] == len(test[0])
    with (out / "eval/test_per_emotion.csv").open() as f:
        assert [row["label"] for row in csv.DictReader(f)] == names
    records = [json.loads(line) for line in (out / "eval/test_predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == test[2]
    assert records[0]["text"] == test[0][0]
    assert records[0]["labels"] == [names[i] for i in test[1][0]]
    assert all(len(r["probs"]) == len(names) for r in records)


def test_beats_a_constant_predictor_on_dev(small_run):
    out, _, names, train, dev, _ = small_run
    dev_metrics = json.loads((out / "eval/dev_metrics.json").read_text())
    # The constant predictor gives every text the training prevalence of each label, with thresholds
    # tuned on dev the same way: its best is predicting the frequent labels everywhere.
    y_dev = as_indicator_matrix(dev[1], n_labels=len(names))
    prevalence = as_indicator_matrix(train[1], n_labels=len(names)).mean(axis=0)
    p_const = np.tile(prevalence, (len(y_dev), 1))
    const_thresholds = choose_thresholds("per_emotion", y_dev=y_dev, p_dev=p_const).values
    const = compute_metrics(y_dev, p_const, const_thresholds, names).summary
    assert dev_metrics["macro_f1"] > const["macro_f1"] + 0.1
    assert dev_metrics["macro_auc"] > 0.75  # the constant predictor ranks at chance, 0.5


def test_rejects_mismatched_inputs(tmp_path):
    with pytest.raises(UserError, match="^dev: 2 texts but 1 label rows$"):
        run_baseline(["a b", "c d"], [(0,), (1,)], ["x", "y"], [(0,)], ["z"], [(1,)], ["p", "q"], tmp_path)
    with pytest.raises(UserError, match=r"^train_y holds a label index outside 0\.\.1$"):
        run_baseline(["a b", "c d"], [(0,), (2,)], ["x"], [(0,)], ["z"], [(1,)], ["p", "q"], tmp_path)
    with pytest.raises(UserError, match="^got 2 test_ids for 1 test texts$"):
        run_baseline(
            ["a b", "c d"], [(0,), (1,)], ["x"], [(0,)], ["z"], [(1,)], ["p", "q"], tmp_path, test_ids=["1", "2"]
        )


def test_char_ngrams_and_global_strategy(goemotions_dir, tmp_path):
    names = (goemotions_dir / "emotions.txt").read_text().split()
    train, dev, test = (
        read_split(goemotions_dir, split, n) for split, n in (("train", 800), ("dev", 300), ("test", 100))
    )
    result = run_baseline(
        train[0],
        train[1],
        dev[0],
        dev[1],
        test[0],
        test[1],
        names,
        tmp_path,
        threshold_strategy="global",
        char_ngrams=True,
        n_jobs=1,
    )
    info = json.loads((tmp_path / "baseline.json").read_text())
    assert info["char_ngrams"] is True and info["n_train"] == 800
    assert len({row["threshold"] for row in result.per_label}) == 1
    assert json.loads((tmp_path / "thresholds.json").read_text())["strategy"] == "global"


def test_baseline_command_scores_like_a_run_and_prints_the_table(goemotions_dir, tmp_path, capsys):
    from conftest import slice_goemotions

    from emoscope.cli import main

    (tmp_path / "data").mkdir()
    data = slice_goemotions(goemotions_dir, tmp_path / "data", 400, 100, 100)
    out = tmp_path / "baseline"
    assert main(["baseline", "--data_dir", str(data), "--out", str(out)]) == 0
    assert "TF-IDF + logistic regression, test (per_emotion_bagged thresholds chosen on dev)" in capsys.readouterr().out
    assert json.loads((out / "thresholds.json").read_text())["strategy"] == "per_emotion_bagged"
    labels = json.loads((out / "labels.json").read_text())
    assert labels["sentiment_of"]["grief"] == "negative" and (out / "eval" / "test_metrics.json").is_file()


@pytest.mark.filterwarnings("ignore:Label not 2 is present in all training examples")
@pytest.mark.parametrize("char_ngrams", [False, True])
def test_the_saved_model_gives_the_fitted_probabilities(tmp_path, char_ngrams):
    """No pickle: the rebuilt scorer matches sklearn's pipeline, a label never seen in train included."""
    distinct = SAMPLE_TEXTS[: len(SAMPLE_TEXTS) // 20]
    texts = [*distinct[:6], "Café crème, naïve résumé", distinct[7]] * 4  # one text with accents
    y = (np.random.default_rng(0).random((len(texts), 3)) < 0.4).astype(int)
    y[:, 2] = 0  # one class only: sklearn's constant predictor
    model = build_model(char_ngrams=char_ngrams, n_jobs=1).fit(texts, y)
    (tmp_path / "labels.json").write_text(json.dumps({"labels": ["a", "b", "c"]}))
    save_model(model, tmp_path)
    new = ["totally unseen words", "so sorry, I love it", "cafe", *texts]
    np.testing.assert_allclose(BaselineModel(tmp_path).predict_proba(new), model.predict_proba(new), atol=1e-9, rtol=0)


def test_a_baseline_folder_carries_its_model(small_run, tmp_path):
    out, _, names, _, _, test = small_run
    saved = read_predictions(out / "eval/test_predictions.jsonl", names)
    np.testing.assert_allclose(BaselineModel(out).predict_proba(test[0]), saved.probs, atol=1e-9, rtol=0)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / BASELINE_FEATURES).unlink()
    with pytest.raises(UserError, match=f"^{old} is not a saved TF-IDF baseline .*refit with emoscope baseline$"):
        BaselineModel(old)


def test_bagged_strategy_is_tuned_on_the_saved_dev_predictions(goemotions_dir, tmp_path):
    names = (goemotions_dir / "emotions.txt").read_text().split()
    splits = [read_split(goemotions_dir, split, n) for split, n in (("train", 800), ("dev", 300), ("test", 100))]
    run_baseline(
        *[a for split in splits for a in split[:2]], names, tmp_path, threshold_strategy="per_emotion_bagged", n_jobs=1
    )
    dev = read_predictions(eval_file(tmp_path, split_predictions("dev")), names)
    saved = load_thresholds(tmp_path / "thresholds.json", names)
    assert saved.strategy == "per_emotion_bagged"
    np.testing.assert_array_equal(saved.values, tune_per_label_bagged(dev.truth, dev.probs)[0])
    assert not np.array_equal(saved.values, tune_per_label(dev.truth, dev.probs)[0])
