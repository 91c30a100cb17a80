"""`emoscope analyze`'s wall time at the default run's size, with every interval and p-value.

    python bench/analysis_speed.py [--threads 2] [--smoke] [--run RUN]

A synthetic run folder with planted structure (tests/test_analysis_support.py) of the default run's shape:
6 encoder layers plus the head's points, hidden 384, 5 captures (epochs 0-4) of 2,000 probe texts, test
predictions; then `run_analysis` with 1,000 bootstrap resamples and 1,000 RSA permutations. The target is
at most 3 minutes on 2 cores. `--smoke` runs a tiny folder (checks that the script works; no result kept).
`--run RUN` times a trained run's own captures instead (a copy of them, so RUN/analysis is left as it was).
`--run RUN --ablation` times `--ablation` instead, against its peer in the same process: one plain scoring
of the run's test texts by `Predictor`. Its budget is one test pass per encoder layer, so the printed ratio
(ablation time / one test pass) should be at most the number of layers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from emoscope.analysis import run_analysis
from emoscope.analysis.ablation import layer_ablation
from emoscope.analysis.pipeline import Captures, Uncertainty
from emoscope.core.runfolder import eval_file, split_predictions
from emoscope.evaluate.metrics import read_predictions
from emoscope.inference.predictor import Predictor
from emoscope.models import encoder_layers
from emoscope.train.setup import peak_rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import report  # noqa: E402
from test_analysis_support import make_synthetic_run  # noqa: E402

FULL = {"n_probe": 2000, "n_layers": 6, "dim": 384, "epochs": 5, "onset": 3, "n_test": 500}
SMOKE = {"n_probe": 150, "n_layers": 2, "dim": 16, "epochs": 2, "onset": 1, "n_test": 40}


def captured(run: Path) -> dict:
    """The size of what the run captured: probe texts, epochs and points."""
    captures = Captures(run, None, None)
    return {"probe_texts": len(captures.ids), "epochs": len(captures.epochs), "points": len(captures.points)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="a tiny run folder and 20 resamples; no result kept")
    parser.add_argument("--run", help="a trained run folder with captures (emoscope train --visualize)")
    parser.add_argument("--ablation", action="store_true", help="with --run: time the layer ablation instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.ablation:
        if not args.run:
            parser.error("--ablation needs --run")
        return time_ablation(Path(args.run), args.resamples)
    size = SMOKE if args.smoke else FULL
    uncertainty = Uncertainty(*((20, 20) if args.smoke else (args.resamples, args.permutations)))
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            run = Path(shutil.copytree(args.run, Path(tmp) / "run", ignore=shutil.ignore_patterns("checkpoints")))
            size = {"run": args.run, **captured(run)}
        else:
            run = make_synthetic_run(Path(tmp) / "run", **size)
        start = time.perf_counter()
        run_analysis(run, n_jobs=args.threads, uncertainty=uncertainty, log=print)
        seconds = time.perf_counter() - start
    print(f"run_analysis: {seconds:.1f} s (target: at most 180 s on 2 cores)")
    if args.smoke:
        return
    report(
        "analysis_speed",
        [(f"analyze, {args.run or 'default run size'}", f"{seconds:.1f} s", "180 s")],
        ("benchmark", "wall time", "target"),
        {
            **size,
            "resamples": uncertainty.resamples,
            "permutations": uncertainty.permutations,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


def time_ablation(run_dir: Path, resamples: int) -> None:
    """The ablation's wall time over one plain test pass of the same run, on a copy of the run."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(shutil.copytree(run_dir, Path(tmp) / "run", ignore=shutil.ignore_patterns("checkpoints")))
        predictor = Predictor(run)
        texts = read_predictions(eval_file(run, split_predictions("test")), predictor.labels).texts
        layers = len(encoder_layers(predictor.model.backbone))
        start = time.perf_counter()
        predictor.predict_proba(texts)
        one_pass = time.perf_counter() - start
        del predictor
        start = time.perf_counter()
        layer_ablation(run, resamples)
        seconds = time.perf_counter() - start
    ratio = seconds / one_pass
    print(f"one test pass ({len(texts)} texts): {one_pass:.1f} s; layer_ablation: {seconds:.1f} s = {ratio:.2f} passes")
    print(f"target: at most one test pass per encoder layer, {layers}")
    report(
        "ablation_speed",
        [(f"ablation, {run_dir}", f"{seconds:.1f} s = {ratio:.2f} test passes", f"{layers} test passes")],
        ("benchmark", "wall time", "target"),
        {
            "run": str(run_dir),
            "test_texts": len(texts),
            "layers": layers,
            "resamples": resamples,
            "test_pass_s": one_pass,
            "ablation_s": seconds,
            "passes": ratio,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()
