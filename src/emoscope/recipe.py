"""`emoscope train`, top to bottom: train -> finish the run folder -> transformers export -> analysis + report.

The loop (`emoscope.train`) only trains; everything after it happens on rank 0 alone, through the same
readers anyone uses on a finished run: final scores come from a `Predictor` on the saved weights.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from emoscope import runfolder
from emoscope.analysis import TrackerObserver, run_analysis
from emoscope.config import TrainConfig
from emoscope.data.splits import SplitData
from emoscope.evaluate import choose_thresholds
from emoscope.evaluate.baseline import run_baseline_on
from emoscope.evaluate.metrics import as_indicator_matrix
from emoscope.evaluate.split import score_split
from emoscope.predict import Predictor, export_hf
from emoscope.report import write_report
from emoscope.train import Trained, train
from emoscope.train.loop import peak_rss_mb


def train_run(config: TrainConfig) -> Path:
    """Everything `emoscope train` does; returns the run folder (on every DDP rank)."""
    observer = None
    if config.visualize:
        observer = TrackerObserver(max_len=config.max_len, probe_size=config.probe_size,
                                   pooling=config.capture_pooling, seed=config.seed)
    trained = train(config, observer)
    if not trained.main:
        return trained.run_dir
    finish(trained, config)
    if config.head == "linear":
        print(f"transformers export: {export_hf(trained.run_dir)}")
    if config.visualize:
        run_analysis(trained.run_dir)
        print(f"report: {write_report(trained.run_dir)}")
    return trained.run_dir


def finish(trained: Trained, config: TrainConfig) -> None:
    """The best weights scored as a `Predictor` scores them: thresholds chosen on dev, dev and test saved,
    the lexical floor beside them, run.json completed."""
    run_dir, data = trained.run_dir, trained.data
    predictor = Predictor(run_dir, device=trained.device, precision=trained.precision)
    labels = data.taxonomy.labels
    dev_probs = predictor.predict_proba([e.text for e in data.dev], config.eval_batch_size)
    y_dev = as_indicator_matrix([e.labels for e in data.dev], "dev", len(labels))
    choice = choose_thresholds(config.threshold_strategy, y_dev, dev_probs, config.threshold, labels)
    runfolder.save_thresholds(run_dir / runfolder.THRESHOLDS, choice, labels)
    for note in choice.notes:
        print(f"thresholds: {note}")
    eval_dir = run_dir / runfolder.EVAL
    score_split(eval_dir, "dev", data.dev, dev_probs, choice.values, labels)
    if data.test:
        test_probs = predictor.predict_proba([e.text for e in data.test], config.eval_batch_size)
        print(score_split(eval_dir, "test", data.test, test_probs, choice.values, labels,
                          title=f"test ({choice.strategy} thresholds, chosen on {choice.chosen_on or 'nothing'})"))
        if config.lexical_baseline:
            lexical_floor(run_dir / runfolder.BASELINE, config, data)
    runfolder.update_run_info(run_dir, wall_seconds=round(trained.wall_seconds, 1),
                              finished=datetime.datetime.now().isoformat(timespec="seconds"),
                              peak_rss_mb=round(peak_rss_mb()))
    print(f"run folder: {run_dir}")


def lexical_floor(out: Path, config: TrainConfig, data: SplitData) -> None:
    """TF-IDF + logistic regression on the run's own splits and thresholds strategy: the report shows how far
    above it the model is, and `emoscope ensemble` can blend it in."""
    try:
        result = run_baseline_on(data, out, threshold_strategy=config.threshold_strategy, seed=config.seed,
                                 fixed_value=config.threshold)
    except ValueError as exc:  # e.g. too few texts for a vocabulary: the model's results stand without it
        print(f"lexical floor: not fitted ({exc})")
        return
    print(f"lexical floor (TF-IDF + logistic regression, {out}): test macro-F1 {result.summary['macro_f1']:.4f}")
