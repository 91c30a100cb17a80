"""The run folder: every file name it holds, in one place (DEVELOPERS.md, "A run folder", describes each).

No torch here: predict, evaluate, analysis and the report read a run through this module without importing
the training package. Paths are built from these names only; `git grep` for a file name lands here.
"""

from __future__ import annotations

from pathlib import Path

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
CAPTURES = "captures"
PROBE = "probe.jsonl"
ANALYSIS = "analysis"
ANALYSIS_INPUTS = "analysis_inputs"
COOCCURRENCE = "cooccurrence.csv"
BASELINE = "baseline"
BASELINE_INFO = "baseline.json"
BASELINE_FEATURES = "tfidf.json"  # the vectorizers' settings and vocabularies
BASELINE_WEIGHTS = "tfidf_logreg.safetensors"  # idf per vectorizer, logistic-regression coef and intercept
ENSEMBLE_INFO = "ensemble.json"
HF_EXPORT = "hf"
REPORT = "report.html"


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
