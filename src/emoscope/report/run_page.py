"""`write_report(run_dir)`: one self-contained HTML page for a run folder."""

from __future__ import annotations

import datetime as _dt
import math
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from emoscope.analysis.summary import comparison, with_ci
from emoscope.core import runfolder as rf
from emoscope.core.config import config_from_values, preset_differences
from emoscope.core.errors import UserError
from emoscope.core.vocab import ABLATION_KINDS
from emoscope.data.labels import SENTIMENT_LABELS, sentiment_colour, text_sentiment
from emoscope.evaluate.metrics import per_label_scores
from emoscope.report import _html as h
from emoscope.report import charts as F
from emoscope.report.page import Page, section
from emoscope.report.reader import RunData, flatten, to_number

# Section ids, in page order (tests and links rely on them).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("training", "Training"),
    ("metrics", "Test metrics"),
    ("per-emotion", "Per emotion"),
    ("confusion", "Confusion"),
    ("misclassification", "Misclassification"),
    ("correlation", "Model vs human"),
    ("dendrograms", "Dendrograms"),
    ("layers", "Layers"),
    ("tsne", "t-SNE"),
    ("mistakes", "Confident mistakes"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)

ABLATION_TITLES = dict(zip(ABLATION_KINDS, ("layer reset", "layer's update replaced by its probe mean"), strict=True))
_PREFERRED_METRICS = ("macro_f1", "micro_f1", "weighted_f1", "samples_f1")


def write_report(run_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write RUN_DIR/report.html (or `out_path`) and return its path.

    Reads only the run folder. Sections whose inputs are missing say so instead of failing; malformed
    inputs raise `DataError` (one line naming the file and line).
    """
    rd = RunData.open(run_dir)
    out = Path(out_path) if out_path is not None else rd.path / rf.REPORT
    pg = Page()
    builders = {
        "overview": _overview,
        "training": _training,
        "metrics": _metrics,
        "per-emotion": _per_emotion,
        "confusion": _confusion,
        "misclassification": _misclassification,
        "correlation": _correlation,
        "dendrograms": _dendrograms,
        "layers": _layers,
        "tsne": _tsne,
        "mistakes": _mistakes,
    }
    body = "".join(section(sid, title, builders[sid](rd, pg)) for sid, title in SECTIONS)
    info = rd.run_info or {}
    sub = [f"run folder <code>{h.esc(rd.path)}</code>"]
    if info.get("started"):
        sub.append(f"started {h.esc(info['started'])}")
    if info.get("emoscope"):
        sub.append(f"emoscope {h.esc(info['emoscope'])}")
    sub.append(f"report written {h.esc(_dt.datetime.now().astimezone().isoformat(timespec='seconds'))}")
    html = pg.html(
        title=f"emoscope report \u2013 {rd.name}",
        subtitle_html=" \u00b7 ".join(sub),
        nav=SECTIONS,
        body_html=body,
    )
    h.write_atomic(out, html)
    return out


# --- helpers -------------------------------------------------------------------------------------------


def _analysis_note(rd: RunData, what: str) -> str:
    if not rd.analysis_dir.is_dir():
        why = "this run has no <code>analysis/</code> folder (trained without <code>--visualize</code>?)"
    else:
        why = f"<code>analysis/{h.esc(what)}</code> not found"
    return h.note(f"Not available: {why}. Run <code>emoscope analyze {h.esc(rd.path)}</code> to create it.")


def _png_block(rd: RunData, stem: str, alt: str, *, open_: bool = False, summary: str = "static figure") -> str:
    p = rd.analysis_file(f"{stem}.png")
    if p is None:
        return ""
    return f"<details{' open' if open_ else ''}><summary>{h.esc(summary)}</summary>{h.image(p, alt)}</details>"


def _duration(seconds: Any) -> str:
    s = to_number(seconds)
    if s is None:
        return h.fmt(seconds)
    s = float(s)
    hours, rem = divmod(int(round(s)), 3600)
    minutes, secs = divmod(rem, 60)
    text = f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
    return f"{text} ({s:.0f} s)"


def _metric_value(rd: RunData, split: str | None, name: str) -> Any:
    if not split:
        return None
    want = name.replace("-", "_").lower()
    for k, v in rd.flat_metrics(split) or []:
        if k.replace(".", "_").replace("-", "_").lower() in (want, f"{want}_value", f"{want}_mean"):
            return v
    return None


def _card(k: str, v: str) -> str:
    return f'<div class="card"><div class="v">{h.esc(v)}</div><div class="k">{h.esc(k)}</div></div>'


def _best_epoch(rd: RunData) -> tuple[Any, Any] | None:
    best = None
    for e in rd.epochs or []:
        v = to_number(e.get("dev_macro_f1"))
        if v is not None and (best is None or v > best[1]):
            best = (e.get("epoch"), v)
    return best


# --- sections ------------------------------------------------------------------------------------------


def _overview(rd: RunData, pg: Page) -> str:
    info = rd.run_info
    split = rd.main_split
    cards = []
    if rd.labels:
        cards.append(_card("labels", f"{len(rd.labels)} ({rd.taxonomy or 'unknown taxonomy'})"))
    for name in ("macro_f1", "micro_f1"):
        v = _metric_value(rd, split, name)
        low, high = (_metric_value(rd, split, f"{name}_ci95_{end}") for end in ("low", "high"))
        if isinstance(v, (int, float)):
            ci = isinstance(low, (int, float)) and isinstance(high, (int, float))
            label = f"{split} {name.replace('_', ' ')}{' (95% CI)' if ci else ''}"
            cards.append(_card(label, f"{v:.4f}" + (f" [{low:.3f}, {high:.3f}]" if ci else "")))
    floor = rd.lexical_floor
    model_f1 = _metric_value(rd, split, "macro_f1")
    floor_f1 = _metric_value(floor, split, "macro_f1") if floor is not None else None
    if isinstance(model_f1, (int, float)) and isinstance(floor_f1, (int, float)):
        cards.append(_card(f"above the TF-IDF floor ({floor_f1:.4f}), {split} macro F1", f"{model_f1 - floor_f1:+.4f}"))
    if (best := _best_epoch(rd)) is not None:
        cards.append(_card("best epoch (dev macro F1)", f"{best[0]} ({best[1]:.4f})"))
    if info and info.get("wall_seconds") is not None:
        cards.append(_card("wall time", _duration(info["wall_seconds"]).split(" (")[0]))
    if info and info.get("world_size") is not None:
        cards.append(_card("world size", str(info["world_size"])))
    out = [f'<div class="cards">{"".join(cards)}</div>'] if cards else []
    if rd.ensemble_info is not None:
        out.append(_ensemble_overview(rd.ensemble_info))
    if (split := _per_emotion_split(rd)) is not None:  # what a reader came for first: results, then the setup
        out.append(f'<h3 id="per-emotion-f1">F1 per emotion ({h.esc(split)})</h3>')
        bars = F.per_emotion_f1_bar(rd.per_emotion(split), rd.sentiment_group)
        out.append(pg.figure("fig-per-emotion-f1", bars, height=460))
    if rd.summary is not None:
        out.append(
            '<h3 id="layer-findings">Layer findings</h3><div class="md">'
            + _separation_html(rd.summary)
            + '</div><p>The numbers behind them, and more, under <a href="#layers">Layers</a>.</p>'
        )

    left = [f"<h3>Configuration ({rf.CONFIG})</h3>"]
    if rd.config is None:
        left.append(h.note(f"Not available: <code>{rf.CONFIG}</code> not found (a baseline has none)."))
    elif not rd.config:
        left.append(h.note(f"{rf.CONFIG} is empty."))
    else:
        left.append(_configuration(rd.config))
    right = [f"<h3>Environment ({rf.RUN_INFO})</h3>"]
    if info is None:
        right.append(h.note(f"Not available: <code>{rf.RUN_INFO}</code> not found (a baseline has none)."))
    else:
        pairs = []
        for k, v in flatten(info):
            if k == "wall_seconds":
                v = _duration(v)
            pairs.append((k.replace("_", " "), v))
        right.append(_folded(f"{len(pairs)} entries", h.kv_table(pairs, table_id="environment-table")))
    out.append(f'<div class="cols"><div>{"".join(left)}</div><div>{"".join(right)}</div></div>')
    return "".join(out)


def _folded(summary: str, body_html: str) -> str:
    return f"<details><summary>{h.esc(summary)}</summary>{body_html}</details>"


def _configuration(values: dict) -> str:
    """Where the run departs from its preset, the whole configuration folded away; a config.yaml this version
    does not read as a TrainConfig is shown whole."""
    full = h.kv_table(flatten(values), table_id="config-table")
    try:
        config = config_from_values(values, rf.CONFIG)
    except UserError:
        return full
    differences = preset_differences(config)
    preset = f"<code>{h.esc(config.preset)}</code>"
    lead = (
        f"<p>The {preset} preset, and where this run differs from it:</p>"
        + h.kv_table(differences.items(), table_id="config-differences")
        if differences
        else f"<p>The {preset} preset as it is.</p>"
    )
    return lead + _folded(f"full configuration ({len(flatten(values))} fields)", full)


def _ensemble_overview(info: dict) -> str:
    """What an `emoscope ensemble` folder combines (`ensemble.json`): it has no config or training log."""
    runs = info.get("runs") or []
    pairs = [
        ("members", len(runs)),
        *((f"run {i}", run) for i, run in enumerate(runs, start=1)),
        ("baseline", info.get("baseline") or "none"),
        ("baseline weight (chosen on dev)", info.get("baseline_weight")),
        ("thresholds", info.get("threshold_strategy")),
        ("training wall time (members; spans side by side counted once)", _duration(info.get("train_wall_seconds"))),
    ]
    return (
        f"<h3>Ensemble ({rf.ENSEMBLE_INFO})</h3><p>The mean probability of the runs, blended with the TF-IDF "
        "baseline at its weight; member paths are relative to this folder.</p>"
        + h.kv_table(pairs, table_id="ensemble-table")
    )


def _training(rd: RunData, pg: Page) -> str:
    if rd.steps is None and rd.epochs is None:
        return h.note(f"Not available: <code>{rf.METRICS_LOG}</code> not found (a baseline has no training log).")
    out = []
    steps = F.downsample(rd.steps or [])
    if steps:
        x = [s.get("step") for s in steps]
        charts = []
        for key, title, ylabel, log in (
            ("loss", "training loss", "loss", False),
            ("lr", "learning rate", "lr", False),
            ("examples_per_s", "throughput", "examples / s", False),
        ):
            if any(to_number(s.get(key)) is not None for s in steps):
                fig = F.line_chart(
                    title, x, {key: [s.get(key) for s in steps]}, x_title="step", y_title=ylabel, y_log=log
                )
                charts.append(pg.figure(f"fig-step-{key.replace('_', '-')}", fig, height=320))
        note = ""
        if len(steps) < len(rd.steps or []):
            every = -(-len(rd.steps) // len(steps))
            note = f'<p class="muted">{len(rd.steps)} steps logged; every {every}th shown.</p>'
        out.append("<h3>Per step</h3>" + note + f'<div class="grid3">{"".join(charts)}</div>')
    else:
        out.append(h.note(f"No step lines in <code>{rf.METRICS_LOG}</code>."))

    epochs = rd.epochs or []
    if epochs:
        x = [e.get("epoch") for e in epochs]
        keys: list[str] = []
        for e in epochs:
            for k, v in e.items():
                if k not in ("kind", "epoch", "step") and k not in keys and to_number(v) is not None:
                    keys.append(k)
        losses = [k for k in keys if k.endswith("loss")]
        scores = [k for k in keys if k.startswith("dev_")]  # not best_epoch or seconds: another scale
        charts = [
            pg.figure(
                fig_id,
                F.line_chart(
                    title,
                    x,
                    {k: [e.get(k) for e in epochs] for k in ks},
                    x_title="epoch",
                    y_title=ylabel,
                    mode="lines+markers",
                ),
                height=340,
            )
            for fig_id, title, ylabel, ks in (
                ("fig-epoch-loss", "loss per epoch", "loss", losses),
                ("fig-epoch-dev", "dev metrics per epoch", "score", scores),
            )
            if ks
        ]
        best = _best_epoch(rd)
        best_txt = f" Best epoch by dev macro F1: <b>{h.esc(best[0])}</b> ({best[1]:.4f})." if best else ""
        rows = [[e.get("epoch")] + [to_number(e.get(k)) for k in keys] for e in epochs]
        out.append(
            f"<h3>Per epoch</h3><p>{len(epochs)} epoch(s).{best_txt}</p>"
            f'<div class="grid2">{"".join(charts)}</div>'
            + h.table(["epoch", *keys], rows, table_id="epoch-table", sortable=True)
        )
    else:
        out.append(h.note(f"No epoch lines in <code>{rf.METRICS_LOG}</code>."))
    return "".join(out)


def _metrics(rd: RunData, pg: Page) -> str:
    out = []
    splits = [s for s in rd.splits if rd.eval_metrics(s) is not None]
    if not splits:
        out.append(h.note("Not available: no <code>eval/&lt;split&gt;_metrics.json</code> in this run folder."))
    else:
        keys: list[str] = []
        values: dict[str, dict[str, Any]] = {}
        for s in splits:
            values[s] = dict(rd.flat_metrics(s) or [])
            for k in values[s]:
                if k not in keys:
                    keys.append(k)
        keys.sort(key=lambda k: _PREFERRED_METRICS.index(k) if k in _PREFERRED_METRICS else 99)
        rows = [[k] + [values[s].get(k) for s in splits] for k in keys]
        out.append(
            f"<p>Summary metrics on {', '.join(h.esc(s) for s in splits)} "
            f"(<code>eval/&lt;split&gt;_metrics.json</code>).</p>"
        )
        out.append(h.table(["metric", *splits], rows, table_id="metrics-table"))
    out.append("<h3>Thresholds</h3>" + _thresholds_html(rd))
    return "".join(out)


def _thresholds_html(rd: RunData) -> str:
    th = rd.thresholds
    if th is None:
        return h.note(f"Not available: <code>{rf.THRESHOLDS}</code> not found; 0.5 assumed for predictions.")
    strategy, chosen = th.strategy, th.chosen_on
    where = f"chosen on the <b>{h.esc(chosen)}</b> split" if chosen else "fixed (not tuned on any split)"
    parts = [f'<p id="thresholds-info">Strategy <b>{h.esc(strategy)}</b>, {where}.']
    nums = [float(v) for v in th.values]
    if nums:
        if len(set(nums)) == 1:
            parts.append(f" Every label uses {nums[0]:.3f}.")
        else:
            parts.append(
                f" {len(nums)} thresholds: min {min(nums):.3f}, median {statistics.median(nums):.3f}, "
                f"max {max(nums):.3f} (per label in the table below)."
            )
    parts.append("</p>")
    if chosen and chosen == rd.main_split:
        parts.append(
            h.note(
                f"Warning: thresholds were tuned on {h.esc(chosen)}, the split the metrics are "
                "reported on; those scores are optimistic."
            )
        )
    return "".join(parts)


def _per_emotion_split(rd: RunData) -> str | None:
    return next((s for s in rd.splits if rd.per_emotion(s) is not None), None)


def _per_emotion(rd: RunData, pg: Page) -> str:
    split = _per_emotion_split(rd)
    if split is None:
        return h.note("Not available: no <code>eval/&lt;split&gt;_per_emotion.csv</code> in this run folder.")
    rows = rd.per_emotion(split) or []
    cols = [c for c in rows[0] if c != "label"] if rows else []
    order = ["precision", "recall", "f1", "support", "threshold", "auc"]
    cols.sort(key=lambda c: order.index(c) if c in order else len(order))
    table_rows = [[r["label"], rd.sentiment_group(r["label"])] + [r.get(c) for c in cols] for r in rows]
    out = [
        f"<p>On <b>{h.esc(split)}</b> (<code>eval/{h.esc(split)}_per_emotion.csv</code>); "
        "click a column header to sort.</p>",
        '<div class="cols"><div class="scroll">',
        h.table(["label", "group", *cols], table_rows, table_id="per-emotion-table", sortable=True),
        "</div></div>",
    ]
    out.append('<p>Their F1 as a chart opens the page (<a href="#per-emotion-f1">Overview</a>).</p>')
    out.append(_png_block(rd, "per_emotion_f1", "F1 per emotion (static)"))
    return "".join(out)


def _confusion(rd: RunData, pg: Page) -> str:
    rows = rd.confusion_2x2
    png = rd.analysis_file("confusion_2x2.png")
    if rows is None and png is None:
        return _analysis_note(rd, "confusion_2x2.csv")
    out = []
    if rows is not None:
        cells = ("tn", "fp", "fn", "tp")
        counts = np.array([[r[k] for k in cells] for r in rows], dtype=float).reshape(-1, 4)
        scores = per_label_scores(counts, zero_division=math.nan)  # undefined shows as a dash
        table_rows = [
            [r["label"], *(r[k] for k in cells), prec, rec]
            for r, prec, rec in zip(rows, scores["precision"], scores["recall"], strict=True)
        ]
        out.append("<p>Per-emotion 2\u00d72 confusion counts on test (one-vs-rest).</p>")
        out.append(
            '<div class="scroll">'
            + h.table(
                ["label", "tn", "fp", "fn", "tp", "precision", "recall"],
                table_rows,
                table_id="confusion-table",
                sortable=True,
                digits=3,
            )
            + "</div>"
        )
    if png is not None:
        out.append(
            _png_block(
                rd,
                "confusion_2x2",
                "2x2 confusion grid",
                open_=rows is None,
                summary="2\u00d72 grid (static figure)",
            )
        )
    return "".join(out)


def _misclassification(rd: RunData, pg: Page) -> str:
    m = rd.misclassification
    png = rd.analysis_file("misclassification.png")
    if m is None and png is None:
        return _analysis_note(rd, "misclassification.csv")
    out = []
    if m is not None:
        out.append("<p>Rows: true emotion; columns: predicted emotion; each row normalised (test).</p>")
        out.append(
            pg.figure(
                "fig-misclassification",
                F.heatmap("true \u2192 predicted (row-normalised)", m, colorscale="Viridis", zmin=0),
                height=640,
            )
        )
    if png is not None:
        out.append(_png_block(rd, "misclassification", "misclassification matrix", open_=m is None))
    return "".join(out)


def _correlation(rd: RunData, pg: Page) -> str:
    mats = rd.correlations
    png = rd.analysis_file("correlation.png")
    lp = rd.label_prob_correlation
    if mats is None and png is None and lp is None:
        return _analysis_note(rd, "correlation.csv")
    out = []
    if mats is not None:
        order = {"human": 0, "model": 1, "difference": 2, "diff": 2}
        names = sorted(mats, key=lambda s: (order.get(s.lower(), 3), s))
        divs = []
        for i, src in enumerate(names):
            label = src or "correlation"
            divs.append(
                pg.figure(
                    f"fig-correlation-{i}",
                    F.heatmap(label, mats[src], colorscale="RdBu", zmid=0, height=600),
                    height=600,
                )
            )
        out.append(
            "<p>Emotion \u00d7 emotion correlation from human labels and from model probabilities, "
            "and their difference.</p>"
        )
        out.append(f'<div class="grid2">{"".join(divs)}</div>')
    if lp is not None and lp[0] is not None:
        value_col, values = lp
        values = sorted(values, key=lambda lv: -(lv[1] or 0))
        fig = F.bar_chart("correlation of predicted probability with the human label", values, y_title=value_col)
        out.append(pg.figure("fig-label-prob-correlation", fig, height=400))
    if png is not None:
        out.append(_png_block(rd, "correlation", "correlation heatmaps", open_=mats is None))
    return "".join(out)


def _dendrograms(rd: RunData, pg: Page) -> str:
    png = rd.analysis_file("dendrograms.png")
    if png is None:
        return _analysis_note(rd, "dendrograms.png")
    extra = ""
    if rd.analysis_file("dendrograms.csv"):
        extra = " The linkage rows are in <code>analysis/dendrograms.csv</code>."
    return (
        f"<p>Emotion-centroid dendrograms per hook point and epoch; leaves coloured by sentiment group."
        f"{extra}</p>" + h.image(png, "emotion-centroid dendrograms")
    )


def _layers(rd: RunData, pg: Page) -> str:
    out = []
    rows = rd.layer_metrics
    if rows is None:
        out.append(_analysis_note(rd, "layer_metrics.csv"))
    elif not rows:
        out.append(h.note("<code>analysis/layer_metrics.csv</code> has no rows."))
    else:
        metrics = rd.layer_metric_names()
        figs = F.layer_metric_figures(rows, metrics)
        if figs:
            default = "probe_macro_f1" if "probe_macro_f1" in figs else metrics[0]
            out.append("<p>Representation metrics at every hook point (shallow \u2192 deep), one line per epoch.</p>")
            out.append(pg.figure_set("fig-layer-metrics", figs, label="metric", selected=default, height=460))
        last = max((r["epoch"] for r in rows if r.get("epoch") is not None), default=None)
        table_rows = [[r.get("epoch"), r.get("point"), r.get("depth")] + [r.get(m) for m in metrics] for r in rows]
        out.append(
            f"<details><summary>all numbers ({len(rows)} rows; last epoch {h.esc(last)})</summary>"
            '<div class="scroll">'
            + h.table(
                ["epoch", "point", "depth", *metrics],
                table_rows,
                table_id="layer-table",
                sortable=True,
                digits=3,
            )
            + "</div></details>"
        )
        out.append(_png_block(rd, "layer_metrics", "layer metrics (static)"))

    out.append('<h3 id="cka">CKA between hook points</h3>')
    cka_tables = rd.cka_tables
    if not cka_tables and rd.analysis_file("cka_layers.png") is None:
        out.append(_analysis_note(rd, "cka_layers.csv"))
    for i, (stem, mats) in enumerate(cka_tables):
        for src, m in mats.items():
            title = f"linear CKA ({stem}{' ' + src if src else ''})"
            out.append(
                pg.figure(
                    f"fig-cka-{i}{'-' + re.sub(r'[^a-z0-9]+', '-', src.lower()) if src else ''}",
                    F.heatmap(title, m, colorscale="Viridis", zmin=0, zmax=1, height=520),
                    height=520,
                )
            )
    out.append(_png_block(rd, "cka_layers", "CKA between hook points (static)", open_=not cka_tables))

    ablations = {kind: rd.layer_ablation(kind) for kind in ABLATION_TITLES}
    if ablations["reset"] is not None:
        out.append(
            '<h3 id="ablation">Layer ablation</h3><p>Test F1 drop of each emotion when one encoder layer is reset '
            "to its pre-fine-tuning weights, and when the layer's update (its output minus its input) is replaced "
            "by its mean over the probe texts (<code>analysis/layer_ablation.csv</code>, with paired bootstrap "
            "intervals): which layers each emotion depends on.</p>"
        )
        for kind, title in ABLATION_TITLES.items():
            if ablations[kind] is not None and ablations[kind].rows:
                out.append(
                    pg.figure(
                        f"fig-layer-ablation-{kind.replace('_', '-')}",
                        F.heatmap(
                            f"test F1 drop, {title} (emotion x layer)", ablations[kind], colorscale="RdBu", zmid=0
                        ),
                        height=560,
                    )
                )
    out.append(f'<h3 id="summary">Summary ({rf.ANALYSIS}/{rf.SUMMARY})</h3>')
    summary = rd.summary
    out.append(_analysis_note(rd, rf.SUMMARY) if summary is None else _summary_html(summary))
    return "".join(out)


def _summary_html(s: dict) -> str:
    """`analysis/summary.json` as HTML: the findings summary.md tells, the per-point numbers as a table."""
    probe = s.get("probe") or {}
    out = [
        f"<p>Probe set: {h.esc(probe.get('texts'))} texts ({h.esc(probe.get('single_label'))} with a single "
        f"label); captures at epochs {h.esc(', '.join(map(str, probe.get('epochs') or [])))}; pooling "
        f"<code>{h.esc(probe.get('pooling'))}</code>. Human co-annotation reference for the RSA: "
        f"{_code_spans(s.get('rsa_reference'))}.</p>",
        _separation_html(s),
    ]
    columns = (
        ("posneg_first", "posneg_first_ci95"),
        *((f"{m}_last", f"{m}_last_ci95") for m in ("silhouette_posneg", "silhouette_sentiment")),
        *((f"{m}_last", f"{m}_last_ci95") for m in ("probe_macro_f1", "rsa_sentiment")),
    )
    rows = []
    for p in s.get("points") or []:
        change = p.get("posneg_change")
        cells = [with_ci(p.get(value), p.get(ci)) for value, ci in columns]
        cells.insert(
            2,
            "n/a"
            if not change
            else with_ci(change["difference"], change["ci95"])
            + ("" if change.get("excludes_zero") else " (includes 0)"),
        )
        rows.append([p.get("point"), *cells])
    headers = [
        "point",
        "posneg silhouette, first capture",
        "posneg silhouette, last",
        "change, first to last",
        "sentiment silhouette, last",
        "probe macro-F1, last",
        "RSA sentiment, last",
    ]
    out.append(h.table(headers, rows, table_id="summary-points", digits=3))
    ent = s.get("entangled") or {}
    out.append(
        f"<h4>Emotions that stay entangled</h4><p>At <code>{h.esc(ent.get('point'))}</code> (the deepest point "
        f"before the logits), epoch {h.esc(ent.get('epoch'))}, the emotion pairs with the most similar "
        "centroids (cosine similarity of centred centroids):</p><ul>"
    )
    for pair in ent.get("pairs") or []:
        differ = "" if pair.get("same_sentiment") else " (different sentiment groups)"
        out.append(
            f"<li>{h.esc(pair.get('a'))} / {h.esc(pair.get('b'))}: {h.fmt(pair.get('similarity'), 3)}{differ}</li>"
        )
    out.append("</ul>")
    if s.get("confusions") is not None:
        out.append(
            "<p>On test, the most frequent confusions (share of a true emotion's examples also given the "
            "other label, which they do not carry):</p><ul>"
        )
        out += [
            f"<li>{h.esc(c.get('true'))} \u2192 {h.esc(c.get('predicted'))}: {h.fmt(c.get('share'), 3)}</li>"
            for c in s["confusions"]
        ]
        out.append("</ul>")
    if s.get("notes"):
        out.append("<h4>Notes</h4><ul>" + "".join(f"<li>{_code_spans(n)}</li>" for n in s["notes"]) + "</ul>")
    return '<div class="md">' + "".join(out) + "</div>"


def _separation_html(s: dict) -> str:
    """Where positive and negative emotion separate, before and after training (summary.json's findings)."""
    threshold = h.fmt(s.get("posneg_threshold"), 2)
    out = [
        "<h4>Where positive and negative emotion separate</h4>",
        f"<p>The shallowest point whose positive-vs-negative silhouette has its 95% interval at or above "
        f"{threshold}; numbers in brackets are 95% bootstrap intervals over the probe texts, and a comparison "
        "says whether the paired interval of the difference excludes zero.</p><ul>",
    ]
    for sep in s.get("separation") or []:
        when = "After training" if sep.get("stage") == "last" else "At the first capture"
        if sep.get("first_point"):
            ahead = comparison(sep.get("vs_previous"), f"ahead of {(sep.get('vs_previous') or {}).get('point')}")
            verdict = (
                f"<strong>{h.esc(sep['first_point'])}</strong> is the first point to separate positive from "
                f"negative emotion ({h.esc(with_ci(sep.get('first_value'), sep.get('first_ci95')))}"
                f"{h.esc('; ' + ahead if ahead else '')})"
            )
        else:
            verdict = f"no point reaches {threshold}"
        ci = sep.get("best_ci95")
        best = comparison(sep.get("vs_runner_up"), f"ahead of {(sep.get('vs_runner_up') or {}).get('point')}")
        out.append(
            f"<li>{when} (epoch {h.esc(sep.get('epoch'))}): {verdict} (highest: {h.esc(sep.get('best_point'))}, "
            f"{h.fmt(sep.get('best_value'), 3)}{f' [{h.fmt(ci[0], 3)}, {h.fmt(ci[1], 3)}]' if ci else ''}"
            f"{h.esc('; ' + best if best else '')}).</li>"
        )
    return "".join(out) + "</ul>"


def _code_spans(text: Any) -> str:
    """Escaped text whose `quoted` parts (file names in the analysis notes) show as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", h.esc(text))


def _tsne(rd: RunData, pg: Page) -> str:
    tsne = rd.tsne
    statics = _png_block(rd, "tsne_emotion", "t-SNE grid coloured by emotion", summary="static grid by emotion")
    statics += _png_block(rd, "tsne_sentiment", "t-SNE grid coloured by sentiment", summary="static grid by sentiment")
    if tsne is None:
        return _analysis_note(rd, "tsne_coords.csv") + statics
    if not tsne.coords:
        return h.note("<code>analysis/tsne_coords.csv</code> has no rows.") + statics

    probe = rd.probe
    labels = rd.labels
    depth_of = {r["point"]: r.get("depth") for r in rd.layer_metrics or [] if r.get("depth") is not None}
    first_seen = {pt: i for i, pt in enumerate(tsne.points)}
    points = sorted(tsne.points, key=lambda pt: (depth_of.get(pt, float("inf")), first_seen[pt]))
    epochs = sorted(tsne.epochs, key=lambda e: (0, e) if isinstance(e, (int, float)) else (1, str(e)))
    n = len(probe) if probe is not None else tsne.n_points

    groups = [*SENTIMENT_LABELS, "mixed", "other"]
    texts: list[str | None] = [None] * n
    ids: list[str | None] = [None] * n
    human: list[list[int]] = [[] for _ in range(n)]
    group_idx = [groups.index("other")] * n
    first = [-1] * n
    notes = []
    if probe is not None:
        for i, o in enumerate(probe):
            texts[i] = str(o.get("text", ""))
            ids[i] = str(o.get("id", ""))
            li = [int(v) for v in o.get("labels") or [] if isinstance(v, int) and 0 <= v < len(labels)]
            human[i] = li
            first[i] = li[0] if li else -1
            g = text_sentiment(rd.sentiment_group(labels[v]) for v in li) or "other"
            group_idx[i] = groups.index(g) if g in groups else groups.index("other")
    else:
        notes.append(h.note(f"<code>{rf.CAPTURES}/{rf.PROBE}</code> not found: points have no text or labels."))

    pred = None
    if probe is not None:
        found = rd.predictions_for({i for i in ids if i})
        if found:
            name_to_i = {name: k for k, name in enumerate(labels)}
            pred = [[name_to_i[x] for x in found[i] if x in name_to_i] if i in found else None for i in ids]
            missing = sum(1 for v in pred if v is None)
            if missing:
                notes.append(
                    f'<p class="muted">{missing} of {n} probe comments have no prediction '
                    "in <code>eval/*_predictions.jsonl</code>.</p>"
                )
        else:
            notes.append(
                '<p class="muted">The probe ids do not appear in <code>eval/*_predictions.jsonl</code>: '
                "hover shows human labels only.</p>"
            )

    emotion_names = [h.ptext(x) for x in labels] + ["(no label)"]
    emotion_colours = [F.emotion_colour(x, i) for i, x in enumerate(labels)] + ["#000000"]
    pg.tsne = {
        "points": points,
        "epochs": epochs,
        "coords": tsne.coords,
        "labels": labels,
        "emotionNames": emotion_names,
        "emotionColours": emotion_colours,
        "groups": groups,
        "groupColours": [sentiment_colour(g) for g in groups],
        "text": texts,
        "ids": ids,
        "human": human,
        "pred": pred,
        "first": first,
        "group": group_idx,
        "gl": max(len(c["i"]) for c in tsne.coords.values()) > 6000,
    }
    default_point = points[-1]
    controls = "".join(
        [
            h.select("tsne-point", [(pt, pt) for pt in points], label="hook point (layer)", selected=default_point),
            h.select(
                "tsne-epoch",
                [(str(e), f"epoch {e}") for e in epochs],
                label="epoch",
                selected=str(epochs[-1]),
            ),
            h.select(
                "tsne-colour",
                [("emotion", "emotion (first human label)"), ("sentiment", "sentiment group")],
                label="colour by",
                selected="emotion",
            ),
        ]
    )
    return (
        "<p>t-SNE of the probe set's pooled representations at each hook point and epoch "
        f"({n} comments). Hover a point to read the comment, its human labels and the final model's "
        "predictions; click legend entries to hide groups.</p>"
        + "".join(notes)
        + f'<div class="controls">{controls}</div>'
        + '<div class="plot" id="tsne-plot" style="height:680px"></div>'
        + statics
    )


def _mistakes(rd: RunData, pg: Page) -> str:
    rows = rd.confident_mistakes
    if rows is None:
        return _analysis_note(rd, "confident_mistakes.csv")
    labels_present = []
    for r in rows:
        if r["label"] not in labels_present:
            labels_present.append(r["label"])
    order = {lab: i for i, lab in enumerate(rd.labels)}
    labels_present.sort(key=lambda x: (order.get(x, len(order)), x))
    kinds = sorted({r["kind"] for r in rows})
    extra = [c for c in ("id", "true_labels", "predicted_labels") if rows and c in rows[0]]
    headers = [
        "label",
        "kind",
        "prob",
        *(["id"] if "id" in extra else []),
        "text",
        *(["true labels"] if "true_labels" in extra else []),
        *(["predicted labels"] if "predicted_labels" in extra else []),
    ]
    table_rows, attrs = [], []
    for r in rows:
        row = [r["label"], r["kind"], r["prob"]]
        if "id" in extra:
            row.append(r["id"])
        row.append(r["text"])
        for c in ("true_labels", "predicted_labels"):
            if c in extra:
                row.append(", ".join(r[c]))
        table_rows.append(row)
        attrs.append({"data-label": r["label"], "data-kind": r["kind"]})
    col_classes = ["text" if c == "text" else "" for c in headers]
    table = h.table(
        headers,
        table_rows,
        table_id="mistakes-table",
        sortable=True,
        row_attrs=attrs,
        digits=3,
        col_classes=col_classes,
    )
    ctl = "".join(
        [
            h.select(
                "mistakes-label",
                [("", "all emotions")] + [(x, x) for x in labels_present],
                label="emotion",
                extra_attrs=' data-filter-table="mistakes-table" data-filter-attr="data-label"',
            ),
            h.select(
                "mistakes-kind",
                [("", "both kinds")] + [(k, k.replace("_", " ")) for k in kinds],
                label="kind",
                extra_attrs=' data-filter-table="mistakes-table" data-filter-attr="data-kind"',
            ),
        ]
    )
    return (
        f"<p>The test comments the model got wrong with the most confidence "
        f"(<code>analysis/confident_mistakes.csv</code>, {len(rows)} rows).</p>"
        f'<div class="controls">{ctl} <span class="muted" data-count-for="mistakes-table"></span></div>'
        f'<div class="scroll">{table}</div>'
    )
