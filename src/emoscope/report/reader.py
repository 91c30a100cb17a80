"""Read a run folder (or a baseline folder) for the report: every input optional, every problem one line.

Only the files described in DEVELOPERS.md are read; nothing from training or analysis is imported.
A missing file gives `None` (the page then says the section is not available); a malformed one raises
`DataError` naming the file and the line.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from emoscope.core import runfolder as rf
from emoscope.core.errors import DataError, UserError
from emoscope.core.runfolder import ENSEMBLE_INFO
from emoscope.data.labels import NEUTRAL, SENTIMENT_LABELS

_RUN_MARKERS = (rf.LABELS, rf.RUN_INFO, rf.CONFIG, rf.THRESHOLDS, rf.METRICS_LOG, rf.EVAL, rf.ANALYSIS)
_SPLIT_FILES = (rf.split_metrics(""), rf.split_per_emotion(""), rf.split_predictions(""))  # name = split + one


def to_number(text: Any) -> float | int | None:
    """A CSV cell as a number: ints stay ints; empty, 'nan' and non-numbers give None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text if not isinstance(text, float) or math.isfinite(text) else None
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise DataError(path, None, "not UTF-8 text") from None


def read_jsonl(path: Path, *, keep=None) -> list[dict] | None:
    """One object a line. A last line without its newline that does not parse is a write in progress:
    it is skipped rather than failing the report of a run that is still training."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines) and not text.endswith("\n"):
                break
            raise DataError(path, n, f"not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(path, n, "expected a JSON object")
        if keep is None or keep(obj):
            out.append(obj)
    return out


def read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            return []
        rows = []
        for row in reader:
            if None in row:
                raise DataError(path, reader.line_num, "more cells than header columns")
            rows.append({k.strip(): (v if v is not None else "") for k, v in row.items()})
        return rows


def read_csv_rows(path: Path) -> list[list[str]] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.reader(f) if r]


def require_columns(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    if rows and (missing := [c for c in columns if c not in rows[0]]):
        raise DataError(path, 1, f"missing column(s) {', '.join(missing)}")


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as dotted keys (lists kept as values)."""
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, obj)]


@dataclass
class Matrix:
    rows: list[str]
    cols: list[str]
    z: list[list[float | None]]


def read_matrix(path: Path) -> dict[str, Matrix] | None:
    """A square-ish numeric CSV in either layout: wide (first column = row names, header = column names)
    or long (`[source,]row,col,value`). Returns {source: Matrix}; the source is "" for a single matrix."""
    rows = read_csv_rows(path)
    if rows is None:
        return None
    if len(rows) < 2:
        raise DataError(path, 1, "no data rows")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    low = [h.lower() for h in header]
    # Long form names its value column; a narrow wide matrix (e.g. point x 3 epochs) must not be taken for it.
    long_form = "value" in low
    if not long_form:
        cols = header[1:]
        names, z = [], []
        for n, r in enumerate(body, start=2):
            if len(r) != len(header):
                raise DataError(path, n, f"expected {len(header)} cells, found {len(r)}")
            names.append(r[0])
            z.append([_float_or_none(c) for c in r[1:]])
        return {"": Matrix(names, cols, z)}
    value_i = low.index("value") if "value" in low else len(header) - 1
    source_i = low.index("source") if "source" in low else (0 if len(header) == 4 else None)
    rest = [i for i in range(len(header)) if i not in (value_i, source_i)]
    if len(rest) != 2:
        raise DataError(path, 1, "expected columns [source,]row,col,value or a wide matrix")
    row_i, col_i = rest
    cells: dict[str, dict[tuple[str, str], float | None]] = {}
    order: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DataError(path, n, f"expected {len(header)} cells, found {len(r)}")
        src = r[source_i] if source_i is not None else ""
        cells.setdefault(src, {})[(r[row_i], r[col_i])] = _float_or_none(r[value_i])
        ro, co = order.setdefault(src, ({}, {}))
        ro.setdefault(r[row_i], None)
        co.setdefault(r[col_i], None)
    out = {}
    for src, vals in cells.items():
        rnames, cnames = list(order[src][0]), list(order[src][1])
        out[src] = Matrix(rnames, cnames, [[vals.get((a, b)) for b in cnames] for a in rnames])
    return out


def _float_or_none(text: str) -> float | None:
    v = to_number(text)
    return None if v is None else float(v)


def split_labels(value: str) -> list[str]:
    """A list of label names as a CSV cell: JSON list, or separated by ; | , or spaces."""
    s = (value or "").strip()
    if not s:
        return []
    if s.startswith("["):
        try:
            parsed = json.loads(s)
            if isinstance(parsed, list):
                return [str(x) for x in parsed]
        except json.JSONDecodeError:
            pass
        s = s.strip("[]")
    return [p.strip().strip("'\"") for p in re.split(r"[;|,\s]+", s) if p.strip().strip("'\"")]


@dataclass
class RunData:
    """Lazy view of one run folder."""

    path: Path
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunData:
        path = Path(run_dir).expanduser()
        if not path.exists():
            raise UserError(f"run folder not found: {path}")
        if not path.is_dir():
            raise UserError(f"not a folder: {path} (give the run folder, not a file in it)")
        if not any((path / m).exists() for m in _RUN_MARKERS):
            raise UserError(
                f"{path} is not an emoscope run folder (no {rf.LABELS}, {rf.RUN_INFO}, {rf.EVAL}/ or {rf.ANALYSIS}/)"
            )
        return cls(path.resolve())

    @property
    def name(self) -> str:
        return self.path.name

    # --- small files ---------------------------------------------------------------------------------

    @cached_property
    def config(self) -> dict | None:
        return rf.read_config_values(self.path)

    @cached_property
    def run_info(self) -> dict | None:
        data = read_json(self.path / rf.RUN_INFO)
        if data is not None and not isinstance(data, dict):
            raise DataError(self.path / rf.RUN_INFO, None, "expected a JSON object")
        return data

    @cached_property
    def labels_info(self) -> dict | None:
        return rf.read_labels(self.path) if (self.path / rf.LABELS).is_file() else None

    @cached_property
    def labels(self) -> list[str]:
        """Label names in output order; without labels.json, taken from the per-emotion table."""
        if self.labels_info:
            return [str(x) for x in self.labels_info["labels"]]
        for split in self.splits:
            rows = self.per_emotion(split)
            if rows:
                return [r["label"] for r in rows]
        return []

    @property
    def taxonomy(self) -> str | None:
        return (self.labels_info or {}).get("taxonomy")

    def sentiment_group(self, label: str) -> str:
        """The label's group in `labels.json`'s sentiment_of; a label of the sentiment taxonomy is its own."""
        if label in SENTIMENT_LABELS and self.taxonomy == "sentiment":
            return label
        group = ((self.labels_info or {}).get("sentiment_of") or {}).get(label)
        if group is None and label == NEUTRAL:
            group = NEUTRAL
        return str(group) if group else "other"

    @cached_property
    def thresholds(self) -> rf.ThresholdChoice | None:
        return rf.load_thresholds(self.path / rf.THRESHOLDS) if (self.path / rf.THRESHOLDS).is_file() else None

    def threshold_of(self, label: str) -> float | None:
        if self.thresholds is None or label not in self.thresholds.labels:
            return None
        return float(self.thresholds.values[self.thresholds.labels.index(label)])

    @cached_property
    def ensemble_info(self) -> dict | None:
        """`ensemble.json` of an `emoscope ensemble` folder: members, baseline share, their training time."""
        p = self.path / ENSEMBLE_INFO
        data = read_json(p)
        if data is not None and not isinstance(data, dict):
            raise DataError(p, None, "expected a JSON object")
        return data

    # --- training log ----------------------------------------------------------------------------------

    @cached_property
    def _metrics_lines(self) -> list[dict] | None:
        return read_jsonl(self.path / rf.METRICS_LOG)

    @cached_property
    def steps(self) -> list[dict] | None:
        if self._metrics_lines is None:
            return None
        by_step: dict[Any, dict] = {}
        for obj in self._metrics_lines:
            if obj.get("kind") == "step":
                by_step[obj.get("step")] = obj  # a resumed run repeats steps: the last one wins
        return sorted(by_step.values(), key=lambda o: to_number(o.get("step")) or 0)

    @cached_property
    def epochs(self) -> list[dict] | None:
        if self._metrics_lines is None:
            return None
        by_epoch: dict[Any, dict] = {}
        for obj in self._metrics_lines:
            if obj.get("kind") == "epoch":
                by_epoch[obj.get("epoch")] = obj
        return sorted(by_epoch.values(), key=lambda o: to_number(o.get("epoch")) or 0)

    # --- evaluation --------------------------------------------------------------------------------------

    @cached_property
    def splits(self) -> list[str]:
        """Splits with evaluation files, test first."""
        ev = self.path / rf.EVAL
        found = set()
        if ev.is_dir():
            for p in ev.iterdir():
                found.update(p.name[: -len(end)] for end in _SPLIT_FILES if p.name.endswith(end) and p.name != end)
        order = {"test": 0, "dev": 1, "validation": 1, "train": 2}
        return sorted(found, key=lambda s: (order.get(s, 3), s))

    @property
    def main_split(self) -> str | None:
        return self.splits[0] if self.splits else None

    @cached_property
    def lexical_floor(self) -> RunData | None:
        """The TF-IDF baseline fitted with the run (`baseline/`), when there is one."""
        path = self.path / rf.BASELINE
        return RunData(path) if (path / rf.EVAL).is_dir() else None

    def eval_metrics(self, split: str) -> dict | None:
        key = f"metrics:{split}"
        if key not in self._cache:
            p = rf.eval_file(self.path, rf.split_metrics(split))
            data = read_json(p)
            if data is not None and not isinstance(data, dict):
                raise DataError(p, None, "expected a JSON object of metrics")
            self._cache[key] = data
        return self._cache[key]

    def flat_metrics(self, split: str) -> list[tuple[str, Any]] | None:
        data = self.eval_metrics(split)
        return None if data is None else flatten(data)

    def per_emotion(self, split: str) -> list[dict] | None:
        key = f"per_emotion:{split}"
        if key not in self._cache:
            p = rf.eval_file(self.path, rf.split_per_emotion(split))
            rows = read_csv(p)
            if rows is not None:
                require_columns(p, rows, ("label", "f1"))
                rows = [{k: (v if k == "label" else to_number(v)) for k, v in r.items()} for r in rows]
                for r in rows:
                    if r.get("threshold") is None and (t := self.threshold_of(r["label"])) is not None:
                        r["threshold"] = t
            self._cache[key] = rows
        return self._cache[key]

    def predictions_for(self, ids: set[str]) -> dict[str, list[str]]:
        """Predicted label names (probability >= threshold) for the given ids, from any split."""
        labels = self.labels
        out: dict[str, list[str]] = {}
        ev = self.path / rf.EVAL
        if not ids or not labels or not ev.is_dir():
            return out
        th = [self.threshold_of(lab) for lab in labels]
        th = [0.5 if t is None else t for t in th]
        for p in sorted(ev.glob(rf.split_predictions("*"))):
            rows = read_jsonl(p, keep=lambda o: str(o.get("id")) in ids) or []
            for o in rows:
                probs = o.get("probs")
                if not isinstance(probs, list) or len(probs) != len(labels):
                    continue
                out.setdefault(
                    str(o["id"]),
                    [
                        lab
                        for lab, pr, t in zip(labels, probs, th, strict=True)
                        if isinstance(pr, (int, float)) and pr >= t
                    ],
                )
        return out

    # --- captures and analysis ---------------------------------------------------------------------------

    @cached_property
    def probe(self) -> list[dict] | None:
        return read_jsonl(self.path / rf.CAPTURES / rf.PROBE)

    @property
    def analysis_dir(self) -> Path:
        return self.path / rf.ANALYSIS

    def analysis_file(self, name: str) -> Path | None:
        p = self.analysis_dir / name
        return p if p.is_file() else None

    @cached_property
    def layer_metrics(self) -> list[dict] | None:
        p = self.analysis_dir / "layer_metrics.csv"
        rows = read_csv(p)
        if rows is None:
            return None
        require_columns(p, rows, ("epoch", "point", "depth"))
        return [{k: (v if k == "point" else to_number(v)) for k, v in r.items()} for r in rows]

    def layer_metric_names(self) -> list[str]:
        """The metrics of `layer_metrics.csv` that have a value: its interval (`_ci95_low/_high`) and
        p-value (`_p`) columns belong to a metric and are not metrics themselves."""
        rows = self.layer_metrics or []
        if not rows:
            return []
        return [
            k
            for k in rows[0]
            if k not in ("epoch", "point", "depth")
            and not re.search(r"(_ci95_low|_ci95_high|_p)$", k)
            and any(r.get(k) is not None for r in rows)
        ]

    def layer_ablation(self, kind: str = "reset") -> Matrix | None:
        """`analysis/layer_ablation.csv` (`emoscope analyze --ablation`) as emotion x layer test-F1 drops of
        one ablation kind (`reset` or `mean`); None when the run has no ablation."""
        p = self.analysis_dir / "layer_ablation.csv"
        rows = read_csv(p)
        if rows is None:
            return None
        require_columns(p, rows, ("kind", "layer", "label", "drop"))
        rows = [r for r in rows if r["kind"] == kind and r["label"] != "macro"]
        layers = list(dict.fromkeys(r["layer"] for r in rows))
        labels = list(dict.fromkeys(r["label"] for r in rows))
        drop = {(r["label"], r["layer"]): to_number(r["drop"]) for r in rows}
        return Matrix(labels, layers, [[drop.get((label, layer)) for layer in layers] for label in labels])

    @cached_property
    def cka_tables(self) -> list[tuple[str, dict[str, Matrix]]]:
        """(file stem, its matrices) of every `analysis/cka_*.csv`."""
        if not self.analysis_dir.is_dir():
            return []
        return [(p.stem, read_matrix(p) or {}) for p in sorted(self.analysis_dir.glob("cka_*.csv"))]

    @cached_property
    def confusion_2x2(self) -> list[dict] | None:
        """`label,tn,fp,fn,tp` rows, counts as numbers (None where a cell is blank)."""
        p = self.analysis_dir / "confusion_2x2.csv"
        rows = read_csv(p)
        if rows is None:
            return None
        require_columns(p, rows, ("label", "tn", "fp", "fn", "tp"))
        return [{"label": r["label"], **{k: to_number(r[k]) for k in ("tn", "fp", "fn", "tp")}} for r in rows]

    @cached_property
    def misclassification(self) -> Matrix | None:
        mats = read_matrix(self.analysis_dir / "misclassification.csv")
        return None if mats is None else next(iter(mats.values()))

    @cached_property
    def correlations(self) -> dict[str, Matrix] | None:
        """{source (human, model, difference): matrix} from `analysis/correlation.csv`."""
        return read_matrix(self.analysis_dir / "correlation.csv")

    @cached_property
    def label_prob_correlation(self) -> tuple[str | None, list[tuple[str, float | int | None]]] | None:
        """(name of the value column, [(label, value)]): the first numeric column after the labels."""
        rows = read_csv(self.analysis_dir / "label_prob_correlation.csv")
        if rows is None:
            return None
        if not rows:
            return None, []
        label_col = "label" if "label" in rows[0] else next(iter(rows[0]))
        value_col = next((c for c in rows[0] if c != label_col and to_number(rows[0][c]) is not None), None)
        if value_col is None:
            return None, []
        return value_col, [(r[label_col], to_number(r[value_col])) for r in rows]

    @cached_property
    def tsne(self) -> TsneCoords | None:
        """`analysis/tsne_coords.csv`, every probe_index checked against `captures/probe.jsonl`."""
        p = self.analysis_dir / "tsne_coords.csv"
        rows = read_csv(p)
        if rows is None:
            return None
        require_columns(p, rows, ("epoch", "point", "probe_index", "x", "y"))
        n_probe = len(self.probe) if self.probe is not None else None
        out = TsneCoords()
        for n, r in enumerate(rows, start=2):
            idx, x, y, ep = (to_number(r[k]) for k in ("probe_index", "x", "y", "epoch"))
            if not isinstance(idx, int) or idx < 0 or (n_probe is not None and idx >= n_probe):
                raise DataError(p, n, f"probe_index {r['probe_index']!r} is not an index into {rf.CAPTURES}/{rf.PROBE}")
            if x is None or y is None:
                continue
            ep = ep if ep is not None else r["epoch"]
            if r["point"] not in out.points:
                out.points.append(r["point"])
            if ep not in out.epochs:
                out.epochs.append(ep)
            c = out.coords.setdefault(f"{ep}|{r['point']}", {"i": [], "x": [], "y": []})
            c["i"].append(idx)
            c["x"].append(round(float(x), 3))
            c["y"].append(round(float(y), 3))
            out.n_points = max(out.n_points, idx + 1)
        return out

    @cached_property
    def confident_mistakes(self) -> list[dict] | None:
        """Rows of `analysis/confident_mistakes.csv`: prob a number, true/predicted labels as lists."""
        p = self.analysis_dir / "confident_mistakes.csv"
        rows = read_csv(p)
        if rows is None:
            return None
        require_columns(p, rows, ("label", "kind", "prob", "text"))
        lists = ("true_labels", "predicted_labels")
        return [
            {k: to_number(v) if k == "prob" else split_labels(v) if k in lists else v for k, v in r.items()}
            for r in rows
        ]

    @cached_property
    def summary(self) -> dict | None:
        """`analysis/summary.json`, the findings `emoscope analyze` also writes as summary.md."""
        p = self.analysis_dir / rf.SUMMARY
        data = read_json(p)
        if data is not None and not isinstance(data, dict):
            raise DataError(p, None, "expected a JSON object")
        return data


@dataclass
class TsneCoords:
    """The 2-D layouts of the probe set: coords["<epoch>|<point>"] = {"i": probe rows, "x": [...], "y": [...]}."""

    points: list[str] = field(default_factory=list)
    epochs: list[Any] = field(default_factory=list)
    coords: dict[str, dict[str, list]] = field(default_factory=dict)
    n_points: int = 0  # one past the highest probe index seen
