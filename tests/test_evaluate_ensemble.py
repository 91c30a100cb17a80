"""`emoscope ensemble`: averaging runs and blending the baseline, everything chosen on dev."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import timed_run

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.core.runfolder import write_labels
from emoscope.evaluate.ensemble import build_ensemble, training_wall_seconds
from emoscope.evaluate.metrics import read_predictions, save_predictions


def labels_of(folder):
    return json.loads((folder / "labels.json").read_text())["labels"]


def oracle_baseline(run, out):
    """A 'baseline' folder whose probabilities are the human labels themselves."""
    labels = labels_of(run)
    (out / "eval").mkdir(parents=True)
    shutil.copy(run / "labels.json", out / "labels.json")
    for split in ("dev", "test"):
        preds = read_predictions(run / "eval" / f"{split}_predictions.jsonl", labels)
        save_predictions(
            out / "eval" / f"{split}_predictions.jsonl",
            preds.texts,
            preds.truth,
            preds.truth.astype(float),
            np.full(len(labels), 0.5),
            labels,
            ids=preds.ids,
        )
    return out


def test_one_run_is_its_own_ensemble(tiny_run, tmp_path):
    build_ensemble([tiny_run], tmp_path / "ens")
    labels = labels_of(tiny_run)
    for split in ("dev", "test"):
        own = read_predictions(tiny_run / "eval" / f"{split}_predictions.jsonl", labels)
        ens = read_predictions(tmp_path / "ens" / "eval" / f"{split}_predictions.jsonl", labels)
        assert ens.ids == own.ids
        np.testing.assert_allclose(ens.probs, own.probs, atol=1e-6)
    assert json.loads((tmp_path / "ens" / "thresholds.json").read_text()) == json.loads(
        (tiny_run / "thresholds.json").read_text()
    )


def test_thresholds_follow_the_members_strategy_unless_one_is_given(tiny_run, tmp_path):
    assert json.loads((tiny_run / "thresholds.json").read_text())["strategy"] == "per_emotion_bagged"  # cpu-default
    assert build_ensemble([tiny_run, tiny_run], tmp_path / "same")["threshold_strategy"] == "per_emotion_bagged"
    assert build_ensemble([tiny_run], tmp_path / "given", threshold_strategy="global")["threshold_strategy"] == "global"
    for other_strategy, chosen_on in (("global", "dev"), ("fixed", None)):
        other = shutil.copytree(tiny_run, tmp_path / other_strategy, ignore=shutil.ignore_patterns("checkpoints"))
        saved = json.loads((other / "thresholds.json").read_text())
        (other / "thresholds.json").write_text(json.dumps(saved | {"strategy": other_strategy, "chosen_on": chosen_on}))
        info = build_ensemble([tiny_run, other], tmp_path / f"mixed-{other_strategy}")
        assert info["threshold_strategy"] == "per_emotion_bagged"  # the project's tuned default
        assert json.loads((tmp_path / f"mixed-{other_strategy}" / "thresholds.json").read_text())["strategy"] == (
            "per_emotion_bagged"
        )
    fixed_alone = build_ensemble([tmp_path / "fixed"], tmp_path / "fixed-alone")
    assert fixed_alone["threshold_strategy"] == "per_emotion_bagged"


def test_baseline_share_is_chosen_on_dev(tiny_run, tmp_path):
    """An oracle baseline must win a share, and lift dev macro-F1 above the run alone."""
    info = build_ensemble([tiny_run, tiny_run], tmp_path / "ens", baseline=oracle_baseline(tiny_run, tmp_path / "b"))
    assert info["baseline_weight"] > 0
    wall = json.loads((tiny_run / "run.json").read_text())["wall_seconds"]
    assert info["train_wall_seconds"] == pytest.approx(wall)  # the same run twice: one span of training
    scan = {float(w): f for w, f in info["dev_macro_f1_by_baseline_weight"].items()}
    assert scan[info["baseline_weight"]] == max(scan.values()) > scan[0.0]
    dev = json.loads((tmp_path / "ens" / "eval" / "dev_metrics.json").read_text())
    assert dev["macro_f1"] == pytest.approx(max(scan.values()))


def test_members_must_score_the_same_examples(tiny_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run / "eval", other / "eval")
    shutil.copy(tiny_run / "labels.json", other / "labels.json")
    path = other / "eval" / "test_predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[1:]))
    with pytest.raises(UserError, match="not for the same examples"):
        build_ensemble([tiny_run, other], tmp_path / "ens")
    (other / "labels.json").unlink()
    with pytest.raises(UserError, match="labels.json is missing"):
        build_ensemble([tiny_run, other], tmp_path / "ens")


def test_cli_writes_a_folder_and_keeps_an_existing_one(tiny_run, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", str(tiny_run), str(tiny_run), "--out", str(out)]) == 0
    assert (out / "eval" / "test_metrics.json").is_file() and (out / "ensemble.json").is_file()
    before = (out / "ensemble.json").read_text()
    assert main(["ensemble", str(tiny_run), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "ensemble.json").read_text() == before


FABRICATED_LABELS = ["joy", "anger", "fear", "neutral"]


def fabricated_folder(out: Path, probs_of_truth) -> Path:
    """A member or baseline folder of made-up predictions on the same 80 dev and 80 test examples:
    `probs_of_truth(split, truth)` gives its probabilities."""
    rng = np.random.default_rng(0)
    write_labels(out, "original", FABRICATED_LABELS)
    for split in ("dev", "test"):
        truth = rng.random((80, len(FABRICATED_LABELS))) < 0.3
        truth[~truth.any(1), -1] = True  # every example has a label (neutral when none other)
        save_predictions(
            out / "eval" / f"{split}_predictions.jsonl",
            [f"{split} text {i}" for i in range(len(truth))],
            truth,
            probs_of_truth(split, truth),
            np.full(len(FABRICATED_LABELS), 0.5),
            FABRICATED_LABELS,
            ids=[f"{split}-{i}" for i in range(len(truth))],
        )
    return out


def weak_member(split, truth):
    """Some signal, much noise: the run a baseline could help."""
    return np.clip(0.4 + 0.15 * truth + np.random.default_rng(1).normal(0, 0.15, truth.shape), 0, 1)


def knows(truth):
    return np.where(truth, 0.9, 0.1)


def misleads(truth):
    return np.where(truth, 0.1, 0.9)


@pytest.mark.parametrize(
    ("baseline_on", "chosen"),
    [
        ({"dev": knows, "test": misleads}, "positive"),  # good on dev, poor on test: dev decides, it gets a share
        ({"dev": misleads, "test": knows}, "zero"),  # poor on dev, good on test: test is never looked at
    ],
)
def test_the_blend_weight_follows_dev_not_test(tmp_path, baseline_on, chosen):
    member = fabricated_folder(tmp_path / "member", weak_member)
    baseline = fabricated_folder(tmp_path / "baseline", lambda split, truth: baseline_on[split](truth))
    out = tmp_path / "ens"
    assert main(["ensemble", str(member), "--baseline", str(baseline), "--out", str(out)]) == 0
    info = json.loads((out / "ensemble.json").read_text())
    assert (info["baseline_weight"] > 0) == (chosen == "positive")
    scan = {float(w): f for w, f in info["dev_macro_f1_by_baseline_weight"].items()}
    assert scan[info["baseline_weight"]] == max(scan.values())


def test_training_time_counts_runs_side_by_side_once(tmp_path):
    def run(name: str, finished: str, seconds: float | None) -> Path:
        return timed_run(tmp_path / name, finished, seconds)

    first = run("a", "2026-12-02T10:10:00", 600.0)  # 10:00-10:10
    after = run("b", "2026-12-02T10:25:00", 600.0)  # 10:15-10:25, one after the other
    beside = run("c", "2026-12-02T10:12:00", 480.0)  # 10:04-10:12, beside the first
    assert training_wall_seconds([first, after]) == pytest.approx(1200.0)
    assert training_wall_seconds([first, beside]) == pytest.approx(720.0)
    assert training_wall_seconds([beside, first, after]) == pytest.approx(1320.0)
    assert training_wall_seconds([first, run("d", "2026-12-02T10:12:00", None)]) is None
