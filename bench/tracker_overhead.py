"""The representation tracker's cost: the same training run with and without it, then the analysis' wall time.

    python bench/tracker_overhead.py [--epochs 1] [--train-fraction 1.0] [--threads 2]

Both runs use the cpu-default preset on the same data and seed; the tracked one captures every hook point
of the 2,000-text probe set before training and after every epoch (as `emoscope train --visualize` does).
The overhead is the difference in training wall time (run.json) over the untracked run's. With one epoch
there are two captures for one epoch of training, so this is an upper bound on a longer run's overhead.
Then `emoscope analyze` runs on the tracked run's captures and its wall time and peak memory are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from emoscope.core.runfolder import CAPTURES, RUN_INFO
from emoscope.train.setup import peak_rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, report, run_child  # noqa: E402


def run_child_system(args) -> dict:
    from emoscope.analysis.observer import TrackerObserver
    from emoscope.core.config import resolve_config
    from emoscope.recipes.train import finish
    from emoscope.train.loop import train

    config = resolve_config(
        "cpu-default",
        {
            "data_dir": data_dir(),
            "epochs": args.epochs,
            "num_threads": args.threads,
            "progress": False,
            "run_dir": args.run_dir,
            "overwrite": True,
            "visualize": args.system == "tracked",
            "max_train_examples": int(43410 * args.train_fraction) if args.train_fraction < 1 else None,
        },
    )
    observer = (
        TrackerObserver(
            max_len=config.max_len, probe_size=config.probe_size, pooling=config.capture_pooling, seed=config.seed
        )
        if config.visualize
        else None
    )
    trained = train(config, observer)
    finish(trained, config)  # test predictions, for the analysis's test figures
    run_dir = trained.run_dir
    result = {
        "train_wall_seconds": json.loads((run_dir / RUN_INFO).read_text())["wall_seconds"],
        "train_rss_mb": peak_rss_mb(),
    }
    if observer is not None:
        from emoscope.analysis import run_analysis

        start = time.perf_counter()
        run_analysis(run_dir)
        result["analysis_seconds"] = time.perf_counter() - start
        result["captures"] = len(list((run_dir / CAPTURES).glob("epoch_*")))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-fraction", type=float, default=1.0, help="a random part of train (quick checks)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    parser.add_argument("--system", choices=("plain", "tracked"), help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    if args.system:
        print(json.dumps(run_child_system(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            name: run_child(__file__, *sys.argv[1:], "--system", name, "--run-dir", f"{tmp}/{name}")
            for name in ("plain", "tracked")
        }
    plain, tracked = results["plain"], results["tracked"]
    overhead = tracked["train_wall_seconds"] / plain["train_wall_seconds"] - 1
    rows = [
        ("training, no tracker", f"{plain['train_wall_seconds']:.0f}", f"{plain['train_rss_mb']:.0f}"),
        (
            f"training, tracker ({tracked['captures']} captures)",
            f"{tracked['train_wall_seconds']:.0f}",
            f"{tracked['train_rss_mb']:.0f}",
        ),
        ("tracker overhead", f"{100 * overhead:+.1f}%", ""),
        ("analysis (emoscope analyze)", f"{tracked['analysis_seconds']:.0f}", ""),
    ]
    report(
        "tracker_overhead",
        rows,
        ("what", "wall s", "peak RSS MB"),
        {"args": vars(args) | {"system": None, "run_dir": None}, "systems": results, "overhead": overhead},
    )


if __name__ == "__main__":
    main()
