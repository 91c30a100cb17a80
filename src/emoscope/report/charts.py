"""Plotly figure specs as plain dicts (data + layout); report.js draws them with the embedded plotly.js.

Every string taken from data that Plotly renders (names, ticks, hover) goes through `ptext`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emoscope.data.labels import NEUTRAL, SENTIMENT_COLOURS, sentiment_colour
from emoscope.report._html import ptext
from emoscope.report.reader import Matrix, to_number

MAX_CURVE_POINTS = 4000
# One distinct colour per emotion in the interactive t-SNE (neutral takes its sentiment group's grey).
EMOTION_COLOURS = [
    "#3283FE",
    "#F6222E",
    "#1C8356",
    "#FEAF16",
    "#AA0DFE",
    "#85660D",
    "#2ED9FF",
    "#FC1CBF",
    "#325A9B",
    "#90AD1C",
    "#C4451C",
    "#782AB6",
    "#1CBE4F",
    "#B00068",
    "#DEA0FD",
    "#16FF32",
    "#FA0087",
    "#B10DA1",
    "#F8A19F",
    "#1CFFCE",
    "#C075A6",
    "#FBE426",
    "#0B7285",
    "#E67700",
    "#5C940D",
    "#862E9C",
    "#A61E4D",
]


def downsample(rows: list[dict], limit: int = MAX_CURVE_POINTS) -> list[dict]:
    """Keep at most ~limit rows, evenly spaced, always keeping the last one."""
    if len(rows) <= limit:
        return rows
    step = -(-len(rows) // limit)
    kept = rows[::step]
    if kept[-1] is not rows[-1]:
        kept.append(rows[-1])
    return kept


def line_chart(
    title: str,
    x: Sequence[Any],
    series: dict[str, Sequence[Any]],
    *,
    x_title: str,
    y_title: str = "",
    y_log: bool = False,
    mode: str = "lines",
    hover_x: str = "",
) -> dict:
    data = [
        {
            "type": "scatter",
            "mode": mode,
            "name": ptext(name),
            "x": list(x),
            "y": [to_number(v) for v in ys],
            "hovertemplate": f"{ptext(name)}<br>{hover_x or ptext(x_title)} %{{x}}: %{{y:.4g}}<extra></extra>",
        }
        for name, ys in series.items()
    ]
    layout = {
        "title": {"text": ptext(title)},
        "xaxis": {"title": {"text": ptext(x_title)}},
        "yaxis": {"title": {"text": ptext(y_title)}, **({"type": "log"} if y_log else {})},
        "showlegend": len(series) > 1,
    }
    return {"data": data, "layout": layout}


def emotion_colour(label: str, index: int) -> str:
    return SENTIMENT_COLOURS[NEUTRAL] if label == NEUTRAL else EMOTION_COLOURS[index % len(EMOTION_COLOURS)]


def heatmap(
    title: str,
    m: Matrix,
    *,
    colorscale: str = "Viridis",
    zmid: float | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    height: int = 560,
) -> dict:
    trace: dict[str, Any] = {
        "type": "heatmap",
        "x": [ptext(c) for c in m.cols],
        "y": [ptext(r) for r in m.rows],
        "z": m.z,
        "colorscale": colorscale,
        "hovertemplate": "%{y} \u00d7 %{x}: %{z:.3f}<extra></extra>",
    }
    if zmid is not None:
        trace["zmid"] = zmid
    if zmin is not None:
        trace["zmin"] = zmin
    if zmax is not None:
        trace["zmax"] = zmax
    many = max(len(m.rows), len(m.cols)) > 12
    tick = {"dtick": 1, "tickfont": {"size": 9}} if many else {}
    layout = {
        "title": {"text": ptext(title)},
        "xaxis": {"tickangle": -60, "automargin": True, "type": "category", **tick},
        "yaxis": {"autorange": "reversed", "automargin": True, "type": "category", **tick},
        "height": height,
        "margin": {"l": 40, "r": 20, "t": 72, "b": 40},  # the title above the plot, under the toolbar's band
    }
    return {"data": [trace], "layout": layout}


def per_emotion_f1_bar(rows: list[dict], group_of) -> dict:
    rows = sorted(rows, key=lambda r: -(r.get("f1") or 0))
    colours = [sentiment_colour(group_of(r["label"])) for r in rows]
    hover = [
        f"<b>{ptext(r['label'])}</b><br>F1 {_f(r.get('f1'))}<br>precision {_f(r.get('precision'))}"
        f"<br>recall {_f(r.get('recall'))}<br>support {_f(r.get('support'))}<br>"
        f"group {ptext(group_of(r['label']))}"
        for r in rows
    ]
    data = [
        {
            "type": "bar",
            "x": [ptext(r["label"]) for r in rows],
            "y": [r.get("f1") for r in rows],
            "marker": {"color": colours},
            "hovertext": hover,
            "hoverinfo": "text",
            "name": "F1",
        }
    ]
    layout = {
        "title": {"text": "F1 per emotion (bars coloured by sentiment group)"},
        "xaxis": {"tickangle": -50, "automargin": True, "type": "category"},
        "yaxis": {"title": {"text": "F1"}, "range": [0, 1]},
        "showlegend": False,
    }
    return {"data": data, "layout": layout}


def bar_chart(title: str, values: Sequence[tuple[str, Any]], *, y_title: str) -> dict:
    """One bar per (label, value), in the given order."""
    data = [
        {
            "type": "bar",
            "x": [ptext(label) for label, _ in values],
            "y": [to_number(v) for _, v in values],
            "name": ptext(y_title),
        }
    ]
    layout = {
        "title": {"text": ptext(title)},
        "xaxis": {"tickangle": -50, "type": "category", "automargin": True},
        "yaxis": {"title": {"text": ptext(y_title)}},
    }
    return {"data": data, "layout": layout}


def grouped_f1_bars(labels: Sequence[str], f1_by_run: dict[str, list[Any]]) -> dict:
    """F1 per emotion, one bar series per run (the comparison page)."""
    data = [
        {
            "type": "bar",
            "name": ptext(run),
            "x": [ptext(lab) for lab in labels],
            "y": f1,
            "hovertemplate": f"{ptext(run)}<br>%{{x}}: F1 %{{y:.3f}}<extra></extra>",
        }
        for run, f1 in f1_by_run.items()
    ]
    layout = {
        "barmode": "group",
        "title": {"text": "F1 per emotion"},
        "xaxis": {"tickangle": -50, "type": "category", "automargin": True},
        "yaxis": {"title": {"text": "F1"}, "range": [0, 1]},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom"},  # beside the title
    }
    return {"data": data, "layout": layout}


def _f(v: Any) -> str:
    if v is None:
        return "\u2013"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3f}" if isinstance(v, float) else ptext(v)


def layer_metric_figures(
    rows: list[dict], metrics: list[str], *, by: str = "epoch", title_prefix: str = ""
) -> dict[str, dict]:
    """{metric: figure}: the metric against depth, one line per `by` value (epoch, or run name), with a
    shaded band for its 95% interval where the rows carry `<metric>_ci95_low/_high`."""
    figs = {}
    keys: list[Any] = []
    for r in rows:
        if r[by] not in keys:
            keys.append(r[by])
    ticks: dict[float, str] = {}
    consistent = True  # every row agrees on which point sits at which depth: label the axis with names
    for r in rows:
        if r.get("depth") is not None:
            consistent &= ticks.setdefault(r["depth"], str(r.get("point"))) == str(r.get("point"))
    for metric in metrics:
        data = []
        for k in keys:
            sub = sorted((r for r in rows if r[by] == k and r.get("depth") is not None), key=lambda r: r["depth"])
            name = f"epoch {k}" if by == "epoch" else str(k)
            band = [(r["depth"], r.get(f"{metric}_ci95_low"), r.get(f"{metric}_ci95_high")) for r in sub]
            band = [b for b in band if b[1] is not None and b[2] is not None]
            if band:
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": ptext(f"{name} 95% interval"),
                        "x": [b[0] for b in band] + [b[0] for b in reversed(band)],
                        "y": [b[2] for b in band] + [b[1] for b in reversed(band)],
                        "fill": "toself",
                        "opacity": 0.2,
                        "line": {"width": 0},
                        "hoverinfo": "skip",
                        "showlegend": False,
                    }
                )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": ptext(name),
                    "x": [r["depth"] for r in sub],
                    "y": [r.get(metric) for r in sub],
                    "text": [ptext(r.get("point")) for r in sub],
                    "hovertemplate": f"{ptext(name)}<br>%{{text}} (depth %{{x}})<br>{ptext(metric)}: "
                    "%{y:.4f}<extra></extra>",
                }
            )
        layout = {
            "title": {"text": ptext(f"{title_prefix}{metric} by depth")},
            "xaxis": {"title": {"text": "depth (hook point)"}, "automargin": True},
            "yaxis": {"title": {"text": ptext(metric)}},
            "hovermode": "closest",
            "showlegend": True,
        }
        if consistent and ticks:
            depths = sorted(ticks)
            layout["xaxis"].update(
                {
                    "tickmode": "array",
                    "tickvals": depths,
                    "ticktext": [ptext(ticks[d]) for d in depths],
                    "tickangle": -40,
                }
            )
        figs[metric] = {"data": data, "layout": layout}
    return figs
