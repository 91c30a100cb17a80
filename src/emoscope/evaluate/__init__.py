"""Evaluation of saved probabilities: metrics, dev-tuned thresholds, bootstrap confidence intervals and the
TF-IDF baseline."""

from emoscope.evaluate.baseline import build_model, run_baseline
from emoscope.evaluate.bootstrap import bootstrap_ci
from emoscope.evaluate.metrics import EvalResult, compute_metrics, format_table, save_eval, save_predictions
from emoscope.evaluate.thresholds import ThresholdChoice, choose_thresholds, fixed, tune_global, tune_per_label

__all__ = [
    "EvalResult",
    "ThresholdChoice",
    "bootstrap_ci",
    "build_model",
    "choose_thresholds",
    "compute_metrics",
    "fixed",
    "format_table",
    "run_baseline",
    "save_eval",
    "save_predictions",
    "tune_global",
    "tune_per_label",
]
