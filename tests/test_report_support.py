"""Synthetic run folders for the report tests, laid out exactly as docs/run-folder.md describes.

Not a test module itself (no tests here); the other tests/test_report_*.py files import it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from emoscope.analysis.pipeline import METRICS

LABELS = [
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
]
SENTIMENT = {
    "positive": [
        "amusement",
        "excitement",
        "joy",
        "love",
        "desire",
        "optimism",
        "caring",
        "pride",
        "admiration",
        "gratitude",
        "relief",
        "approval",
    ],
    "negative": [
        "fear",
        "nervousness",
        "remorse",
        "embarrassment",
        "disappointment",
        "sadness",
        "grief",
        "disgust",
        "anger",
        "annoyance",
        "disapproval",
    ],
    "ambiguous": ["realization", "surprise", "curiosity", "confusion"],
}
EKMAN = {
    "anger": ["anger", "annoyance", "disapproval"],
    "disgust": ["disgust"],
    "fear": ["fear", "nervousness"],
    "joy": [
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ],
    "sadness": ["sadness", "disappointment", "embarrassment", "grief", "remorse"],
    "surprise": ["surprise", "realization", "confusion", "curiosity"],
}
POINTS = ["embeddings", "layer_1", "layer_2", "layer_3", "layer_4", "layer_5", "layer_6", "classifier"]
EPOCHS = [0, 1, 2]
# Probe 0 carries every character that could break a page; it sits far from the others in t-SNE.
NASTY_TEXT = (
    "He said \"<script>window.__pwned=1</script>\" & left 'quickly' </script><!-- "
    '<img src=x onerror="window.__pwned=2"> {{x}} \\u003c `tick`'
)
NASTY_MISTAKE = "<b>bold?</b> & \"quoted\", 'single' </script><script>window.__pwned=3</script>"
NASTY_SUMMARY = '<img src=x onerror="window.__pwned=4">'
FIGURES = [
    "layer_metrics",
    "cka_layers",
    "tsne_emotion",
    "tsne_sentiment",
    "dendrograms",
    "per_emotion_f1",
    "confusion_2x2",
    "misclassification",
    "correlation",
]
WORDS = "great thanks lol wow really not sure why sad love this happy what hmm okay yes no never".split()  # noqa: SIM905


def sentiment_of() -> dict[str, str]:
    out = {e: g for g, es in SENTIMENT.items() for e in es}
    out["neutral"] = "neutral"
    return out


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _png(path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(2.4, 1.6), dpi=50)
    ax.imshow(rng.random((8, 12)), cmap="viridis")
    ax.set_title(path.stem, fontsize=7)
    fig.savefig(path)
    plt.close(fig)


def write_baseline(path: Path, *, n_test: int = 120, seed: int = 1) -> Path:
    """A baseline folder: labels.json, thresholds.json and eval/ only."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "labels.json").write_text(
        json.dumps(
            {
                "taxonomy": "original",
                "labels": LABELS,
                "sentiment_of": sentiment_of(),
                "ekman_of": {**{e: g for g, es in EKMAN.items() for e in es}, "neutral": "neutral"},
            }
        ),
        encoding="utf-8",
    )
    thresholds = {lab: 0.3 for lab in LABELS}
    (path / "thresholds.json").write_text(
        json.dumps({"strategy": "global", "chosen_on": "dev", "thresholds": thresholds}), encoding="utf-8"
    )
    ev = path / "eval"
    ev.mkdir(exist_ok=True)
    for split in ("dev", "test"):
        f1s = rng.uniform(0.05, 0.7, len(LABELS))
        (ev / f"{split}_metrics.json").write_text(
            json.dumps(
                {
                    "macro_f1": float(f1s.mean()),
                    "micro_f1": float(f1s.mean() + 0.1),
                    "weighted_f1": 0.4,
                    "samples_f1": 0.38,
                    "macro_precision": 0.41,
                    "macro_recall": 0.44,
                    "macro_auc": 0.83,
                    "mcc": 0.35,
                    "subset_accuracy": 0.3,
                    "hamming_loss": 0.04,
                    "macro_f1_ci": [float(f1s.mean() - 0.01), float(f1s.mean() + 0.01)],
                    "n_examples": n_test,
                }
            ),
            encoding="utf-8",
        )
        _write_csv(
            ev / f"{split}_per_emotion.csv",
            ["label", "precision", "recall", "f1", "support", "threshold", "auc"],
            [
                [
                    lab,
                    round(f + 0.05, 4),
                    round(f - 0.02, 4),
                    round(f, 4),
                    int(rng.integers(5, 400)),
                    0.3,
                    round(0.7 + f / 3, 4),
                ]
                for lab, f in zip(LABELS, f1s, strict=True)
            ],
        )
    return path


def make_run(path: Path, *, n_probe: int = 300, analysis: bool = True, seed: int = 0) -> Path:
    """A complete, synthetic run folder (with analysis/ unless analysis=False)."""
    rng = np.random.default_rng(seed)
    write_baseline(path, seed=seed + 7)
    thresholds = {lab: round(float(t), 3) for lab, t in zip(LABELS, rng.uniform(0.1, 0.6, 28), strict=True)}
    (path / "thresholds.json").write_text(
        json.dumps(
            {
                "strategy": "per_emotion",
                "chosen_on": "dev",
                "thresholds": thresholds,
            }
        ),
        encoding="utf-8",
    )
    for split in ("dev", "test"):  # the per-emotion tables report the thresholds used
        p = path / "eval" / f"{split}_per_emotion.csv"
        with p.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        _write_csv(p, rows[0], [[*r[:5], thresholds[r[0]], *r[6:]] for r in rows[1:]])
    (path / "config.yaml").write_text(
        "model:\n  backbone: sentence-transformers/all-MiniLM-L6-v2\n  head: mlp-attention\n  pooling: mean\n"
        "train:\n  epochs: 2\n  lr: 5.0e-05\n  batch_size: 32\n  seed: 13\n  amp: false\n"
        "data:\n  taxonomy: original\n  max_length: 128\n  dir: ../shared/data/goemotions\n"
        "visualize: true\nnote: \"a <b>note</b> & 'quotes'\"\n",
        encoding="utf-8",
    )
    (path / "run.json").write_text(
        json.dumps(
            {
                "format": 1,
                "emoscope": "0.1.0",
                "torch": "2.13.0+cpu",
                "transformers": "4.57.0",
                "hardware": {"device": "cpu", "cpu": "2 cores", "gpus": []},
                "world_size": 1,
                "started": "2025-01-01T12:00:00+00:00",
                "wall_seconds": 3725.4,
            }
        ),
        encoding="utf-8",
    )

    lines = []
    step = 0
    for epoch in (1, 2):
        for _ in range(40):
            step += 1
            lines.append(
                {
                    "kind": "step",
                    "step": step,
                    "epoch": epoch,
                    "loss": float(0.4 / (1 + step / 20)),
                    "lr": 5e-5 * min(1.0, step / 10) * (1 - step / 90),
                    "examples_per_s": 300 + step % 7,
                }
            )
        lines.append(
            {
                "kind": "epoch",
                "epoch": epoch,
                "train_loss": 0.2 / epoch,
                "dev_macro_f1": 0.3 + 0.1 * epoch,
                "dev_micro_f1": 0.4 + 0.05 * epoch,
                "dev_loss": 0.15 / epoch,
                "seconds": 100.0,
            }
        )
    _write_jsonl(path / "metrics.jsonl", lines)

    # probe set: ids p0000..; texts of random words plus the nasty one first
    probe = []
    for i in range(n_probe):
        k = int(rng.integers(1, 3))
        labs = sorted({int(x) for x in rng.choice(len(LABELS), size=k, replace=False)})
        text = NASTY_TEXT if i == 0 else f"comment {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(3, 30))))
        probe.append({"id": f"p{i:04d}", "text": text, "labels": labs})
    _write_jsonl(path / "captures" / "probe.jsonl", probe)

    preds = []
    for o in probe[: n_probe - 10]:  # a few probe comments lack a prediction
        probs = rng.uniform(0, 0.2, len(LABELS))
        for j in o["labels"]:
            probs[j] = rng.uniform(0.4, 1.0)
        preds.append(
            {
                "id": o["id"],
                "text": o["text"],
                "labels": [LABELS[j] for j in o["labels"]],
                "probs": [round(float(p), 4) for p in probs],
            }
        )
    _write_jsonl(path / "eval" / "test_predictions.jsonl", preds)

    if analysis:
        write_analysis(path, probe, rng)
    return path


def write_analysis(path: Path, probe: list[dict], rng: np.random.Generator) -> None:
    an = path / "analysis"
    an.mkdir(parents=True, exist_ok=True)
    metrics = list(METRICS)
    rows = []
    for ep in EPOCHS:
        for d, pt in enumerate(POINTS):
            vals = [round(float(0.05 * d + 0.1 * ep + rng.normal(0, 0.02)), 4) for _ in metrics]
            if ep == 0:
                vals[-1] = 1.0
            rows.append([ep, pt, d, *vals])
    rows[3][3 + 2] = ""  # a missing value
    _write_csv(an / "layer_metrics.csv", ["epoch", "point", "depth", *metrics], rows)

    cka = np.eye(len(POINTS)) * 0.5 + 0.5 * np.exp(-np.abs(np.subtract.outer(range(8), range(8))) / 3)
    _write_csv(
        an / "cka_layers.csv",
        ["point", *POINTS],
        [[p, *map(float, r)] for p, r in zip(POINTS, cka, strict=True)],
    )

    centres = rng.normal(0, 12, (len(LABELS), 2))
    tsne = []
    for ep in EPOCHS:
        for d, pt in enumerate(POINTS):
            spread = 10 - d - 2 * ep
            for i, o in enumerate(probe):
                if i == 0:
                    x, y = 95.0, 95.0  # isolated, so the browser test can hover it reliably
                else:
                    c = centres[o["labels"][0]] * (0.2 + 0.1 * d + 0.2 * ep)
                    x, y = c + rng.normal(0, max(spread, 1), 2)
                tsne.append([ep, pt, i, round(float(x), 3), round(float(y), 3)])
    _write_csv(an / "tsne_coords.csv", ["epoch", "point", "probe_index", "x", "y"], tsne)

    f1 = rng.uniform(0.05, 0.8, len(LABELS))
    _write_csv(
        an / "per_emotion_f1.csv",
        ["label", "f1", "support"],
        [[lab, round(float(v), 4), int(rng.integers(5, 300))] for lab, v in zip(LABELS, f1, strict=True)],
    )
    _write_csv(
        an / "confusion_2x2.csv",
        ["label", "tn", "fp", "fn", "tp"],
        [
            [
                lab,
                int(rng.integers(4000, 5000)),
                int(rng.integers(0, 90)),
                int(rng.integers(0, 90)),
                int(rng.integers(0, 200)),
            ]
            for lab in LABELS
        ],
    )
    mis = rng.random((len(LABELS), len(LABELS)))
    mis /= mis.sum(axis=1, keepdims=True)
    _write_csv(
        an / "misclassification.csv",
        ["true", *LABELS],
        [[lab, *(round(float(v), 4) for v in r)] for lab, r in zip(LABELS, mis, strict=True)],
    )
    corr_rows = []
    human = np.corrcoef(rng.random((len(LABELS), 50)))
    model = np.clip(human + rng.normal(0, 0.1, human.shape), -1, 1)
    for source, m in (("human", human), ("model", model), ("difference", model - human)):
        for a, ra in zip(LABELS, m, strict=True):
            for b, v in zip(LABELS, ra, strict=True):
                corr_rows.append([source, a, b, round(float(v), 4)])
    _write_csv(an / "correlation.csv", ["source", "row", "col", "value"], corr_rows)
    _write_csv(
        an / "label_prob_correlation.csv",
        ["label", "correlation"],
        [[lab, round(float(v), 4)] for lab, v in zip(LABELS, rng.uniform(0.1, 0.8, 28), strict=True)],
    )
    _write_csv(
        an / "dendrograms.csv",
        ["epoch", "point", "a", "b", "distance", "size"],
        [[2, "layer_6", i, i + 1, 0.1 * i, 2] for i in range(27)],
    )

    mistakes = []
    for k, lab in enumerate(LABELS[:10]):
        for kind in ("false_positive", "false_negative"):
            for j in range(3):
                text = NASTY_MISTAKE if (k, kind, j) == (0, "false_positive", 0) else f"mistake {lab} {kind} {j}, x"
                mistakes.append(
                    [
                        lab,
                        kind,
                        round(0.99 - 0.01 * j, 3),
                        f"m{k}{j}{kind[6]}",
                        text,
                        "joy;love",
                        lab if kind == "false_positive" else "neutral",
                    ]
                )
    _write_csv(
        an / "confident_mistakes.csv",
        ["label", "kind", "prob", "id", "text", "true_labels", "predicted_labels"],
        mistakes,
    )
    summary = {
        "run": path.name,
        "probe": {
            "texts": len(probe),
            "single_label": len(probe) - 40,
            "epochs": [0, 1, 2],
            "pooling": "mean",
            "points": POINTS,
        },
        "rsa_reference": "training labels (`analysis_inputs/cooccurrence.csv`)",
        "posneg_threshold": 0.1,
        "separation": [
            {"epoch": 2, "stage": "last", "first_point": "layer_3", "best_point": "layer_6", "best_value": 0.41},
            {"epoch": 0, "stage": "first", "first_point": None, "best_point": "layer_6", "best_value": None},
        ],
        "points": [
            {
                "point": p,
                "posneg_first": 0.01,
                "silhouette_posneg_last": 0.21,
                "silhouette_sentiment_last": 0.1,
                "probe_macro_f1_last": 0.41,
                "rsa_sentiment_last": None,
            }
            for p in POINTS
        ],
        "entangled": {
            "point": "layer_6",
            "epoch": 2,
            "pairs": [
                {"a": "annoyance", "b": "anger", "similarity": 0.93, "same_sentiment": True},
                {"a": "fear", "b": "nervousness", "similarity": 0.9, "same_sentiment": True},
            ],
        },
        "confusions": [{"true": "annoyance", "predicted": "anger", "share": 0.2}],
        "notes": [NASTY_SUMMARY, "No `thresholds.json`: test predictions use a threshold of 0.5."],
    }
    (an / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    for i, name in enumerate(FIGURES):
        _png(an / f"{name}.png", i)
