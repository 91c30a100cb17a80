"""An ensemble folder is a model: `Predictor`, `emoscope predict` and `emoscope report` take it like a run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import slice_goemotions, train_args

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.core.runfolder import BASELINE, BASELINE_WEIGHTS, ENSEMBLE_INFO, EVAL, LABELS, split_predictions
from emoscope.evaluate.ensemble import build_ensemble
from emoscope.evaluate.metrics import read_predictions
from emoscope.inference.ensemble import EnsemblePredictor
from emoscope.inference.predictor import Predictor
from emoscope.report import write_report


@pytest.fixture(scope="module")
def project(tiny_run, tiny_models, goemotions_dir, tmp_path_factory):
    """runs/a (the shared tiny run), runs/b (the same data, another seed), runs/ens: both + a's baseline."""
    root = tmp_path_factory.mktemp("project")
    data = slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("ens-data"), 96, 32, 32)  # tiny_run's rows
    shutil.copytree(tiny_run, root / "runs" / "a")
    assert main(train_args(tiny_models["bert"], data, root / "runs" / "b", "--seed", "43")) == 0
    info = build_ensemble(
        [root / "runs" / "a", root / "runs" / "b"], root / "runs" / "ens", baseline=root / "runs" / "a" / BASELINE
    )
    assert info["baseline_weight"] > 0  # so the blend is exercised, not only the mean
    assert info["runs"] == ["../a", "../b"] and info["baseline"] == f"../a/{BASELINE}"
    return root


def saved(ens, split):
    return read_predictions(ens / EVAL / split_predictions(split), json.loads((ens / LABELS).read_text())["labels"])


def test_predictor_gives_the_probabilities_the_ensemble_was_scored_with(project):
    ens = project / "runs" / "ens"
    predictor = Predictor(ens, precision="fp32", workers=1)
    assert isinstance(predictor, EnsemblePredictor) and len(predictor.members) == 2
    assert [(m.workers, m.device.type) for m in predictor.members] == [(1, predictor.device.type)] * 2
    for split in ("dev", "test"):
        preds = saved(ens, split)
        np.testing.assert_allclose(predictor.predict_proba(preds.texts), preds.probs, atol=1e-6, rtol=0)
    chosen = json.loads((ens / "thresholds.json").read_text())["thresholds"]
    assert predictor.thresholds.tolist() == pytest.approx([chosen[label] for label in predictor.labels])
    [result] = predictor.predict(["thank you so much!"], top_k=3)
    assert len(result["top"]) == 3 and set(result["probs"]) == set(predictor.labels)


def test_evaluate_scores_the_ensemble_as_its_own_evaluation_did(project, tmp_path):
    ens = project / "runs" / "ens"
    assert main(["evaluate", str(ens), "--split", "test", "--out", str(tmp_path / "ev"), "--precision", "fp32"]) == 0
    labels = json.loads((ens / LABELS).read_text())["labels"]
    ours = read_predictions(tmp_path / "ev" / split_predictions("test"), labels)
    np.testing.assert_allclose(ours.probs, saved(ens, "test").probs, atol=1e-6, rtol=0)
    assert ours.texts == saved(ens, "test").texts


def test_the_folder_moves_with_its_members_and_names_a_missing_one(project, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(project, moved)
    preds = saved(project / "runs" / "ens", "test")
    probs = Predictor(moved / "runs" / "ens", precision="fp32").predict_proba(preds.texts)
    np.testing.assert_allclose(probs, preds.probs, atol=1e-6, rtol=0)
    shutil.rmtree(moved / "runs" / "b")
    with pytest.raises(UserError, match=r"^ensemble member \.\./b of .* not found"):
        Predictor(moved / "runs" / "ens", precision="fp32")


def test_a_baseline_without_its_saved_model_says_to_refit(project, tmp_path):
    moved = tmp_path / "old"
    shutil.copytree(project, moved)
    (moved / "runs" / "a" / BASELINE / BASELINE_WEIGHTS).unlink()
    with pytest.raises(UserError, match="refit with emoscope baseline$"):
        Predictor(moved / "runs" / "ens", precision="fp32")
    info = json.loads((moved / "runs" / "ens" / ENSEMBLE_INFO).read_text())
    (moved / "runs" / "ens" / ENSEMBLE_INFO).write_text(json.dumps(dict(info, baseline_weight=0.0)))
    assert Predictor(moved / "runs" / "ens", precision="fp32").baseline is None  # weight 0: not needed


def test_cli_predicts_texts_and_files_with_an_ensemble(project, tmp_path, capsys):
    ens = project / "runs" / "ens"
    assert main(["predict", str(ens), "Thank you so much, this made my day!"]) == 0
    assert "(* = above the emotion's threshold chosen on dev)" in capsys.readouterr().out
    (tmp_path / "in.txt").write_text("so happy for you\nthis is awful\n", encoding="utf-8")
    assert main(["predict", str(ens), "--file", str(tmp_path / "in.txt"), "--out", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == ["so happy for you", "this is awful"]
    assert all(len(r["probs"]) == 28 for r in records)
    # Its thresholds were chosen on its members' full-precision probabilities: int8 members would not fit them.
    assert main(["predict", str(ens), "so happy", "--backend", "onnx-int8"]) == 2
    assert "is an ensemble: its thresholds were chosen on" in capsys.readouterr().err


def test_export_refuses_an_ensemble_in_one_line(project, capsys):
    ens = project / "runs" / "ens"
    assert main(["export", str(ens)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"emoscope: error: {ens} is an ensemble: ensembles do not export to transformers, only single runs do"
    assert not (ens / "hf").exists()


def test_report_shows_the_ensemble_overview(project):
    page = write_report(project / "runs" / "ens").read_text(encoding="utf-8")
    assert 'id="ensemble-table"' in page
    for text in ("../a", "../b", f"../a/{BASELINE}", "baseline weight (chosen on dev)", "training wall time"):
        assert text in page
