"""`emoscope train`, top to bottom: train -> finish the run folder -> transformers export -> analysis + report.

The loop (`emoscope.train`) only trains; everything after it happens on rank 0 alone, through the same
readers anyone uses on a finished run: final scores come from a `Predictor` on the saved weights.
`emoscope distill` is the same recipe with teachers (`config.teachers`, `recipes.distill`); `emoscope crossfit`
runs it once per fold of train and joins the folds into one teacher folder (`recipes.crossfit`).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from emoscope.analysis import TrackerObserver, run_analysis
from emoscope.core import runfolder
from emoscope.core.config import TrainConfig
from emoscope.data.splits import SplitData
from emoscope.evaluate import choose_thresholds
from emoscope.evaluate.baseline import run_baseline_on
from emoscope.evaluate.ensemble import training_wall_seconds_behind
from emoscope.evaluate.metrics import as_indicator_matrix
from emoscope.evaluate.split import score_split
from emoscope.export.hf import export_transformers
from emoscope.inference.predictor import Predictor
from emoscope.recipes.distill import Teachers
from emoscope.report import write_report
from emoscope.train import Trained, train
from emoscope.train.setup import peak_rss_mb


def train_run(config: TrainConfig) -> Path:
    """Everything `emoscope train` does; returns the run folder (on every DDP rank)."""
    observer = None
    if config.visualize:
        # The probe set does not follow the training seed: runs of several seeds are compared on the same texts.
        observer = TrackerObserver(max_len=config.max_len, probe_size=config.probe_size, pooling=config.capture_pooling)
    teachers = Teachers(config.teachers) if config.teachers else None
    trained = train(config, observer, teachers)
    if not trained.main:
        return trained.run_dir
    finish(trained, config, teachers)
    print(f"transformers export: {export_transformers(trained.run_dir)[0]}")
    if config.visualize:
        run_analysis(trained.run_dir)
        print(f"report: {write_report(trained.run_dir)}")
    return trained.run_dir


def finish(trained: Trained, config: TrainConfig, teachers: Teachers | None = None) -> None:
    """The best weights scored as a `Predictor` scores them: thresholds chosen on dev, dev and test saved,
    the lexical floor beside them, run.json completed (with the teachers' training time for a student)."""
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
        print(
            score_split(
                eval_dir,
                "test",
                data.test,
                test_probs,
                choice.values,
                labels,
                title=f"test ({choice.strategy} thresholds, chosen on {choice.chosen_on or 'nothing'})",
            )
        )
        if config.lexical_baseline:
            lexical_floor(run_dir / runfolder.BASELINE, config, data)
    times = {"wall_seconds": round(trained.wall_seconds, 1)}
    if teachers is not None:
        teacher_seconds = teachers.wall_seconds()
        times["teachers_wall_seconds"] = teacher_seconds and round(teacher_seconds, 1)
    if config.teachers or config.init_from:  # the runs this one builds on, those behind both counted once
        before = training_wall_seconds_behind([Path(f) for f in [*config.teachers, *config.init_from]])
        times["total_wall_seconds"] = before and round(before + trained.wall_seconds, 1)
    runfolder.update_run_info(
        run_dir,
        **times,
        finished=datetime.datetime.now().isoformat(timespec="seconds"),
        peak_rss_mb=round(peak_rss_mb()),
    )
    print(f"run folder: {run_dir}")


def lexical_floor(out: Path, config: TrainConfig, data: SplitData) -> None:
    """TF-IDF + logistic regression on the run's own splits and thresholds strategy: the report shows how far
    above it the model is, and `emoscope ensemble` can blend it in."""
    try:
        result = run_baseline_on(
            data, out, threshold_strategy=config.threshold_strategy, seed=config.seed, fixed_value=config.threshold
        )
    except ValueError as exc:  # e.g. too few texts for a vocabulary: the model's results stand without it
        print(f"lexical floor: not fitted ({exc})")
        return
    print(f"lexical floor (TF-IDF + logistic regression, {out}): test macro-F1 {result.summary['macro_f1']:.4f}")
