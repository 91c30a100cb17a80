"""Distillation for real, small and offline: cross-fitted teachers from the packaged MiniLM on a few hundred
official rows (long enough to train side by side for real), a student distilled from them, and the student's run
folder used like any other. Students that only read their teachers' probabilities use a tiny random BERT: a
student's encoder need not be its teachers', and what is checked of them does not depend on its size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import slice_goemotions, timed_run, train_args
from safetensors.torch import load_file, save_file

from emoscope.cli import main
from emoscope.core.runfolder import read_config, read_labels, sha256_file
from emoscope.data.augment import word_dropped_copies
from emoscope.data.splits import load_data
from emoscope.evaluate.metrics import read_predictions
from emoscope.inference.predictor import Predictor
from emoscope.recipes.distill import OOF_SPLIT, Teachers
from emoscope.train.losses import distillation_loss

MINILM = "all-MiniLM-L6-v2"
NO_DROPOUT = ("--head_dropout", "0", "--backbone_dropout", "0")


@pytest.fixture(scope="module")
def backbone(tiny_models) -> str:
    """The students' encoder."""
    return str(tiny_models["bert"])


@pytest.fixture(scope="module")
def data_dir(goemotions_dir, tmp_path_factory):
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("distill-data"), 240, 48, 48)


@pytest.fixture(scope="module")
def crossfit(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("crossfit") / "teachers"
    assert main(["crossfit", "--folds", "2", *train_args(MINILM, data_dir, out)[1:]]) == 0
    return out


@pytest.fixture(scope="module")
def student(backbone, crossfit, data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("student") / "run"
    assert main(["distill", "--teacher", str(crossfit), *train_args(backbone, data_dir, run)[1:]]) == 0
    return run


def test_cross_fitted_teachers_never_label_a_text_they_trained_on(crossfit):
    labels = read_labels(crossfit)["labels"]
    labelled = {}
    for fold in (0, 1):
        run = crossfit / f"fold_{fold}"
        trained_on = {e.id for e in load_data(read_config(run)).train}  # what the loop was given
        labelled[fold] = read_predictions(run / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels).ids
        assert trained_on and labelled[fold]
        assert not trained_on & set(labelled[fold])
    every = read_predictions(crossfit / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels)
    assert sorted(every.ids) == sorted(labelled[0] + labelled[1])
    assert len(every.ids) == 240 and json.loads((crossfit / "crossfit.json").read_text())["folds"] == 2


def test_teachers_trained_side_by_side_are_the_teachers_trained_in_turn(crossfit, data_dir, tmp_path):
    out = tmp_path / "teachers"
    args = train_args(MINILM, data_dir, out, "--num_threads", str(2 * torch.get_num_threads()))[1:]
    assert main(["crossfit", "--folds", "2", "--jobs", "2", *args]) == 0  # each teacher: this process's threads
    labels = read_labels(crossfit)["labels"]
    in_turn = read_predictions(crossfit / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels)
    beside = read_predictions(out / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels)
    assert beside.ids == in_turn.ids
    np.testing.assert_allclose(beside.probs, in_turn.probs, rtol=0, atol=1e-4)
    assert [read_config(out / f"fold_{k}").num_threads for k in (0, 1)] == [torch.get_num_threads()] * 2
    walls = [json.loads((out / f"fold_{k}" / "run.json").read_text())["wall_seconds"] for k in (0, 1)]
    assert json.loads((out / "ensemble.json").read_text())["train_wall_seconds"] < 0.8 * sum(walls)  # overlapped


def test_a_crossfit_folder_is_an_ensemble_model(crossfit):
    predictor = Predictor(crossfit)
    saved = read_predictions(crossfit / "eval" / "dev_predictions.jsonl", predictor.labels)
    np.testing.assert_allclose(predictor.predict_proba(saved.texts), saved.probs, rtol=0, atol=1e-6)


def test_the_student_learns_from_the_out_of_fold_labels_cached_once(backbone, student, crossfit, capsys):
    labels = read_labels(student)["labels"]
    cached = np.load(student / "teachers" / "train_probs.npy")
    oof = read_predictions(crossfit / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels)
    row = {i: n for n, i in enumerate(oof.ids)}
    train_ids = [e.id for e in load_data(read_config(student)).train]
    np.testing.assert_allclose(cached, oof.probs[[row[i] for i in train_ids]], rtol=0, atol=1e-6)
    provenance = json.loads((student / "teachers" / "teachers.json").read_text())
    assert [t["kind"] for t in provenance["teachers"]] == ["crossfit"]
    assert read_config(student).teachers == [str(crossfit)]
    info = json.loads((student / "run.json").read_text())
    assert info["total_wall_seconds"] == pytest.approx(info["wall_seconds"] + info["teachers_wall_seconds"], abs=0.2)

    written = (student / "teachers" / "train_probs.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(crossfit),
                "--resume",
                *train_args(backbone, read_config(student).data_dir, student)[1:],
            ]
        )
        == 0
    )
    assert "probabilities on train read from" in capsys.readouterr().out
    assert (student / "teachers" / "train_probs.npy").stat().st_mtime_ns == written


def test_each_word_dropped_copy_is_scored_by_the_teacher_that_never_saw_its_original(
    backbone, crossfit, data_dir, tmp_path
):
    run = tmp_path / "run"
    extra = ("--augment_copies", "1", "--augment_word_drop", "0.3", "--max_train_examples", "32")
    assert main(["distill", "--teacher", str(crossfit), *train_args(backbone, data_dir, run, *extra)[1:]]) == 0
    labels = read_labels(run)["labels"]
    train = load_data(read_config(run)).train
    copies, origin = word_dropped_copies(train, 1, 0.3, read_config(run).seed)
    assert origin == list(range(32)) and sum(c.text != e.text for c, e in zip(copies, train, strict=True)) > 20
    cached = np.load(run / "teachers" / "train_probs.npy")
    assert cached.shape == (64, len(labels))
    oof = read_predictions(crossfit / "eval" / f"{OOF_SPLIT}_predictions.jsonl", labels)
    row = {i: n for n, i in enumerate(oof.ids)}
    np.testing.assert_allclose(cached[:32], oof.probs[[row[e.id] for e in train]], rtol=0, atol=1e-6)
    for fold in (0, 1):
        teacher = crossfit / f"fold_{fold}"
        never_saw = {i for i in row if i not in {e.id for e in load_data(read_config(teacher)).train}}
        mine = [n for n, e in enumerate(train) if e.id in never_saw]
        assert mine
        expected = Predictor(teacher).predict_proba([copies[n].text for n in mine])
        np.testing.assert_allclose(cached[[32 + n for n in mine]], expected, rtol=0, atol=1e-5)
    assert json.loads((run / "teachers" / "teachers.json").read_text())["train_examples"] == 64


def test_the_teachers_time_counts_teachers_trained_side_by_side_once(tmp_path):
    def run(name: str, finished: str, seconds: float) -> Path:
        return timed_run(tmp_path / name, finished, seconds)

    first = run("a", "2026-12-02T10:10:00", 600.0)  # 10:00-10:10
    beside = run("b", "2026-12-02T10:12:00", 480.0)  # 10:04-10:12, in another folder
    after = run("c", "2026-12-02T10:25:00", 300.0)  # 10:20-10:25
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "ensemble.json").write_text(json.dumps({"runs": ["../a", "../c"], "train_wall_seconds": 900.0}))
    assert Teachers([first, beside]).wall_seconds() == pytest.approx(720.0)
    assert Teachers([ensemble, beside]).wall_seconds() == pytest.approx(1020.0)  # a's span once, c's after it
    assert Teachers([ensemble, first]).wall_seconds() == pytest.approx(900.0)
    shutil.rmtree(after)
    assert Teachers([ensemble]).wall_seconds() is None  # a member is gone: the time is unknown, not wrong


def test_a_student_can_start_from_its_teachers_weight_average(crossfit, data_dir, tmp_path):
    folds = [crossfit / f"fold_{k}" / "model.safetensors" for k in (0, 1)]
    teachers = [load_file(f) for f in folds]
    soup = {name: (teachers[0][name] + teachers[1][name]) / 2 for name in teachers[0]}
    run = tmp_path / "run"
    # one step of batch 16, from another seed than the teachers' (whose head started from the same random draw)
    args = train_args(MINILM, data_dir, run, "--max_train_examples", "16", "--seed", "7")[1:]
    assert main(["distill", "--teacher", str(crossfit), "--init_from", str(crossfit), *args]) == 0
    student = load_file(run / "model.safetensors")
    assert max((student[name] - soup[name]).abs().max() for name in soup) < 2e-3  # one step away from the soup
    info = json.loads((run / "run.json").read_text())
    assert [entry["sha256"] for entry in info["init_from"]] == [sha256_file(f) for f in folds]
    # the runs behind --init_from are the teachers' own: their time counts once
    assert info["total_wall_seconds"] == pytest.approx(info["wall_seconds"] + info["teachers_wall_seconds"], abs=0.2)


def test_weights_that_do_not_fit_are_refused_before_anything_is_written(crossfit, data_dir, tmp_path, capsys):
    def folder(name: str, tensors: dict | None) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "run.json").write_text("{}")
        if tensors is not None:
            save_file(tensors, str(path / "model.safetensors"))
        return path

    other = folder("other", {"head.classifier.weight": torch.zeros(3, 4)})
    for given, problem in [
        ([folder("unfinished", None)], "not found: --init_from needs finished runs"),
        ([other], "do not fit this model"),
        ([crossfit, other], "holds other tensors than"),
    ]:
        run = tmp_path / "run"
        capsys.readouterr()
        args = ["distill", "--teacher", str(crossfit), "--init_from", *map(str, given)]
        assert main([*args, *train_args(MINILM, data_dir, run)[1:]]) == 2
        err = capsys.readouterr().err.strip()
        assert problem in err and len(err.splitlines()) == 1
        assert not run.exists()


def test_the_student_is_an_ordinary_run_folder(student, tmp_path, capsys):
    assert main(["predict", str(student), "thank you so much!"]) == 0
    assert "(* = above the emotion's threshold chosen on dev)" in capsys.readouterr().out
    assert main(["export", str(student), "--out", str(tmp_path / "hf")]) == 0
    assert main(["evaluate", str(student), "--split", "dev"]) == 0
    assert main(["report", str(student)]) == 0
    assert (student / "report.html").is_file() and (tmp_path / "hf" / "model.safetensors").is_file()


def test_distilling_from_teachers_that_do_not_cover_train_stops_before_training(
    backbone, crossfit, goemotions_dir, tmp_path, capsys
):
    more = slice_goemotions(goemotions_dir, tmp_path, 260, 48, 48)  # 20 train rows the teachers never labelled
    run = tmp_path / "run"
    assert main(["distill", "--teacher", str(crossfit), *train_args(backbone, more, run)[1:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no out-of-fold label for 20 of the 260 train texts" in err
    assert not (run / "model.safetensors").exists()


def test_a_folder_that_is_no_teacher_is_refused_before_anything_is_written(backbone, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["distill", "--teacher", str(tmp_path), *train_args(backbone, data_dir, run)[1:]]) == 2
    assert capsys.readouterr().err == f"emoscope: error: teacher {tmp_path} is not a run, ensemble or crossfit folder\n"
    assert not run.exists()
    assert main(["distill", *train_args(backbone, data_dir, run)[1:]]) == 2
    assert "needs at least one --teacher" in capsys.readouterr().err


def test_the_soft_label_loss():
    torch.manual_seed(0)
    logits, teacher = torch.randn(4, 6), torch.rand(4, 6)
    plain = F.binary_cross_entropy_with_logits(logits, teacher, reduction="none").mean(1)
    torch.testing.assert_close(distillation_loss(logits, teacher, 1.0), plain)
    for temperature in (1.0, 2.0, 4.0):  # a student that matches its teacher has nothing left to learn
        student = torch.logit(teacher).clone().requires_grad_(True)
        distillation_loss(student, teacher, temperature).sum().backward()
        assert student.grad.abs().max() < 1e-5


def test_the_copies_soft_label_share_weighs_the_copies_rows(backbone, crossfit, data_dir, tmp_path):
    # Copies that drop no word are their originals again, scored by the same teacher: with no dropout, in one
    # batch of 8 texts and their 8 copies, shares 0.2 (texts) and 0.8 (copies) add up to the loss of 0.5 for
    # both. The loss is compared, not the weights: Adam's first step is about lr times the gradient's sign,
    # which rounding flips where a gradient is near zero.
    def loss(name: str, *extra: str) -> float:
        run = tmp_path / name
        options = (
            "--max_train_examples",
            "8",
            "--augment_copies",
            "1",
            "--augment_word_drop",
            "0",
            *NO_DROPOUT,
            *extra,
        )
        args = train_args(backbone, data_dir, run, *options, "--lexical_baseline", "false")[1:]
        assert main(["distill", "--teacher", str(crossfit), *args]) == 0
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return next(e["train_loss"] for e in epochs if e["kind"] == "epoch")

    even = loss("even", "--distill_weight", "0.5")
    assert loss("split", "--distill_weight", "0.2", "--copies_distill_weight", "0.8") == pytest.approx(even, rel=1e-5)
    assert loss("texts", "--distill_weight", "0.2") != pytest.approx(even, rel=1e-3)
