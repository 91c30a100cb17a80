"""`write_comparison(run_dirs, out_path)`: several runs (or baselines) side by side on one page."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emoscope.analysis.multirun import across_runs, cross_run_cka
from emoscope.core import runfolder as rf
from emoscope.core.errors import UserError
from emoscope.report import _html as h
from emoscope.report import charts as F
from emoscope.report.page import Page, section
from emoscope.report.reader import Matrix, RunData, flatten, to_number

COMPARISON_SECTIONS: tuple[tuple[str, str], ...] = (
    ("runs", "Runs"),
    ("summary", "Summary metrics"),
    ("per-emotion-f1", "F1 per emotion"),
    ("layers", "Alignment by depth"),
    ("across-runs", "Across runs"),
)
COMPARISON_SECTION_IDS = tuple(s for s, _ in COMPARISON_SECTIONS)

_FIRST = ("macro_f1", "micro_f1", "weighted_f1", "samples_f1", "macro_precision", "macro_recall", "macro_auc")
_LOWER_IS_BETTER = ("hamming", "loss")


def write_comparison(run_dirs: Sequence[str | Path], out_path: str | Path) -> Path:
    """Write one self-contained page comparing the given run folders; return its path.

    A "run" may be a baseline folder with only labels.json, thresholds.json and eval/; whatever a folder
    lacks is reported as not available for that run.
    """
    if not run_dirs:
        raise UserError("give at least one run folder to compare")
    runs = [RunData.open(d) for d in run_dirs]
    names = _unique_names(runs)
    pg = Page()
    body = "".join(
        [
            section("runs", "Runs", _runs(runs, names)),
            section("summary", "Summary metrics", _summary(runs, names)),
            section("per-emotion-f1", "F1 per emotion", _per_emotion(runs, names, pg)),
            section("layers", "Alignment by depth", _layers(runs, names, pg)),
            section("across-runs", "Across runs", _across_runs(runs, names, pg)),
        ]
    )
    out = Path(out_path)
    if out.is_dir():
        out = out / "comparison.html"
    sub = (
        f"{len(runs)} run(s): "
        + ", ".join(f"<code>{h.esc(n)}</code>" for n in names)
        + f" \u00b7 written {h.esc(_dt.datetime.now().astimezone().isoformat(timespec='seconds'))}"
    )
    html = pg.html(title="emoscope comparison", subtitle_html=sub, nav=COMPARISON_SECTIONS, body_html=body)
    h.write_atomic(out, html)
    return out


def _unique_names(runs: list[RunData]) -> list[str]:
    names = [r.name for r in runs]
    out = []
    for i, r in enumerate(runs):
        n = r.name
        if names.count(n) > 1:
            n = f"{r.path.parent.name}/{r.name}"
            if sum(1 for x in runs if f"{x.path.parent.name}/{x.name}" == n) > 1:
                n = f"{n} #{i + 1}"
        out.append(n)
    return out


def _kind(r: RunData) -> str:
    if (r.path / rf.ENSEMBLE_INFO).is_file():
        return "ensemble"
    return "run" if (r.path / rf.RUN_INFO).is_file() or (r.path / rf.METRICS_LOG).is_file() else "baseline"


def _config_value(r: RunData, *suffixes: str) -> Any:
    for k, v in flatten(r.config or {}):
        if k.split(".")[-1] in suffixes:
            return v
    return None


def _runs(runs: list[RunData], names: list[str]) -> str:
    rows = []
    for r, n in zip(runs, names, strict=True):
        th = r.thresholds
        epochs = r.epochs or []
        rows.append(
            [
                n,
                _kind(r),
                r.taxonomy or "\u2013",
                len(r.labels),
                _config_value(r, "backbone", "model_name", "model"),
                _config_value(r, "head"),
                len(epochs) if epochs else None,
                th and th.strategy,
                th and th.chosen_on,
                r.main_split,
                str(r.path),
            ]
        )
    return h.table(
        [
            "run",
            "kind",
            "taxonomy",
            "labels",
            "backbone",
            "head",
            "epochs",
            "thresholds",
            "chosen on",
            "eval split",
            "folder",
        ],
        rows,
        table_id="runs-table",
    )


def _metric_keys(flat: dict[str, dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for values in flat.values():
        for k, v in values.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)

    def rank(k: str) -> int:
        norm = k.replace(".", "_").lower()
        return _FIRST.index(norm) if norm in _FIRST else len(_FIRST)

    return sorted(keys, key=lambda k: (rank(k), keys.index(k)))


def _summary(runs: list[RunData], names: list[str]) -> str:
    flat: dict[str, dict[str, Any]] = {}
    splits = {}
    for r, n in zip(runs, names, strict=True):
        split = (
            "test"
            if "test" in r.splits and r.eval_metrics("test") is not None
            else next((s for s in r.splits if r.eval_metrics(s) is not None), None)
        )
        splits[n] = split
        flat[n] = dict(r.flat_metrics(split) or []) if split else {}
    keys = _metric_keys(flat)
    if not keys:
        return h.note("Not available: none of the runs has <code>eval/&lt;split&gt;_metrics.json</code>.")
    out = [
        "<thead><tr><th>metric</th>"
        + "".join(f'<th>{h.esc(n)}<br><span class="muted">{h.esc(splits[n] or "no eval")}</span></th>' for n in names)
        + "</tr></thead><tbody>"
    ]
    for k in keys:
        vals = [flat[n].get(k) for n in names]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        lower = any(t in k.lower() for t in _LOWER_IS_BETTER)
        countlike = k.lower().startswith("n_") or any(t in k.lower() for t in ("support", "count", "_ci"))
        best = None
        if len(set(nums)) > 1 and not countlike:
            best = min(nums) if lower else max(nums)
        cells = "".join(
            f'<td class="num{" best" if best is not None and v == best else ""}">{h.esc(h.fmt(v))}</td>' for v in vals
        )
        out.append(f"<tr><td>{h.esc(k)}</td>{cells}</tr>")
    out.append("</tbody>")
    missing = [n for n in names if not flat[n]]
    extra = h.note("No evaluation metrics for: " + ", ".join(h.esc(n) for n in missing)) if missing else ""
    return (
        "<p>Best value per row in bold (lower is better for Hamming loss).</p>"
        f'<table class="data" id="summary-table">{"".join(out)}</table>' + extra
    )


def _per_emotion(runs: list[RunData], names: list[str], pg: Page) -> str:
    per: dict[str, dict[str, dict]] = {}
    labels: list[str] = []
    for r, n in zip(runs, names, strict=True):
        split = (
            "test"
            if r.per_emotion("test") is not None
            else next((s for s in r.splits if r.per_emotion(s) is not None), None)
        )
        rows = r.per_emotion(split) if split else None
        if rows:
            per[n] = {row["label"]: row for row in rows}
            for lab in r.labels or [row["label"] for row in rows]:
                if lab not in labels:
                    labels.append(lab)
    if not per:
        return h.note("Not available: none of the runs has <code>eval/&lt;split&gt;_per_emotion.csv</code>.")
    f1_by_run = {n: [per[n].get(lab, {}).get("f1") for lab in labels] for n in names if n in per}
    fig = F.grouped_f1_bars(labels, f1_by_run)
    out = [pg.figure("fig-compare-f1", fig, height=520)]
    cols = [n for n in names if n in per]
    rows = [[lab] + [per[n].get(lab, {}).get("f1") for n in cols] for lab in labels]
    out.append(
        '<div class="scroll">'
        + h.table(["label", *cols], rows, table_id="compare-f1-table", sortable=True, digits=3)
        + "</div>"
    )
    missing = [n for n in names if n not in per]
    if missing:
        out.append(h.note("No per-emotion table for: " + ", ".join(h.esc(n) for n in missing)))
    return "".join(out)


def _layers(runs: list[RunData], names: list[str], pg: Page) -> str:
    rows: list[dict] = []
    metrics: list[str] = []
    have, missing = [], []
    for r, n in zip(runs, names, strict=True):
        lm = r.layer_metrics
        if not lm:
            missing.append(n)
            continue
        have.append(n)
        last = max((x["epoch"] for x in lm if isinstance(x.get("epoch"), (int, float))), default=None)
        for x in lm:
            if last is None or x.get("epoch") == last:
                rows.append({**x, "run": n})
        for m in r.layer_metric_names():
            if m not in metrics:
                metrics.append(m)
    out = []
    if rows:
        figs = F.layer_metric_figures(rows, metrics, by="run", title_prefix="last epoch: ")
        default = "probe_macro_f1" if "probe_macro_f1" in figs else metrics[0]
        out.append(
            "<p>Each run's <code>analysis/layer_metrics.csv</code> at its last epoch, against depth "
            "(hover a marker for the hook point's name).</p>"
        )
        out.append(pg.figure_set("fig-compare-layers", figs, label="metric", selected=default, height=480))
    if missing:
        out.append(
            h.note(
                "Not available for "
                + ", ".join(h.esc(n) for n in missing)
                + ": no <code>analysis/layer_metrics.csv</code> (baseline, or run "
                "<code>emoscope analyze RUN_DIR</code>)."
            )
        )
    if rows:
        table_rows = []
        for n in have:
            sub = [x for x in rows if x["run"] == n]
            for x in sorted(sub, key=lambda x: to_number(x.get("depth")) or 0):
                table_rows.append([n, x.get("epoch"), x.get("point"), x.get("depth")] + [x.get(m) for m in metrics])
        out.append(
            '<details><summary>the numbers</summary><div class="scroll">'
            + h.table(
                ["run", "epoch", "point", "depth", *metrics],
                table_rows,
                table_id="compare-layer-table",
                sortable=True,
                digits=3,
            )
            + "</div></details>"
        )
    return "".join(out)


def _across_runs(runs: list[RunData], names: list[str], pg: Page) -> str:
    """The runs as repeats of one experiment (seeds): each metric's mean over runs with its 95% t-interval
    by depth, and which layer of one run matches which layer of another (cross-run CKA)."""
    analysed = [(r, n) for r, n in zip(runs, names, strict=True) if r.layer_metrics]
    if len(analysed) < 2:
        return h.note(
            "Not available: fewer than two of the runs have <code>analysis/layer_metrics.csv</code>; "
            "across-run numbers need at least two analysed runs of one probe set."
        )
    paths = [r.path for r, _ in analysed]
    try:
        rows, pairs = across_runs(paths), cross_run_cka(paths)
    except UserError as exc:
        return h.note(f"Not available: {h.esc(exc)}")
    last = max(r["epoch"] for r in rows)
    depth = {x["point"]: x["depth"] for x in analysed[0][0].layer_metrics if x.get("epoch") == last}
    series = f"mean of {len(paths)} runs"
    points: dict[str, dict] = {}
    for r in rows:
        if r["epoch"] == last and r["point"] in depth:
            point = points.setdefault(r["point"], {"series": series, "point": r["point"], "depth": depth[r["point"]]})
            point[r["metric"]] = r["mean"]
            point[f"{r['metric']}_ci95_low"], point[f"{r['metric']}_ci95_high"] = r["ci95_low"], r["ci95_high"]
    metrics = [
        m for m in dict.fromkeys(r["metric"] for r in rows) if any(p.get(m) is not None for p in points.values())
    ]
    out = [
        f"<p>{len(paths)} runs on the same probe texts ({', '.join(h.esc(n) for _, n in analysed)}), read as "
        f"repeats of one experiment: each metric's mean over the runs at epoch {last}, with the 95% t-interval "
        "of that mean (the spread over runs; each run's own report shows the spread over probe texts).</p>"
    ]
    if points and metrics:
        figs = F.layer_metric_figures(list(points.values()), metrics, by="series", title_prefix="across runs: ")
        selected = "probe_macro_f1" if "probe_macro_f1" in figs else metrics[0]
        out.append(pg.figure_set("fig-across-runs", figs, label="metric", selected=selected, height=480))
    label = {str(r.path): n for r, n in analysed}
    heatmaps = {}
    for a, b in dict.fromkeys((p["run_a"], p["run_b"]) for p in pairs):
        sub = [p for p in pairs if (p["run_a"], p["run_b"]) == (a, b)]
        rows_a, cols_b = list(dict.fromkeys(p["point_a"] for p in sub)), list(dict.fromkeys(p["point_b"] for p in sub))
        z = [
            [next(p["cka"] for p in sub if (p["point_a"], p["point_b"]) == (ra, cb)) for cb in cols_b] for ra in rows_a
        ]
        title = f"linear CKA: {label[a]} (rows) x {label[b]} (columns)"
        heatmaps[f"{label[a]} x {label[b]}"] = F.heatmap(title, Matrix(rows_a, cols_b, z), zmin=0, zmax=1, height=520)
    out.append(
        "<p>Which layer of one run corresponds to which layer of another: linear CKA between their points at the "
        "last capture, on the same probe texts (1: the same geometry up to rotation and scale).</p>"
    )
    out.append(pg.figure_set("fig-cross-run-cka", heatmaps, label="pair of runs", height=540))
    table = [
        [r["epoch"], r["point"], r["metric"], r["runs"], r["mean"], r["sd"], r["ci95_low"], r["ci95_high"]]
        for r in rows
    ]
    out.append(
        '<details><summary>the numbers</summary><div class="scroll">'
        + h.table(
            ["epoch", "point", "metric", "runs", "mean", "sd", "ci95 low", "ci95 high"],
            table,
            table_id="across-runs-table",
            sortable=True,
            digits=3,
        )
        + "</div></details>"
    )
    return "".join(out)
