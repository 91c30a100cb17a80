"""`emoscope train`, top to bottom: train -> finish the run folder -> transformers export -> analysis + report.

The loop (`emoscope.train`) only trains; everything after it happens on rank 0 alone, through the same
readers anyone uses on a finished run: final scores come from a `Predictor` on the saved weights.
`emoscope distill` is the same recipe with teachers (`config.teachers`); `emoscope crossfit` runs it once per
fold of train and joins the folds into one teacher folder (`crossfit_run`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from emoscope import runfolder
from emoscope.analysis import TrackerObserver, run_analysis
from emoscope.config import TrainConfig
from emoscope.data.folds import assign_folds
from emoscope.data.splits import SplitData, load_data
from emoscope.distill import OOF_SPLIT, Teachers
from emoscope.errors import UserError
from emoscope.evaluate import choose_thresholds
from emoscope.evaluate.baseline import run_baseline_on
from emoscope.evaluate.ensemble import build_ensemble, training_wall_seconds_behind
from emoscope.evaluate.metrics import as_indicator_matrix
from emoscope.evaluate.split import score_split
from emoscope.export.hf import export_transformers
from emoscope.predict import Predictor, read_thresholds
from emoscope.report import write_report
from emoscope.train import Trained, train
from emoscope.train.loop import peak_rss_mb


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


def crossfit_run(config: TrainConfig, folds: int, jobs: int = 1) -> Path:
    """`emoscope crossfit`: k teachers, each trained on train without one fold, in `run_dir/fold_<k>/`; then
    `run_dir` becomes their ensemble (dev/test, thresholds chosen on dev: a model `Predictor` loads) and holds
    each train text's out-of-fold probabilities from the one teacher that never saw it, which
    `emoscope distill --teacher run_dir` learns from. `--resume` skips finished folds and resumes the others.

    `jobs` > 1 trains that many teachers at once, each in its own process with its share of the CPU threads:
    small matrices keep two threads of one process from being twice as fast as one, and the teachers need
    nothing from each other."""
    if jobs > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--jobs trains teachers in separate processes; under torchrun leave it at 1")
    out = Path(config.run_dir or f"runs/crossfit-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(out.iterdir()) and not config.resume:
        if not config.overwrite:
            raise UserError(f"crossfit folder {out} already exists; pass --overwrite to replace it or --resume")
        shutil.rmtree(out)
    runs, todo = [], []
    for k in range(folds):
        fold_dir = out / f"fold_{k}"
        runs.append(fold_dir)
        if config.resume and (fold_dir / runfolder.THRESHOLDS).is_file():
            print(f"crossfit: fold {k} already trained ({fold_dir})", flush=True)
            continue
        todo.append(
            dataclasses.replace(
                config,
                run_dir=str(fold_dir),
                crossfit_folds=folds,
                crossfit_fold=k,
                visualize=False,
                lexical_baseline=False,
                resume=config.resume and fold_dir.is_dir(),
                overwrite=True,
            )
        )
    workers = min(jobs, len(todo))
    if workers > 1:  # each its share of the threads, and no bars: side by side they would overwrite each other
        threads = max(1, (config.num_threads or os.cpu_count() or 1) // workers)
        todo = [dataclasses.replace(fold, num_threads=threads, progress=False) for fold in todo]

    def announce(fold: TrainConfig, how: str = "") -> None:
        k = fold.crossfit_fold
        print(f"crossfit: teacher {k + 1}/{folds}, trained without fold {k}{how}", flush=True)

    if workers <= 1:
        for fold in todo:
            announce(fold)
            train_run(fold)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            started = []
            for fold in todo:
                announce(fold, f" ({fold.num_threads} thread(s), {workers} at a time)")
                started.append(pool.submit(train_run, fold))
            for job in started:
                job.result()
    if os.environ.get("RANK", "0") != "0":
        return out
    build_ensemble(runs, out, threshold_strategy=config.threshold_strategy)
    data = load_data(config)
    labels = data.taxonomy.labels
    fold_of = assign_folds([e.id for e in data.train], folds, config.seed)
    oof = np.zeros((len(data.train), len(labels)), dtype=np.float32)
    for k, run in enumerate(runs):  # each teacher scores the fold it never saw, with its own thresholds
        rows = np.flatnonzero(fold_of == k)
        predictor = Predictor(run)
        oof[rows] = predictor.predict_proba([data.train[i].text for i in rows], config.eval_batch_size)
        score_split(
            run / runfolder.EVAL, OOF_SPLIT, [data.train[i] for i in rows], oof[rows], predictor.thresholds, labels
        )
    thresholds = read_thresholds(out, labels)
    print(
        score_split(
            out / runfolder.EVAL,
            OOF_SPLIT,
            data.train,
            oof,
            thresholds,
            labels,
            title="train, each text scored by the teacher that never saw it (ensemble thresholds)",
        )
    )
    info = {
        "folds": folds,
        "seed": config.seed,
        "runs": [r.name for r in runs],
        "fold_sizes": np.bincount(fold_of, minlength=folds).tolist(),
    }
    (out / runfolder.CROSSFIT_INFO).write_text(json.dumps(info, indent=1) + "\n")
    print(f"crossfit folder: {out}")
    return out
