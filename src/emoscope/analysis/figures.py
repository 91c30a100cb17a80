"""Static figures (PNG) and the CSVs of the numbers behind them.

Drawn on `matplotlib.figure.Figure` objects with the Agg canvas, never through pyplot, so nothing changes
the process-wide backend or leaks open figures in a long training process. The grids of ~50 axes use fixed
margins: constrained layout measures every tick label and took as long as the drawing itself.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.cluster.hierarchy import dendrogram

from emoscope.data.labels import NEUTRAL, SENTIMENT_COLOURS, sentiment_colour

DPI = 90


def label_colours(labels: Sequence[str]) -> list:
    """One distinct colour per label (tab20 then tab20b), neutral grey."""
    palette = list(colormaps["tab20"].colors) + list(colormaps["tab20b"].colors)
    return [
        SENTIMENT_COLOURS[NEUTRAL] if name == NEUTRAL else palette[i % len(palette)] for i, name in enumerate(labels)
    ]


def _fmt(value) -> object:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.6g}"
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    """A CSV with a header; NaN written as an empty cell (a number that could not be computed)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([_fmt(v) for v in row] for row in rows)
    return path


def write_matrix_csv(
    path: Path, corner: str, row_names: Sequence[str], col_names: Sequence[str], matrix: np.ndarray
) -> Path:
    """A wide matrix: first column the row names, header the column names."""
    return write_csv(path, [corner, *col_names], [[r, *row] for r, row in zip(row_names, matrix, strict=True)])


def _grid(
    rows: int,
    cols: int,
    width: float,
    height: float,
    *,
    left: float = 0.7,
    right: float = 0.2,
    top: float = 1.0,
    bottom: float = 0.3,
    wspace: float = 0.15,
    hspace: float = 0.15,
):
    """A figure of rows x cols axes, each `width` x `height` inches, margins in inches."""
    w, h = left + right + cols * width, top + bottom + rows * height
    fig = Figure(figsize=(w, h))
    axes = fig.subplots(
        rows,
        cols,
        squeeze=False,
        gridspec_kw={
            "left": left / w,
            "right": 1 - right / w,
            "top": 1 - top / h,
            "bottom": bottom / h,
            "wspace": wspace,
            "hspace": hspace,
        },
    )
    return fig, axes


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def plot_matrix(
    path: Path,
    matrix: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    title: str,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str = "",
    ylabel: str = "",
) -> Path:
    size = max(4.0, 0.22 * len(col_names) + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_names)), col_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _save(fig, path)


def plot_layer_metrics(path: Path, rows: Sequence[Mapping], metrics: Sequence[str]) -> Path:
    """One panel per metric, x the hook points in depth order, one line per epoch."""
    points = list(dict.fromkeys(r["point"] for r in sorted(rows, key=lambda r: r["depth"])))
    epochs = sorted({r["epoch"] for r in rows})
    cols = 3
    fig = Figure(figsize=(4.2 * cols, 2.8 * math.ceil(len(metrics) / cols)), layout="constrained")
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(epochs)))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(math.ceil(len(metrics) / cols), cols, k + 1)
        for colour, epoch in zip(colours, epochs, strict=True):
            value = {r["point"]: r[metric] for r in rows if r["epoch"] == epoch}
            ax.plot(
                range(len(points)),
                [value.get(p, math.nan) for p in points],
                marker="o",
                ms=3,
                color=colour,
                label=f"epoch {epoch}",
            )
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(points)), points, rotation=60, fontsize=7)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_tsne_grid(
    path: Path,
    layouts: Mapping[tuple[int, str], np.ndarray],
    points: Sequence[str],
    epochs: Sequence[int],
    colours: Sequence,
    legend: Mapping[str, object],
    title: str,
) -> Path:
    """Rows: hook points (shallow at the top); columns: epochs. `colours` has one entry per probe row."""
    fig, axes = _grid(len(points), len(epochs), 2.2, 2.2, top=1.4)
    for r, point in enumerate(points):
        for c, epoch in enumerate(epochs):
            ax = axes[r][c]
            xy = layouts[(epoch, point)]
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=2, linewidths=0, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {epoch}", fontsize=9)
            if c == 0:
                ax.set_ylabel(point, fontsize=9)
    handles = [Line2D([], [], ls="", marker="o", color=colour, label=name) for name, colour in legend.items()]
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=10, y=1 - 0.1 / height)
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.35 / height),
        ncol=min(len(handles), 7),
        fontsize=7,
        frameon=False,
    )
    return _save(fig, path)


def plot_dendrograms(
    path: Path,
    trees: Mapping[tuple[int, str], np.ndarray],
    leaf_names: Mapping[tuple[int, str], Sequence[str]],
    points: Sequence[str],
    epochs: Sequence[int],
    group_of: Mapping[str, str],
) -> Path:
    """Centroid dendrograms, rows points and columns epochs; leaf labels coloured by sentiment group."""
    fig, axes = _grid(len(points), len(epochs), 3.2, 1.9, top=0.6, bottom=0.9, wspace=0.25, hspace=0.55)
    for r, point in enumerate(points):
        for c, epoch in enumerate(epochs):
            ax = axes[r][c]
            tree = trees.get((epoch, point))
            if tree is None:
                ax.set_axis_off()
                continue
            dendrogram(
                tree,
                ax=ax,
                labels=list(leaf_names[(epoch, point)]),
                leaf_font_size=6,
                leaf_rotation=90,
                color_threshold=0,
                above_threshold_color="#555555",
            )
            for tick in ax.get_xticklabels():
                tick.set_color(sentiment_colour(group_of.get(tick.get_text(), "")))
            ax.tick_params(axis="y", labelsize=6)
            if r == 0:
                ax.set_title(f"epoch {epoch}", fontsize=9)
            if c == 0:
                ax.set_ylabel(point, fontsize=9)
    handles = [
        Line2D([], [], ls="", marker="s", color=colour, label=name)
        for name, colour in SENTIMENT_COLOURS.items()
        if name in set(group_of.values())
    ]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    return _save(fig, path)


def plot_per_emotion_f1(
    path: Path, labels: Sequence[str], f1: np.ndarray, support: np.ndarray, group_of: Mapping[str, str]
) -> Path:
    """Bars sorted by F1 (coloured by sentiment group), support as a line on a second axis."""
    order = np.argsort(-np.asarray(f1), kind="stable")
    fig = Figure(figsize=(max(6.0, 0.32 * len(labels) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    names = [labels[i] for i in order]
    ax.bar(range(len(order)), np.asarray(f1)[order], color=[sentiment_colour(group_of.get(n, "")) for n in names])
    ax.set_xticks(range(len(order)), names, rotation=70, fontsize=7)
    ax.set(ylabel="test F1", ylim=(0, 1), title="F1 per emotion (bars: sentiment group; line: support)")
    twin = ax.twinx()
    twin.plot(range(len(order)), np.asarray(support)[order], color="black", marker=".", lw=1)
    twin.set_ylabel("support")
    return _save(fig, path)


def plot_confusion_grid(path: Path, labels: Sequence[str], counts: np.ndarray) -> Path:
    """A 2x2 (true rows no/yes, predicted columns no/yes) count matrix per label."""
    cols = 7
    rows = math.ceil(len(labels) / cols)
    fig, axes = _grid(rows, cols, 1.3, 1.3, left=0.4, top=0.6, bottom=0.2, wspace=0.5, hspace=0.45)
    axes = axes.ravel()
    for ax, name, (tn, fp, fn, tp) in zip(axes, labels, counts, strict=False):
        cells = np.array([[tn, fp], [fn, tp]])
        share = cells / np.maximum(cells.sum(1, keepdims=True), 1)  # per true row, so rare labels show too
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cells):
            ax.text(
                j, i, str(int(v)), ha="center", va="center", fontsize=6, color="white" if share[i, j] > 0.6 else "black"
            )
        ax.set_title(name, fontsize=7)
        ax.set_xticks([0, 1], ["no", "yes"], fontsize=5)
        ax.set_yticks([0, 1], ["no", "yes"], fontsize=5)
    for ax in axes[len(labels) :]:
        ax.set_axis_off()
    fig.suptitle("per-emotion confusion on test (rows: true, columns: predicted; shade: share of the row)", fontsize=9)
    return _save(fig, path)


def plot_correlations(path: Path, labels: Sequence[str], human: np.ndarray, model: np.ndarray) -> Path:
    """Human, model and difference side by side; the diagonal (always 1) is blanked so that the colour
    scale, symmetric around 0, spans the off-diagonal values that matter."""
    matrices = [m.astype(float).copy() for m in (human, model, model - human)]
    for m in matrices:
        np.fill_diagonal(m, np.nan)
    limit = max(float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 0.0 for m in matrices) or 1.0
    fig = Figure(figsize=(19, 6.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, matrix, title in zip(axes, matrices, ("human labels", "model probabilities", "model - human"), strict=True):
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_title(f"correlation: {title}", fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.7)
    return _save(fig, path)


def plot_bars(path: Path, labels: Sequence[str], values: Sequence[float], ylabel: str, title: str) -> Path:
    order = np.argsort(-np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf), kind="stable")
    fig = Figure(figsize=(max(6.0, 0.32 * len(labels) + 2), 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(order)), np.asarray(values, dtype=float)[order])
    ax.set_xticks(range(len(order)), [labels[i] for i in order], rotation=70, fontsize=7)
    ax.set(ylabel=ylabel, title=title)
    return _save(fig, path)
