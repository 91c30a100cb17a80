"""`emoscope analyze RUN_DIR`: every number, figure and the summary from what a run folder holds."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from emoscope.analysis import figures as fig
from emoscope.analysis import predictions as pr
from emoscope.analysis.probe import read_cooccurrence, read_probe
from emoscope.analysis.projection import tsne_series
from emoscope.analysis.structure import (
    ARI_RESAMPLES,
    LabelGroups,
    ResampledGram,
    centroid_linkage,
    centroids,
    cka_matrix,
    coannotation_rdm,
    cooccurrence_counts,
    linear_cka,
    point_metrics,
    single_label,
    split_halves,
)
from emoscope.analysis.summary import write_summary
from emoscope.analysis.tracker import load_capture
from emoscope.analysis.uncertainty import difference, interval, permutation_p, split_half_ceiling
from emoscope.core.errors import DataError, UserError
from emoscope.core.runfolder import (
    ANALYSIS,
    CAPTURES,
    THRESHOLDS,
    cooccurrence_half_path,
    cooccurrence_path,
    eval_file,
    load_thresholds,
    probe_path,
    read_labels,
    split_predictions,
)
from emoscope.data.labels import sentiment_colour, text_sentiment
from emoscope.evaluate.bootstrap import resample_counts
from emoscope.evaluate.metrics import confusion_counts, per_label_scores, read_predictions

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
RSA_METRICS = ("rsa_sentiment", "rsa_ekman", "rsa_cooccurrence")
LAYER_COLUMNS = (
    *METRICS,
    *(f"{m}_ci95_{side}" for m in METRICS for side in ("low", "high")),
    *(f"{m}_p" for m in RSA_METRICS),
    "rdm_reliability",
)
POSNEG_THRESHOLD = 0.10


@dataclass(frozen=True)
class Uncertainty:
    """How the analysis measures its own uncertainty: bootstrap resamples of the probe texts and RSA
    permutations, both seeded."""

    resamples: int = 1000
    permutations: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.resamples < 2 or self.permutations < 1:
            raise UserError(
                f"--resamples must be at least 2 and --permutations at least 1, got {self.resamples} and "
                f"{self.permutations}"
            )


def _spread(epochs: list[int], keep: int | None) -> list[int]:
    """At most `keep` epochs, evenly spread, always the first and the last."""
    if keep is None or len(epochs) <= keep:
        return epochs
    if keep < 2:
        return epochs[-1:]
    return [epochs[i] for i in sorted({round(k * (len(epochs) - 1) / (keep - 1)) for k in range(keep)})]


class Captures:
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
    uncertainty: Uncertainty = Uncertainty(),
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write `analysis/` (see DEVELOPERS.md) from the run folder and return its path.

    Needs `captures/` and `labels.json`; the test-set figures are made when `eval/test_predictions.jsonl`
    exists, and the summary says what was skipped and why. `max_epochs` keeps that many captures, evenly
    spread, first and last included. The t-SNE layouts, the longest part, run in `n_jobs` spawned worker
    processes (one series of epochs per point) while this process computes the rest; 1 keeps them here.
    Everything runs single-threaded inside: the matrices are small, and on a shared 2-core machine threaded
    BLAS spent over 10x the CPU time spinning (ridge probe 1.5 s vs 0.1 s). `uncertainty` sets the
    bootstrap and permutation counts behind every interval and p-value.
    """
    with threadpool_limits(limits=1):
        return _analyse(Path(run_dir), points, max_epochs, tsne, folds, tsne_iter, n_jobs, uncertainty, log)


def _analyse(
    run_dir: Path,
    points: Sequence[str] | None,
    max_epochs: int | None,
    tsne: bool,
    folds: int,
    tsne_iter: int,
    n_jobs: int,
    uncertainty: Uncertainty,
    log: Callable[[str], None] | None,
) -> Path:
    say = log or (lambda message: None)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    info = read_labels(run_dir)
    groups = LabelGroups.from_maps(info["labels"], info.get("sentiment_of", {}), info.get("ekman_of", {}))
    caps = Captures(run_dir, points, max_epochs)
    out = run_dir / ANALYSIS
    out.mkdir(exist_ok=True)
    notes: list[str] = []
    executor = ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) if tsne and n_jobs > 1 else None
    try:
        layouts = _start_tsne(caps, tsne_iter, executor) if tsne else None  # workers run beside the metrics
        coannotation, reference, ceiling = _coannotation(run_dir, caps, groups)
        say(f"layer metrics: {len(caps.epochs)} epochs x {len(caps.points)} points")
        rows, samples = _layer_metrics(out, caps, groups, coannotation, folds, uncertainty, notes)
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
    findings = _summary(run_dir, caps, groups, rows, samples, confusions, reference, notes)
    write_summary(out, {**findings, "rsa_noise_ceiling": ceiling})
    say(f"analysis written to {out}")
    return out


def _coannotation(run_dir: Path, caps: Captures, groups: LabelGroups) -> tuple[np.ndarray, str, dict | None]:
    """The human co-annotation dissimilarity, from training labels when the run saved them, where it comes
    from, and its split-half noise ceiling (None when the run saved no halves)."""
    emotions = groups.emotions
    path = cooccurrence_path(run_dir)
    if not path.is_file():
        counts = cooccurrence_counts(caps.labels, len(groups.labels))
        halves = [
            (cooccurrence_counts([caps.labels[i] for i in half], len(groups.labels)), len(half))
            for half in split_halves(len(caps.labels))
        ]
        return (
            coannotation_rdm(counts, len(caps.labels)),
            "probe-set labels (the run wrote no `analysis_inputs/cooccurrence.csv`)",
            split_half_ceiling(*halves, emotions),
        )
    counts, n_examples = _read_counts(path, groups)
    halves = [cooccurrence_half_path(run_dir, k) for k in (1, 2)]
    ceiling = (
        split_half_ceiling(*(_read_counts(h, groups) for h in halves), emotions)
        if all(h.is_file() for h in halves)
        else None
    )
    return coannotation_rdm(counts, n_examples), "training labels (`analysis_inputs/cooccurrence.csv`)", ceiling


def _read_counts(path: Path, groups: LabelGroups) -> tuple[np.ndarray, int]:
    counts, n_examples = read_cooccurrence(path)
    if counts.shape != (len(groups.labels),) * 2:
        raise DataError(path, None, f"a {counts.shape} matrix for {len(groups.labels)} labels")
    return counts, n_examples


def _layer_metrics(
    out: Path,
    caps: Captures,
    groups: LabelGroups,
    coannotation: np.ndarray | None,
    folds: int,
    uncertainty: Uncertainty,
    notes: list[str],
) -> tuple[list[dict], dict[tuple[int, str], dict[str, np.ndarray]]]:
    """`layer_metrics.csv/png` and the CKA tables; returns the rows (with `silhouette_posneg` and the
    intervals) and every number's bootstrap samples by (epoch, point), all on the same resamples."""
    weights = resample_counts(len(caps.labels), uncertainty.resamples, uncertainty.seed)
    grams0 = {p: ResampledGram(caps.epoch0[p], weights) for p in caps.points} if caps.has_epoch0 else {}
    rows, samples = [], {}
    for epoch in caps.epochs:
        for depth, point in enumerate(caps.points):
            X = caps.data[epoch][point]
            row = {"epoch": epoch, "point": point, "depth": depth}
            found = point_metrics(X, caps.labels, groups, coannotation, folds, weights=weights)
            boot, rdms = found.pop("samples"), found.pop("rsa_rdms")
            row.update(found)
            for metric in RSA_METRICS:
                row[f"{metric}_p"] = (
                    permutation_p(rdms["model"], rdms[metric], uncertainty.permutations, uncertainty.seed)
                    if metric in rdms
                    else math.nan
                )
            if caps.has_epoch0:
                row["cka_vs_epoch0"] = linear_cka(X, caps.epoch0[point])
                boot["cka_vs_epoch0"] = (
                    ResampledGram(X, weights).cka(grams0[point]) if epoch else grams0[point].cka(grams0[point])
                )
            else:
                row["cka_vs_epoch0"] = math.nan
                boot["cka_vs_epoch0"] = np.full(len(weights), math.nan)
            for metric, values in boot.items():
                row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"] = interval(values, row[metric])
            rows.append(row)
            samples[(epoch, point)] = boot
    notes.append(
        "Intervals: 95% normal bootstrap intervals (the estimate +- 1.96 standard deviations of its resamples) "
        f"over the probe texts ({uncertainty.resamples} resamples, seed {uncertainty.seed}, the same resamples "
        "at every point and epoch; the dendrogram ARIs on the first "
        f"{min(ARI_RESAMPLES, uncertainty.resamples)}). The probe macro-F1 resamples the cross-validated "
        f"held-out predictions without refitting. RSA p-values: {uncertainty.permutations} permutations of "
        "the reference's emotion labels."
    )
    fig.write_csv(
        out / "layer_metrics.csv",
        ["epoch", "point", "depth", *LAYER_COLUMNS],
        [[r["epoch"], r["point"], r["depth"], *(r[c] for c in LAYER_COLUMNS)] for r in rows],
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
    return rows, samples


def _emotion_centroids(X: np.ndarray, caps: Captures, groups: LabelGroups) -> tuple[np.ndarray, list[int]]:
    """Centroids (of probe-centred features) of the emotions present in the probe set, neutral left out."""
    C = centroids(X - X.mean(0), caps.labels, len(groups.labels))
    keep = [i for i in groups.emotions if np.isfinite(C[i]).all() and np.linalg.norm(C[i]) > 0]
    return C[keep], keep


def _dendrograms(out: Path, caps: Captures, groups: LabelGroups) -> None:
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
    caps: Captures, n_iter: int, executor: ProcessPoolExecutor | None
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


def _tsne_figures(out: Path, caps: Captures, groups: LabelGroups, layouts: dict[tuple[int, str], np.ndarray]) -> None:
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


POSNEG = "silhouette_posneg"
SUMMARY_METRICS = ("silhouette_posneg", "silhouette_sentiment", "probe_macro_f1", "rsa_sentiment")


def _separation(rows: list[dict], samples: dict, epoch: int, stage: str) -> dict:
    """At `epoch`: the first point whose positive/negative silhouette interval lies wholly at or above the
    criterion (None if none), compared with the point before it, and the highest point, compared with the
    runner-up; each comparison is the paired bootstrap difference."""
    at = [r for r in rows if r["epoch"] == epoch]
    first = next((k for k, r in enumerate(at) if r[f"{POSNEG}_ci95_low"] >= POSNEG_THRESHOLD), None)
    ranked = sorted(at, key=lambda r: -math.inf if math.isnan(r[POSNEG]) else r[POSNEG], reverse=True)

    def versus(a: dict, b: dict) -> dict:
        return {
            "point": b["point"],
            **difference(
                samples[(epoch, a["point"])][POSNEG], samples[(epoch, b["point"])][POSNEG], a[POSNEG] - b[POSNEG]
            ),
        }

    best = ranked[0]
    return {
        "epoch": epoch,
        "stage": stage,
        "first_point": None if first is None else at[first]["point"],
        "first_value": None if first is None else at[first][POSNEG],
        "first_ci95": None if first is None else _ci(at[first], POSNEG),
        "vs_previous": versus(at[first], at[first - 1]) if first else None,
        "best_point": best["point"],
        "best_value": best[POSNEG],
        "best_ci95": _ci(best, POSNEG),
        "vs_runner_up": versus(best, ranked[1]) if len(ranked) > 1 else None,
    }


def _ci(row: dict, metric: str) -> list[float]:
    return [row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"]]


def _summary(
    run_dir: Path,
    caps: Captures,
    groups: LabelGroups,
    rows: list[dict],
    samples: dict[tuple[int, str], dict[str, np.ndarray]],
    confusion: np.ndarray | None,
    reference: str,
    notes: list[str],
) -> dict:
    """The findings with their numbers (`analysis/summary.json`; `emoscope.analysis.summary` renders them)."""
    first_epoch, last = caps.epochs[0], caps.epochs[-1]
    stages = [(last, "last")] + ([(first_epoch, "first")] if first_epoch != last else [])
    separation = [_separation(rows, samples, epoch, stage) for epoch, stage in stages]
    by = {(r["epoch"], r["point"]): r for r in rows}
    points = []
    for p in caps.points:
        start, end = by[(first_epoch, p)], by[(last, p)]
        points.append(
            {
                "point": p,
                "posneg_first": start[POSNEG],
                "posneg_first_ci95": _ci(start, POSNEG),
                **{f"{m}_last": end[m] for m in SUMMARY_METRICS},
                **{f"{m}_last_ci95": _ci(end, m) for m in SUMMARY_METRICS},
                "rdm_reliability_last": end["rdm_reliability"],
                "posneg_change": None
                if first_epoch == last
                else difference(
                    samples[(last, p)][POSNEG], samples[(first_epoch, p)][POSNEG], end[POSNEG] - start[POSNEG]
                ),
            }
        )

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
