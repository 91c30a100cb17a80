"""`emoscope crossfit`: k teachers, each trained on train without one fold, joined into one teacher folder whose
every train text has an out-of-fold probability (what `emoscope distill --teacher` learns from)."""

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

from emoscope.core import runfolder
from emoscope.core.config import TrainConfig
from emoscope.core.errors import UserError
from emoscope.data.folds import assign_folds
from emoscope.data.splits import load_data
from emoscope.evaluate.ensemble import build_ensemble
from emoscope.evaluate.split import score_split
from emoscope.inference.predictor import Predictor
from emoscope.recipes.distill import OOF_SPLIT
from emoscope.recipes.train import train_run


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
    _train_teachers(config, todo, folds, jobs)
    if os.environ.get("RANK", "0") != "0":
        return out
    _join(config, out, runs)
    print(f"crossfit folder: {out}")
    return out


def _train_teachers(config: TrainConfig, todo: list[TrainConfig], folds: int, jobs: int) -> None:
    """Each fold's `train_run`, one after another or `jobs` at once in their own processes."""
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


def _join(config: TrainConfig, out: Path, runs: list[Path]) -> None:
    """The teachers as one ensemble folder, with every train text scored by the teacher that never saw it."""
    folds = len(runs)
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
    thresholds = runfolder.read_thresholds(out, labels)
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
