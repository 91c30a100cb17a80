"""`emoscope analyze RUN RUN ... --out DIR`: across-run spread and cross-run CKA on one probe set."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from test_analysis_support import make_synthetic_run
from test_report_page import page_data, section_html

from emoscope.analysis import run_analysis
from emoscope.analysis.multirun import CROSS_RUN_CKA, RUNS_METRICS, multi_run_analysis
from emoscope.analysis.pipeline import Uncertainty
from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.core.runfolder import probe_path
from emoscope.report import write_comparison


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    first = make_synthetic_run(root / "a", n_probe=120, n_layers=2, dim=16, epochs=2, onset=1, n_test=40)
    (first / "eval" / "test_predictions.jsonl").unlink()
    run_analysis(first, tsne=False, uncertainty=Uncertainty(resamples=20, permutations=20))
    return [first, shutil.copytree(first, root / "b"), shutil.copytree(first, root / "c")]


def test_identical_runs_have_no_spread_and_match_layer_for_layer(three_runs, tmp_path):
    out = multi_run_analysis(three_runs, tmp_path / "out")
    rows = list(csv.DictReader((out / RUNS_METRICS).open()))
    assert {r["runs"] for r in rows} == {"3"} and len(rows) > 0
    defined = [r for r in rows if r["sd"]]
    assert defined and all(float(r["sd"]) == pytest.approx(0, abs=1e-12) for r in defined)
    assert all(float(r["ci95_high"]) - float(r["ci95_low"]) == pytest.approx(0, abs=1e-12) for r in defined)
    cka = list(csv.DictReader((out / CROSS_RUN_CKA).open()))
    assert len({(r["run_a"], r["run_b"]) for r in cka}) == 3  # every pair of runs
    diagonal = [float(r["cka"]) for r in cka if r["point_a"] == r["point_b"]]
    assert diagonal and all(v == pytest.approx(1.0, abs=1e-6) for v in diagonal)


def test_runs_with_different_probe_sets_are_refused_before_anything_is_written(three_runs, tmp_path):
    other = shutil.copytree(three_runs[0], tmp_path / "other")
    lines = probe_path(other).read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "id": "someone-else"})
    probe_path(other).write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"{three_runs[0]} and {other} have different probe sets"):
        multi_run_analysis([three_runs[0], other], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["analyze", str(three_runs[0]), str(other), "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()


def test_compare_reads_the_runs_as_repeats_of_one_experiment(three_runs, tmp_path):
    other_seed = make_synthetic_run(
        tmp_path / "d", n_probe=120, n_layers=2, dim=16, epochs=2, onset=1, n_test=40, seed=1
    )
    run_analysis(other_seed, tsne=False, uncertainty=Uncertainty(resamples=20, permutations=20))
    pair = [three_runs[0], other_seed]
    html = write_comparison(pair, tmp_path / "compare.html").read_text(encoding="utf-8")
    figures = page_data(html)["figureSets"]["fig-across-runs"]["probe_macro_f1"]["data"]
    band, line = figures
    assert line["name"] == "mean of 2 runs"
    tables = [list(csv.DictReader((run / "analysis" / "layer_metrics.csv").open())) for run in pair]
    for x, point, y in zip(line["x"], line["text"], line["y"], strict=True):
        values = [
            float(next(r for r in t if r["epoch"] == "1" and r["point"] == point)["probe_macro_f1"]) for t in tables
        ]
        assert y == pytest.approx(sum(values) / 2), point
        assert x == float(next(r for r in tables[0] if r["point"] == point)["depth"])
    assert len(band["y"]) == 2 * len(line["y"]) and max(band["y"]) > min(band["y"])
    cka = page_data(html)["figureSets"]["fig-cross-run-cka"]
    [(name, heatmap)] = cka.items()
    assert name == "a x d" and len(heatmap["data"][0]["z"]) == len(line["x"])

    moved = shutil.copytree(other_seed, tmp_path / "moved")
    probe_path(moved).write_text(probe_path(moved).read_text().replace('"p0"', '"q0"'))
    html = write_comparison([three_runs[0], moved], tmp_path / "refused.html").read_text(encoding="utf-8")
    assert "Not available: " in section_html(html, "across-runs")
    assert "different probe sets" in section_html(html, "across-runs")
