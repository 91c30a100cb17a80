"""The run folder: every file name it holds, and the one writer and reader of its small records (config.yaml,
labels.json, run.json, thresholds.json) and of its format check. DEVELOPERS.md, "A run folder", describes each.

No torch here: predict, evaluate, analysis and the report read a run through this module without importing
the training package. Paths are built from these names only; `git grep` for a file name lands here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from emoscope.core import version
from emoscope.core.config import TrainConfig, config_from_values, config_yaml
from emoscope.core.errors import DataError, UserError
from emoscope.core.vocab import THRESHOLD_STRATEGIES

CONFIG = "config.yaml"
RUN_INFO = "run.json"
LABELS = "labels.json"
THRESHOLDS = "thresholds.json"
TOKENIZER = "tokenizer"
BACKBONE_CONFIG = "backbone_config.json"
WEIGHTS = "model.safetensors"
CHECKPOINTS = "checkpoints"
METRICS_LOG = "metrics.jsonl"
EVAL = "eval"
EVALUATIONS = "evaluations"  # emoscope evaluate: <split or file stem>/, beside what training wrote
CAPTURES = "captures"
PROBE = "probe.jsonl"
ANALYSIS = "analysis"
SUMMARY = "summary.json"  # in analysis/: the findings, which summary.md and the report render
SUMMARY_TEXT = "summary.md"
ANALYSIS_INPUTS = "analysis_inputs"
COOCCURRENCE = "cooccurrence.csv"
BASELINE = "baseline"
BASELINE_INFO = "baseline.json"
BASELINE_FEATURES = "tfidf.json"  # the vectorizers' settings and vocabularies
BASELINE_WEIGHTS = "tfidf_logreg.safetensors"  # idf per vectorizer, logistic-regression coef and intercept
ENSEMBLE_INFO = "ensemble.json"
CROSSFIT_INFO = "crossfit.json"  # a crossfit folder: k teacher runs, their ensemble, out-of-fold train labels
TEACHER_CACHE = "teachers"  # in a distilled run: the teachers' probabilities on train and their provenance
TEACHER_PROBS = "train_probs.npy"
TEACHER_INFO = "teachers.json"
HF_EXPORT = "hf"
ONNX_EXPORT = "onnx"  # emoscope export --format onnx: what onnxruntime and tokenizers alone run
ONNX_MODEL = "model.onnx"
ONNX_INT8_MODEL = "model.int8.onnx"
ONNX_INT8_THRESHOLDS = "thresholds.int8.json"  # chosen on dev for the int8 model's own probabilities
ONNX_TOKENIZER = "tokenizer.json"  # truncates at the run's max_len and pads a batch, as Predictor does
REPORT = "report.html"
# Weights saved by other tools, refused unless the user trusts pickles (`emoscope.inference.predictor.weights_file`).
PICKLED_WEIGHTS = ("model.bin", "model.pth", "model.pt", "pytorch_model.bin")


def split_metrics(split: str) -> str:
    return f"{split}_metrics.json"


def split_per_emotion(split: str) -> str:
    return f"{split}_per_emotion.csv"


def split_predictions(split: str) -> str:
    return f"{split}_predictions.jsonl"


def eval_file(folder: Path, name: str) -> Path:
    """`folder/eval/name`, e.g. `eval_file(run, split_metrics("test"))`."""
    return Path(folder) / EVAL / name


def capture_file(epoch: int) -> str:
    return f"epoch_{epoch}.safetensors"


def capture_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CAPTURES / capture_file(epoch)


def probe_path(run_dir: Path) -> Path:
    return Path(run_dir) / CAPTURES / PROBE


def cooccurrence_path(run_dir: Path) -> Path:
    return Path(run_dir) / ANALYSIS_INPUTS / COOCCURRENCE


def cooccurrence_half_path(run_dir: Path, half: int) -> Path:
    """The co-occurrence counts of one random half of the training examples (1 or 2)."""
    return Path(run_dir) / ANALYSIS_INPUTS / f"cooccurrence_half_{half}.csv"


# ---------------------------------------------------------------- config.yaml


def write_config(run_dir: Path, config: TrainConfig) -> None:
    (Path(run_dir) / CONFIG).write_text(config_yaml(config), encoding="utf-8")


def read_config_values(folder: Path) -> dict | None:
    """`config.yaml` as written, a mapping of field: value (what the report shows); None when absent."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, "not valid YAML") from None
    if values is not None and not isinstance(values, dict):
        raise DataError(path, None, "expected a mapping of field: value")
    return values or {}


def read_config(run_dir: Path) -> TrainConfig:
    """The run's `TrainConfig`, validated; a field this version does not know is refused."""
    return config_from_values(read_config_values(run_dir), str(Path(run_dir) / CONFIG))


# ---------------------------------------------------------------- labels.json


def write_labels(
    folder: Path,
    taxonomy: str,
    labels: Sequence[str],
    sentiment_of: Mapping[str, str] | None = None,
    ekman_of: Mapping[str, str] | None = None,
) -> None:
    """The one writer of `labels.json` (runs, baselines, ensembles): label order is the column order of every
    probability the folder holds."""
    record = {
        "taxonomy": taxonomy,
        "labels": list(labels),
        "sentiment_of": dict(sentiment_of or {}),
        "ekman_of": dict(ekman_of or {}),
    }
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / LABELS).write_text(json.dumps(record, indent=1) + "\n")


def read_labels(folder: Path) -> dict:
    """`{"taxonomy", "labels", "sentiment_of", "ekman_of"}`; a missing or broken file is one clear error."""
    path = Path(folder) / LABELS
    if not path.is_file():
        raise UserError(f"{folder} has no {LABELS} (the label names and their groups)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(record, dict) or not isinstance(record.get("labels"), list):
        raise DataError(path, None, 'expected {"taxonomy", "labels": [...], "sentiment_of", "ekman_of"}')
    return record


# ---------------------------------------------------------------- run.json


def write_run_info(run_dir: Path, info: Mapping) -> None:
    """A new `run.json`, stamped with this version's run-folder format."""
    record = {"format": version.RUN_FORMAT_VERSION, "emoscope": version.__version__, **info}
    (Path(run_dir) / RUN_INFO).write_text(json.dumps(record, indent=1))


def update_run_info(run_dir: Path, **fields) -> None:
    path = Path(run_dir) / RUN_INFO
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}, indent=1))


def check_run_dir(run_dir: Path) -> dict:
    """The run's `run.json`, after checking the folder is a complete run this version can read (weights are
    checked by whoever loads them: `emoscope.inference.predictor.weights_file`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    info_path = run_dir / RUN_INFO
    if not info_path.is_file():
        raise UserError(f"{run_dir} is not an emoscope run folder (no {RUN_INFO})")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_path} is not valid JSON: {exc.msg}") from exc
    found = info.get("format") if isinstance(info, dict) else None
    if found != version.RUN_FORMAT_VERSION:
        newer = isinstance(found, int) and found > version.RUN_FORMAT_VERSION
        raise UserError(
            f"{run_dir} was written in run-folder format {found}; this emoscope "
            f"{version.__version__} reads format {version.RUN_FORMAT_VERSION}: "
            + ("upgrade emoscope (pip install -U emoscope)" if newer else "retrain the run with this version")
        )
    for name in (CONFIG, LABELS, BACKBONE_CONFIG, TOKENIZER):
        if not (run_dir / name).exists():
            raise UserError(f"run folder {run_dir} is incomplete: {name} is missing")
    return info


def check_weights(path: Path) -> None:
    """A safetensors file whose header reads and whose size is what the header says: damaged weights are one
    line naming the file, not a traceback from inside safetensors or torch."""
    try:
        problem = _weights_problem(path)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if problem:
        raise UserError(f"{path}: damaged weights ({problem}); restore the file from a copy, or retrain the run")


def _weights_problem(path: Path) -> str | None:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        length = int.from_bytes(handle.read(8), "little")
        if size < 8 or not 2 <= length <= size - 8:
            return f"its header length ({length} bytes) does not fit the file ({size} bytes)"
        raw = handle.read(length)
    try:
        header = json.loads(raw)
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "its header is not a safetensors header"
    if not isinstance(end, int) or 8 + length + end != size:
        return f"its size ({size} bytes) is not the size its header describes"
    return None


# ---------------------------------------------------------------- thresholds.json


@dataclass(frozen=True)
class ThresholdChoice:
    """Thresholds [L] with how they were chosen (``chosen_on`` is "dev" or None for fixed) and notes; read back
    from a file, also the labels they belong to, in the order of `values`."""

    strategy: str
    chosen_on: str | None
    values: np.ndarray
    notes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


def save_thresholds(path: str | Path, choice: ThresholdChoice, label_names: Sequence[str]) -> Path:
    """Write ``thresholds.json``: ``{"strategy", "chosen_on", "thresholds": {label: t}}``."""
    names = [str(n) for n in label_names]
    if len(names) != len(choice.values) or len(set(names)) != len(names):
        raise UserError(
            f"got {len(names)} label names (distinct: {len(set(names))}) for {len(choice.values)} thresholds"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "strategy": choice.strategy,
        "chosen_on": choice.chosen_on,
        "thresholds": {n: float(t) for n, t in zip(names, choice.values, strict=True)},
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_thresholds(path: str | Path, label_names: Sequence[str] | None = None) -> ThresholdChoice:
    """Read ``thresholds.json``; with ``label_names`` the values come back in that order and every label
    must be present, so thresholds cannot be applied to the wrong columns. A damaged file is one line saying
    what is wrong and what to do."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such thresholds file") from None
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"not valid JSON: {e.msg}; {THRESHOLDS_FIX}") from None
    problem = _thresholds_problem(data, label_names)
    if isinstance(problem, str):
        raise DataError(path, None, f"{problem}; {THRESHOLDS_FIX}")
    return problem


THRESHOLDS_FIX = "restore the file from a copy, or make the folder again (retrain, re-ensemble or re-export)"


def _thresholds_problem(data, label_names: Sequence[str] | None) -> str | ThresholdChoice:
    """The thresholds the file's content holds, or what is wrong with it."""
    if not isinstance(data, dict) or not isinstance(data.get("thresholds"), dict) or not data["thresholds"]:
        return 'expected {"strategy", "chosen_on", "thresholds": {label: t}}'
    if data.get("strategy") not in THRESHOLD_STRATEGIES:
        return f"unknown strategy {data.get('strategy')!r}"
    if data.get("chosen_on") not in ("dev", None):
        return f'chosen_on must be "dev" or null, got {data.get("chosen_on")!r}'
    table = data["thresholds"]
    names = list(table) if label_names is None else list(label_names)
    missing = [n for n in names if n not in table]
    if missing or len(table) != len(names):
        problem = f"thresholds do not match the labels ({len(table)} in file, {len(names)} expected"
        return problem + (f"; missing: {', '.join(missing)})" if missing else ")")
    try:
        values = np.array([table[n] for n in names], dtype=np.float64)
    except (TypeError, ValueError) as e:
        return f"thresholds must be numbers ({e})"
    outside = [n for n, v in zip(names, values, strict=True) if not 0.0 <= v <= 1.0]  # NaN included
    if outside:
        return f"thresholds must lie in [0, 1]; {outside[0]!r} is {table[outside[0]]!r}"
    return ThresholdChoice(data["strategy"], data["chosen_on"], values, labels=tuple(names))


def read_thresholds(folder: Path, labels: Sequence[str]) -> np.ndarray:
    """The folder's dev-chosen threshold per label (in `labels` order) as a model applies them; 0.5 for a folder
    without them."""
    path = Path(folder) / THRESHOLDS
    if not path.is_file():
        return np.full(len(labels), 0.5, dtype=np.float32)
    return load_thresholds(path, labels).values.astype(np.float32)


def sha256_file(path: Path) -> str:
    """The file's sha256, read in blocks: checkpoint checksums and a distilled run's teacher provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
