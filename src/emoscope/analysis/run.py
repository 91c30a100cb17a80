"""`emoscope analyze RUN_DIR`: every number, figure and the summary from what a run folder holds."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from emoscope.analysis import figures as fig
from emoscope.analysis import predictions as pr
from emoscope.analysis.metrics import (
    LabelGroups,
    centroid_linkage,
    centroids,
    cka_matrix,
    coannotation_rdm,
    cooccurrence_counts,
    linear_cka,
    point_metrics,
    single_label,
)
from emoscope.analysis.probe import read_cooccurrence, read_probe
from emoscope.analysis.projection import tsne_series
from emoscope.analysis.summary import write_summary
from emoscope.analysis.tracker import load_capture
from emoscope.data.labels import sentiment_colour, text_sentiment
from emoscope.errors import DataError, UserError
from emoscope.evaluate.metrics import confusion_counts, per_label_scores, read_predictions
from emoscope.runfolder import (
    ANALYSIS,
    CAPTURES,
    THRESHOLDS,
    cooccurrence_path,
    eval_file,
    load_thresholds,
    probe_path,
    read_labels,
    split_predictions,
)

METRICS = (
    "silhouette_emotion",
    "silhouette_sentiment",
    "silhouette_ekman",
    "probe_macro_f1",
    "rsa_sentiment",
    "rsa_ekman",
    "rsa_cooccurrence",
    "ari_sentiment_k3",
    "ari_ekman_k6",
    "cka_vs_epoch0",
)
POSNEG_THRESHOLD = 0.10


def _spread(epochs: list[int], keep: int | None) -> list[int]:
    """At most `keep` epochs, evenly spread, always the first and the last."""
    if keep is None or len(epochs) <= keep:
        return epochs
    if keep < 2:
        return epochs[-1:]
    return [epochs[i] for i in sorted({round(k * (len(epochs) - 1) / (keep - 1)) for k in range(keep)})]


class _Captures:
    """The run's probe set and selected captures, validated against each other."""

    def __init__(self, run_dir: Path, points: Sequence[str] | None, max_epochs: int | None):
        folder = run_dir / CAPTURES
        files = {}
        for path in folder.glob("epoch_*.safetensors"):
            match = re.fullmatch(r"epoch_(\d+)\.safetensors", path.name)
            if match:
                files[int(match.group(1))] = path
        if not files:
            raise UserError(
                f"no captures in {folder}: train with --visualize, or capture saved weights first "
                f"(emoscope analyze {run_dir} --capture)"
            )
        probe = probe_path(run_dir)
        if not probe.is_file():
            raise UserError(f"{probe} not found: the captures cannot be matched to texts and labels")
        self.ids, self.texts, self.labels = read_probe(probe)
        self.epochs = _spread(sorted(files), max_epochs)
        self.data: dict[int, dict[str, np.ndarray]] = {}
        poolings = {}
        for epoch in self.epochs:
            arrays, meta = load_capture(files[epoch])
            poolings[epoch] = meta["pooling"]
            for name, array in arrays.items():
                if len(array) != len(self.labels):
                    raise DataError(
                        files[epoch],
                        None,
                        f"point {name} has {len(array)} rows but probe.jsonl has {len(self.labels)} texts",
                    )
            self.data[epoch] = arrays
        if len(set(poolings.values())) > 1:
            found = ", ".join(f"epoch {e}: {p}" for e, p in poolings.items())
            raise UserError(f"the captures in {folder} mix poolings ({found}); capture again with one pooling")
        self.pooling = poolings[self.epochs[-1]]
        order = list(self.data[self.epochs[-1]])
        common = [p for p in order if all(p in self.data[e] for e in self.epochs)]
        unknown = [p for p in points or () if p not in common]
        if unknown:
            raise UserError(f"unknown point(s) {', '.join(unknown)}; the captures hold {', '.join(common)}")
        self.points = [p for p in common if points is None or p in points]
        self.has_epoch0 = 0 in files  # kept even when max_epochs=1 leaves only the last epoch in `data`
        self.epoch0 = self.data[0] if 0 in self.data else load_capture(files[0])[0] if self.has_epoch0 else None


def run_analysis(
    run_dir: str | Path,
    points: Sequence[str] | None = None,
    max_epochs: int | None = None,
    tsne: bool = True,
    *,
    folds: int = 3,
    tsne_iter: int = 150,
    n_jobs: int = 2,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write `analysis/` (see DEVELOPERS.md) from the run folder and return its path.

    Needs `captures/` and `labels.json`; the test-set figures are made when `eval/test_predictions.jsonl`
    exists, and the summary says what was skipped and why. `max_epochs` keeps that many captures, evenly
    spread, first and last included. The t-SNE layouts, the longest part, run in `n_jobs` spawned worker
    processes (one series of epochs per point) while this process computes the rest; 1 keeps them here.
    Everything runs single-threaded inside: the matrices are small, and on a shared 2-core machine threaded
    BLAS spent over 10x the CPU time spinning (ridge probe 1.5 s vs 0.1 s).
    """
    with threadpool_limits(limits=1):
        return _analyse(Path(run_dir), points, max_epochs, tsne, folds, tsne_iter, n_jobs, log)


def _analyse(
    run_dir: Path,
    points: Sequence[str] | None,
    max_epochs: int | None,
    tsne: bool,
    folds: int,
    tsne_iter: int,
    n_jobs: int,
    log: Callable[[str], None] | None,
) -> Path:
    say = log or (lambda message: None)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    info = read_labels(run_dir)
    groups = LabelGroups.from_maps(info["labels"], info.get("sentiment_of", {}), info.get("ekman_of", {}))
    caps = _Captures(run_dir, points, max_epochs)
    out = run_dir / ANALYSIS
    out.mkdir(exist_ok=True)
    notes: list[str] = []
    executor = ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) if tsne and n_jobs > 1 else None
    try:
        layouts = _start_tsne(caps, tsne_iter, executor) if tsne else None  # workers run beside the metrics
        coannotation, reference = _coannotation(run_dir, caps, groups)
        say(f"layer metrics: {len(caps.epochs)} epochs x {len(caps.points)} points")
        rows = _layer_metrics(out, caps, groups, coannotation, folds, notes)
        _dendrograms(out, caps, groups)
        confusions = _test_figures(run_dir, out, groups, notes)
        if layouts is None:
            notes.append("t-SNE skipped on request.")
        else:
            say("t-SNE grid")
            _tsne_figures(out, caps, groups, layouts())
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    write_summary(out, _summary(run_dir, caps, groups, rows, confusions, reference, notes))
    say(f"analysis written to {out}")
    return out


def _coannotation(run_dir: Path, caps: _Captures, groups: LabelGroups) -> tuple[np.ndarray, str]:
    """The human co-annotation dissimilarity, from training labels when the run saved them."""
    path = cooccurrence_path(run_dir)
    if not path.is_file():
        counts = cooccurrence_counts(caps.labels, len(groups.labels))
        return (
            coannotation_rdm(counts, len(caps.labels)),
            "probe-set labels (the run wrote no `analysis_inputs/cooccurrence.csv`)",
        )
    counts, n_examples = read_cooccurrence(path)
    if counts.shape != (len(groups.labels),) * 2:
        raise DataError(path, None, f"a {counts.shape} matrix for {len(groups.labels)} labels")
    return coannotation_rdm(counts, n_examples), "training labels (`analysis_inputs/cooccurrence.csv`)"


def _layer_metrics(
    out: Path, caps: _Captures, groups: LabelGroups, coannotation: np.ndarray, folds: int, notes: list[str]
) -> list[dict]:
    """`layer_metrics.csv/png` and the CKA tables; returns the rows (with `silhouette_posneg`)."""
    rows = []
    for epoch in caps.epochs:
        for depth, point in enumerate(caps.points):
            X = caps.data[epoch][point]
            row = {
                "epoch": epoch,
                "point": point,
                "depth": depth,
                **point_metrics(X, caps.labels, groups, coannotation, folds),
            }
            row["cka_vs_epoch0"] = linear_cka(X, caps.epoch0[point]) if caps.has_epoch0 else math.nan
            rows.append(row)
    fig.write_csv(
        out / "layer_metrics.csv",
        ["epoch", "point", "depth", *METRICS],
        [[r["epoch"], r["point"], r["depth"], *(r[m] for m in METRICS)] for r in rows],
    )
    fig.plot_layer_metrics(out / "layer_metrics.png", rows, METRICS)

    last = caps.epochs[-1]
    cka = cka_matrix([caps.data[last][p] for p in caps.points])
    fig.write_matrix_csv(out / "cka_layers.csv", "point", caps.points, caps.points, cka)
    fig.plot_matrix(
        out / "cka_layers.png",
        cka,
        caps.points,
        caps.points,
        f"linear CKA between points, epoch {last}",
        vmin=0,
        vmax=1,
    )
    if caps.has_epoch0:
        drift = np.array([[r["cka_vs_epoch0"] for r in rows if r["point"] == p] for p in caps.points])
        epochs = [f"epoch {e}" for e in caps.epochs]
        # long form: a wide table of few epochs would look like a long one to the report's reader
        fig.write_csv(
            out / "cka_epoch0.csv",
            ["point", "epoch", "value"],
            [[r["point"], r["epoch"], r["cka_vs_epoch0"]] for r in rows],
        )
        fig.plot_matrix(
            out / "cka_epoch0.png", drift, caps.points, epochs, "linear CKA with the epoch-0 state", vmin=0, vmax=1
        )
    else:
        notes.append("No epoch-0 capture: `cka_vs_epoch0` is empty.")
    return rows


def _emotion_centroids(X: np.ndarray, caps: _Captures, groups: LabelGroups) -> tuple[np.ndarray, list[int]]:
    """Centroids (of probe-centred features) of the emotions present in the probe set, neutral left out."""
    C = centroids(X - X.mean(0), caps.labels, len(groups.labels))
    keep = [i for i in groups.emotions if np.isfinite(C[i]).all() and np.linalg.norm(C[i]) > 0]
    return C[keep], keep


def _dendrograms(out: Path, caps: _Captures, groups: LabelGroups) -> None:
    trees, leaves, csv_rows = {}, {}, []
    for epoch in caps.epochs:
        for point in caps.points:
            C, keep = _emotion_centroids(caps.data[epoch][point], caps, groups)
            if len(keep) < 3:
                continue
            trees[(epoch, point)] = tree = centroid_linkage(C)
            leaves[(epoch, point)] = names = [groups.labels[i] for i in keep]
            cluster = names + [f"cluster_{len(names) + k}" for k in range(len(tree))]
            csv_rows += [
                [epoch, point, k, cluster[int(a)], cluster[int(b)], dist, int(size)]
                for k, (a, b, dist, size) in enumerate(tree)
            ]
    fig.write_csv(out / "dendrograms.csv", ["epoch", "point", "step", "left", "right", "distance", "size"], csv_rows)
    fig.plot_dendrograms(
        out / "dendrograms.png",
        trees,
        leaves,
        caps.points,
        caps.epochs,
        dict(zip(groups.labels, groups.sentiment, strict=True)),
    )


def _start_tsne(
    caps: _Captures, n_iter: int, executor: ProcessPoolExecutor | None
) -> Callable[[], dict[tuple[int, str], np.ndarray]]:
    """Start every point's t-SNE series (in worker processes when given) and return how to collect them."""
    series = {p: {e: caps.data[e][p] for e in caps.epochs} for p in caps.points}
    if executor is None:
        futures = None
    else:
        futures = {p: executor.submit(tsne_series, s, n_iter=n_iter) for p, s in series.items()}

    def collect() -> dict[tuple[int, str], np.ndarray]:
        done = (
            {p: f.result() for p, f in futures.items()}
            if futures is not None
            else {p: tsne_series(s, n_iter=n_iter) for p, s in series.items()}
        )
        return {(e, p): xy for p, by_epoch in done.items() for e, xy in by_epoch.items()}

    return collect


def _tsne_figures(out: Path, caps: _Captures, groups: LabelGroups, layouts: dict[tuple[int, str], np.ndarray]) -> None:
    fig.write_csv(
        out / "tsne_coords.csv",
        ["epoch", "point", "probe_index", "x", "y"],
        [[e, p, i, x, y] for (e, p), xy in layouts.items() for i, (x, y) in enumerate(xy)],
    )
    palette = fig.label_colours(groups.labels)
    first = [y[0] if y else None for y in caps.labels]
    present = sorted({f for f in first if f is not None})
    fig.plot_tsne_grid(
        out / "tsne_emotion.png",
        layouts,
        caps.points,
        caps.epochs,
        [palette[f] if f is not None else "black" for f in first],
        {groups.labels[i]: palette[i] for i in present},
        "t-SNE of the probe set, coloured by (first) emotion",
    )
    sentiment = [text_sentiment(groups.sentiment[i] for i in y) for y in caps.labels]
    fig.plot_tsne_grid(
        out / "tsne_sentiment.png",
        layouts,
        caps.points,
        caps.epochs,
        [sentiment_colour(s) for s in sentiment],
        {s: sentiment_colour(s) for s in dict.fromkeys(sorted(sentiment))},
        "t-SNE of the probe set, coloured by sentiment group",
    )


def _test_figures(run_dir: Path, out: Path, groups: LabelGroups, notes: list[str]) -> np.ndarray | None:
    """The error-analysis figures on test; returns the misclassification matrix (None without predictions)."""
    path = eval_file(run_dir, split_predictions("test"))
    if not path.is_file():
        notes.append(
            "No `eval/test_predictions.jsonl`: the test-set figures were not made (evaluate the run on test first)."
        )
        return None
    labels = groups.labels
    thresholds_path = run_dir / THRESHOLDS
    if thresholds_path.is_file():
        thresholds = dict(zip(labels, load_thresholds(thresholds_path, labels).values.tolist(), strict=True))
    else:
        thresholds = {}
        notes.append("No `thresholds.json`: test predictions use a threshold of 0.5.")
    preds = read_predictions(path, labels)
    predicted = pr.decide(preds.probs, labels, thresholds)
    group_of = dict(zip(labels, groups.sentiment, strict=True))

    counts = confusion_counts(preds.truth, predicted)
    scores = per_label_scores(counts)
    order = np.argsort(-scores["f1"], kind="stable")
    fig.write_csv(
        out / "per_emotion_f1.csv",
        ["label", "f1", "precision", "recall", "support"],
        [
            [labels[i], scores["f1"][i], scores["precision"][i], scores["recall"][i], scores["support"][i]]
            for i in order
        ],
    )
    fig.plot_per_emotion_f1(out / "per_emotion_f1.png", labels, scores["f1"], scores["support"], group_of)

    fig.write_csv(
        out / "confusion_2x2.csv",
        ["label", "tn", "fp", "fn", "tp"],
        [[name, *row] for name, row in zip(labels, counts, strict=True)],
    )
    fig.plot_confusion_grid(out / "confusion_2x2.png", labels, counts)

    confusion = pr.misclassification(preds.truth, predicted)
    fig.write_matrix_csv(out / "misclassification.csv", "true\\predicted", labels, labels, confusion)
    fig.plot_matrix(
        out / "misclassification.png",
        confusion,
        labels,
        labels,
        "share of true-label examples given each predicted label (test)",
        vmin=0,
        vmax=1,
        xlabel="predicted",
        ylabel="true",
    )

    mistakes = pr.confident_mistakes(preds, predicted, labels)
    columns = ["label", "kind", "prob", "id", "text", "true_labels", "predicted_labels"]
    fig.write_csv(out / "confident_mistakes.csv", columns, [[m[c] for c in columns] for m in mistakes])

    human, model = pr.column_correlation(preds.truth.astype(float)), pr.column_correlation(preds.probs)
    fig.write_csv(
        out / "correlation.csv",
        ["source", "row", "col", "value"],
        [
            [source, labels[i], labels[j], matrix[i, j]]
            for source, matrix in (("human", human), ("model", model), ("difference", model - human))
            for i in range(len(labels))
            for j in range(len(labels))
        ],
    )
    fig.plot_correlations(out / "correlation.png", labels, human, model)

    r = pr.label_prob_correlation(preds.truth, preds.probs)
    fig.write_csv(
        out / "label_prob_correlation.csv",
        ["label", "correlation", "support"],
        [[name, value, n] for name, value, n in zip(labels, r, scores["support"], strict=True)],
    )
    fig.plot_bars(
        out / "label_prob_correlation.png",
        labels,
        r,
        "Pearson r",
        "correlation of the predicted probability with the human label (test)",
    )
    return confusion


def _first_separating(rows: list[dict], epoch: int) -> tuple[str | None, str, float]:
    """(first point at `epoch` reaching the positive/negative criterion or None, best point, its value)."""
    at = [r for r in rows if r["epoch"] == epoch]
    first = next((r["point"] for r in at if r["silhouette_posneg"] >= POSNEG_THRESHOLD), None)
    best = max(at, key=lambda r: -math.inf if math.isnan(r["silhouette_posneg"]) else r["silhouette_posneg"])
    return first, best["point"], best["silhouette_posneg"]


def _summary(
    run_dir: Path,
    caps: _Captures,
    groups: LabelGroups,
    rows: list[dict],
    confusion: np.ndarray | None,
    reference: str,
    notes: list[str],
) -> dict:
    """The findings with their numbers (`analysis/summary.json`; `emoscope.analysis.summary` renders them)."""
    last = caps.epochs[-1]
    separation = []
    for epoch, stage in [(last, "last")] + ([(caps.epochs[0], "first")] if caps.epochs[0] != last else []):
        first, best, value = _first_separating(rows, epoch)
        separation.append(
            {"epoch": epoch, "stage": stage, "first_point": first, "best_point": best, "best_value": value}
        )
    by = {(r["epoch"], r["point"]): r for r in rows}
    points = [
        {
            "point": p,
            "posneg_first": by[(caps.epochs[0], p)]["silhouette_posneg"],
            **{
                f"{m}_last": by[(last, p)][m]
                for m in ("silhouette_posneg", "silhouette_sentiment", "probe_macro_f1", "rsa_sentiment")
            },
        }
        for p in caps.points
    ]

    deep = [p for p in caps.points if p != "classifier"] or caps.points
    point = deep[-1]
    C, keep = _emotion_centroids(caps.data[last][point], caps, groups)
    unit = C / np.linalg.norm(C, axis=1, keepdims=True)
    similarity = unit @ unit.T
    pairs = sorted(
        ((similarity[a, b], keep[a], keep[b]) for a in range(len(keep)) for b in range(a + 1, len(keep))), reverse=True
    )[:5]
    confusions = None
    if confusion is not None:
        off = np.nan_to_num(confusion.copy(), nan=0.0)
        np.fill_diagonal(off, 0.0)
        emotions = groups.emotions
        cells = sorted(((off[i, j], i, j) for i in emotions for j in emotions if i != j), reverse=True)[:5]
        confusions = [
            {"true": groups.labels[i], "predicted": groups.labels[j], "share": float(v)} for v, i, j in cells if v > 0
        ]
    return {
        "run": run_dir.name,
        "probe": {
            "texts": len(caps.labels),
            "single_label": len(single_label(caps.labels)[0]),
            "epochs": caps.epochs,
            "pooling": caps.pooling,
            "points": caps.points,
        },
        "rsa_reference": reference,
        "posneg_threshold": POSNEG_THRESHOLD,
        "separation": separation,
        "points": points,
        "entangled": {
            "point": point,
            "epoch": last,
            "pairs": [
                {
                    "a": groups.labels[a],
                    "b": groups.labels[b],
                    "similarity": float(s),
                    "same_sentiment": groups.sentiment[a] == groups.sentiment[b],
                }
                for s, a, b in pairs
            ],
        },
        "confusions": confusions,
        "notes": notes,
    }
