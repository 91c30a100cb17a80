"""`emoscope analyze RUN RUN ... --out DIR`: several runs of the same probe set (seeds, heads, backbones) at once.

`runs_layer_metrics.csv` holds, per epoch, point and metric of `layer_metrics.csv`, the across-run mean, sd
and a 95% t-interval of the mean (the spread over runs, where each run's own file holds the spread over
probe texts). `cross_run_cka.csv` compares every pair of runs layer by layer: linear CKA between point A of
one run and point B of the other at each run's last capture, on the same probe texts, which says which
layer of one model corresponds to which layer of another.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from emoscope.analysis import figures as fig
from emoscope.analysis.pipeline import METRICS, Captures
from emoscope.analysis.probe import read_probe
from emoscope.analysis.structure import linear_cka
from emoscope.core.errors import UserError
from emoscope.core.runfolder import ANALYSIS, probe_path

RUNS_METRICS = "runs_layer_metrics.csv"
CROSS_RUN_CKA = "cross_run_cka.csv"


ACROSS_COLUMNS = ["epoch", "point", "metric", "runs", "mean", "sd", "ci95_low", "ci95_high"]
CKA_COLUMNS = ["run_a", "run_b", "point_a", "point_b", "cka"]


def multi_run_analysis(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write `runs_layer_metrics.csv` and `cross_run_cka.csv` into `out` from runs already analysed (each
    with `analysis/layer_metrics.csv`) whose probe sets have the same ids; return `out`."""
    across, pairs = across_runs(run_dirs), cross_run_cka(run_dirs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig.write_csv(out / RUNS_METRICS, ACROSS_COLUMNS, [[r[c] for c in ACROSS_COLUMNS] for r in across])
    fig.write_csv(out / CROSS_RUN_CKA, CKA_COLUMNS, [[r[c] for c in CKA_COLUMNS] for r in pairs])
    return out


def across_runs(run_dirs: Sequence[str | Path]) -> list[dict]:
    """Per (epoch, point) present in every run and per metric: the runs' mean, sd and 95% t-interval."""
    runs = [Path(r) for r in run_dirs]
    check_same_probe(runs)
    tables = [_layer_metrics(run) for run in runs]
    keys = [k for k in tables[0] if all(k in t for t in tables[1:])]
    if not keys:
        raise UserError(f"{', '.join(map(str, runs))} share no (epoch, point) in analysis/layer_metrics.csv")
    rows = []
    for epoch, point in keys:
        for metric in METRICS:
            values = np.array([t[(epoch, point)][metric] for t in tables])
            mean, sd, low, high = _across(values)
            rows.append(
                {
                    "epoch": epoch,
                    "point": point,
                    "metric": metric,
                    "runs": len(values),
                    "mean": mean,
                    "sd": sd,
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
    return rows


def cross_run_cka(run_dirs: Sequence[str | Path]) -> list[dict]:
    """Linear CKA between every point of one run and every point of another, for every pair of runs, at each
    run's last capture (same probe texts)."""
    runs = [Path(r) for r in run_dirs]
    check_same_probe(runs)
    captures = [Captures(run, None, 1) for run in runs]
    pairs = []
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            last_a, last_b = (captures[k].data[captures[k].epochs[-1]] for k in (a, b))
            for point_a in captures[a].points:
                for point_b in captures[b].points:
                    cka = linear_cka(last_a[point_a], last_b[point_b])
                    pairs.append(
                        {
                            "run_a": str(runs[a]),
                            "run_b": str(runs[b]),
                            "point_a": point_a,
                            "point_b": point_b,
                            "cka": cka,
                        }
                    )
    return pairs


def check_same_probe(run_dirs: Sequence[Path]) -> None:
    """Refuse runs whose probe sets differ (by ids): their numbers describe different texts."""
    if len(run_dirs) < 2:
        raise UserError(f"a multi-run analysis needs at least two runs, got {len(run_dirs)}")
    first = _probe_ids(run_dirs[0])
    for run in run_dirs[1:]:
        if _probe_ids(run) != first:
            raise UserError(f"{run_dirs[0]} and {run} have different probe sets (probe ids differ)")


def _probe_ids(run: Path) -> list[str]:
    path = probe_path(run)
    if not path.is_file():
        raise UserError(f"{path} not found: a multi-run analysis compares the runs' probe texts")
    return read_probe(path)[0]


def _across(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, sd and the 95% t-interval of the mean over runs (NaN where a run lacks the number)."""
    if not np.isfinite(values).all():
        return (math.nan,) * 4
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(student_t.ppf(0.975, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean, sd, mean - half, mean + half


def _layer_metrics(run: Path) -> dict[tuple[int, str], dict[str, float]]:
    path = run / ANALYSIS / "layer_metrics.csv"
    if not path.is_file():
        raise UserError(f"{path} not found: analyse {run} first (emoscope analyze {run})")
    with path.open(newline="", encoding="utf-8") as f:
        return {
            (int(r["epoch"]), r["point"]): {m: float(r[m]) if r[m] else math.nan for m in METRICS}
            for r in csv.DictReader(f)
        }
