"""The analysis summary: `analysis/summary.json` holds the findings with their numbers, `summary.md` tells them.

`emoscope.analysis.run` gathers the findings; the Markdown here and the report's HTML both render the JSON,
so a number is computed once and read the same way everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emoscope import runfolder as rf


def write_summary(folder: Path, summary: dict) -> None:
    """`folder/summary.json` (undefined numbers as null) and `folder/summary.md` rendered from it."""
    data = _finite(summary)
    (folder / rf.SUMMARY).write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    (folder / rf.SUMMARY_TEXT).write_text(summary_markdown(data), encoding="utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary_markdown(s: dict) -> str:
    probe, threshold = s["probe"], s["posneg_threshold"]
    lines = [
        f"# Representation analysis: {s['run']}",
        "",
        f"Probe set: {probe['texts']} texts ({probe['single_label']} with a single label); captures at epochs "
        f"{', '.join(map(str, probe['epochs']))}; pooling `{probe['pooling']}`; points "
        f"{', '.join(probe['points'])}. Human co-annotation reference for the RSA: {s['rsa_reference']}.",
        "",
        "## Where positive and negative emotion separate",
        "",
        f"Criterion: the shallowest point whose **positive-vs-negative silhouette** reaches "
        f"{threshold:.2f}. That silhouette (cosine, features centred on the probe mean) is computed on "
        "the single-label probe texts whose emotion is positive or negative, grouped by that sentiment; "
        f"{threshold:.2f} means a text is on average 10% closer to its own side than to the other.",
        "",
    ]
    for sep in s["separation"]:
        when = (
            f"After training (epoch {sep['epoch']})"
            if sep["stage"] == "last"
            else f"At the first capture (epoch {sep['epoch']})"
        )
        verdict = (
            f"**{sep['first_point']}** is the first point to separate positive from negative emotion"
            if sep["first_point"]
            else f"no point reaches {threshold:.2f}"
        )
        lines.append(f"- {when}: {verdict} (highest: {sep['best_point']}, {_num(sep['best_value'])}).")
    lines += [
        "",
        "| point | posneg silhouette, first capture | posneg silhouette, last | sentiment silhouette, "
        "last | probe macro-F1, last | RSA sentiment, last |",
        "|---|---|---|---|---|---|",
    ]
    for p in s["points"]:
        values = (
            p["posneg_first"],
            p["silhouette_posneg_last"],
            p["silhouette_sentiment_last"],
            p["probe_macro_f1_last"],
            p["rsa_sentiment_last"],
        )
        lines.append(f"| {p['point']} | " + " | ".join(_num(v) for v in values) + " |")

    ent = s["entangled"]
    lines += [
        "",
        "## Emotions that stay entangled",
        "",
        f"At `{ent['point']}` (the deepest point before the logits), epoch {ent['epoch']}, the emotion pairs "
        "with the most similar centroids (cosine similarity of centred centroids):",
        "",
    ]
    lines += [
        f"- {pair['a']} / {pair['b']}: {_num(pair['similarity'])}"
        f"{'' if pair['same_sentiment'] else ' (different sentiment groups)'}"
        for pair in ent["pairs"]
    ]
    if s["confusions"] is not None:
        lines += [
            "",
            "On test, the most frequent confusions (share of a true emotion's examples also given "
            "the other label, which they do not carry):",
            "",
        ]
        lines += [f"- {c['true']} -> {c['predicted']}: {_num(c['share'])}" for c in s["confusions"]]
    if s["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in s["notes"]]
    return "\n".join(lines) + "\n"
