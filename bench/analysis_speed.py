"""`emoscope analyze`'s wall time at the default run's size, with every interval and p-value.

    python bench/analysis_speed.py [--threads 2] [--smoke] [--run RUN]

A synthetic run folder with planted structure (tests/test_analysis_support.py) of the default run's shape:
6 encoder layers plus the head's points, hidden 384, 5 captures (epochs 0-4) of 2,000 probe texts, test
predictions; then `run_analysis` with 1,000 bootstrap resamples and 1,000 RSA permutations. The target is
at most 3 minutes on 2 cores. `--smoke` runs a tiny folder (checks that the script works; no result kept).
`--run RUN` times a trained run's own captures instead (a copy of them, so RUN/analysis is left as it was).
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
from emoscope.analysis.run import Captures, Uncertainty
from emoscope.train.loop import peak_rss_mb

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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    main()
