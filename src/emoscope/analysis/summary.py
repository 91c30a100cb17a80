"""The analysis summary: `analysis/summary.json` holds the findings with their numbers, `summary.md` tells them.

`emoscope.analysis.pipeline` gathers the findings; the Markdown here and the report's HTML both render the JSON,
so a number is computed once and read the same way everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emoscope.core import runfolder as rf


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


def with_ci(value: float | None, ci: list | None) -> str:
    """`0.123 [0.101, 0.140]`: a number and its 95% interval."""
    if not ci or ci[0] is None:
        return _num(value)
    return f"{_num(value)} [{_num(ci[0])}, {_num(ci[1])}]"


def comparison(diff: dict | None, than: str) -> str:
    """A paired difference as a clause that says what its interval supports."""
    if diff is None:
        return ""
    verdict = {
        True: "the interval excludes zero",
        False: "the interval includes zero: not distinguishable",
        None: "no interval",
    }[diff["excludes_zero"]]
    return f"{than} by {with_ci(diff['difference'], diff['ci95'])}; {verdict}"


def ceiling_text(ceiling: dict | None) -> str:
    """The co-annotation reference's split-half noise ceiling as a clause (empty when unknown)."""
    if not ceiling or ceiling.get("noise_ceiling") is None:
        return ""
    return (
        f" (split-half reliability {_num(ceiling['reliability'])}, Spearman-Brown corrected; noise ceiling "
        f"for `rsa_cooccurrence` {_num(ceiling['noise_ceiling'])})"
    )


def summary_markdown(s: dict) -> str:
    probe, threshold = s["probe"], s["posneg_threshold"]
    lines = [
        f"# Representation analysis: {s['run']}",
        "",
        f"Probe set: {probe['texts']} texts ({probe['single_label']} with a single label); captures at epochs "
        f"{', '.join(map(str, probe['epochs']))}; pooling `{probe['pooling']}`; points "
        f"{', '.join(probe['points'])}. Human co-annotation reference for the RSA: {s['rsa_reference']}"
        f"{ceiling_text(s.get('rsa_noise_ceiling'))}.",
        "",
        "Numbers in brackets are 95% bootstrap intervals over the probe texts; a comparison of two points or "
        "epochs uses the paired interval of their difference (the same resamples for both). An RDM's "
        "reliability is how far these probe texts pin down the emotion centroids' dissimilarities (split-half, "
        "Spearman-Brown corrected): an RSA on them cannot much exceed its square root.",
        "",
        "## Where positive and negative emotion separate",
        "",
        f"Criterion: the shallowest point whose **positive-vs-negative silhouette** has its 95% interval at or "
        f"above {threshold:.2f}. That silhouette (cosine, features centred on the probe mean) is computed on "
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
        if sep["first_point"]:
            ahead = comparison(sep.get("vs_previous"), f"ahead of {(sep.get('vs_previous') or {}).get('point')}")
            verdict = (
                f"**{sep['first_point']}** is the first point to separate positive from negative emotion "
                f"({with_ci(sep.get('first_value'), sep.get('first_ci95'))}{'; ' + ahead if ahead else ''})"
            )
        else:
            verdict = f"no point's interval reaches {threshold:.2f}"
        best = comparison(sep.get("vs_runner_up"), f"ahead of {(sep.get('vs_runner_up') or {}).get('point')}")
        lines.append(
            f"- {when}: {verdict}. Highest: {sep['best_point']}, {with_ci(sep['best_value'], sep.get('best_ci95'))}"
            f"{'; ' + best if best else ''}."
        )
    lines += [
        "",
        "| point | posneg silhouette, first capture | posneg silhouette, last | change, first to last | "
        "sentiment silhouette, last | probe macro-F1, last | RSA sentiment, last | its RDM's reliability, last |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in s["points"]:
        change = p.get("posneg_change")
        cells = (
            with_ci(p["posneg_first"], p.get("posneg_first_ci95")),
            with_ci(p["silhouette_posneg_last"], p.get("silhouette_posneg_last_ci95")),
            "n/a"
            if change is None
            else with_ci(change["difference"], change["ci95"]) + ("" if change["excludes_zero"] else " (includes 0)"),
            with_ci(p["silhouette_sentiment_last"], p.get("silhouette_sentiment_last_ci95")),
            with_ci(p["probe_macro_f1_last"], p.get("probe_macro_f1_last_ci95")),
            with_ci(p["rsa_sentiment_last"], p.get("rsa_sentiment_last_ci95")),
            _num(p.get("rdm_reliability_last")),
        )
        lines.append(f"| {p['point']} | " + " | ".join(cells) + " |")

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
