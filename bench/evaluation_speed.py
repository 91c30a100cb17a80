"""Evaluation-side speed budgets that used to be timed assertions in the tests (flaky on a busy 2-core machine).

    python bench/evaluation_speed.py [--repeats 3]

Times, best of `--repeats`: the bootstrap CI of macro-F1 on a test-sized split (5,427 x 28, 1,000 resamples),
dev-tuned per-emotion thresholds on a dev-sized split (5,426 x 28), and reading the official train.tsv; each
against the budget the tests once asserted (10 s, 1 s, 3 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, report  # noqa: E402

from emoscope.data import read_examples  # noqa: E402
from emoscope.evaluate.bootstrap import bootstrap_ci  # noqa: E402
from emoscope.evaluate.thresholds import tune_per_label  # noqa: E402


def best_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = (rng.random((5427, 28)) < np.linspace(0.03, 0.4, 28)).astype(int)
    predicted = np.where(rng.random(y.shape) < 0.1, 1 - y, y)
    y_dev, p_dev = (rng.random((5426, 28)) < 0.05).astype(int), rng.random((5426, 28))
    cases = {
        "bootstrap CI, 5,427 x 28, 1,000 resamples": (lambda: bootstrap_ci(y, predicted, n_resamples=1000), 10.0),
        "per-emotion thresholds, 5,426 x 28": (lambda: tune_per_label(y_dev, p_dev), 1.0),
    }
    source = data_dir()
    if source:
        cases["read train.tsv (43,410 rows)"] = (lambda: read_examples(Path(source) / "train.tsv"), 3.0)
    rows, results = [], {}
    for name, (work, budget) in cases.items():
        seconds = best_seconds(work, args.repeats)
        results[name] = {"seconds": seconds, "budget_seconds": budget, "within": seconds <= budget}
        rows.append((name, f"{seconds:.3f}", f"{budget:g}", "yes" if seconds <= budget else "NO"))
    report(
        "evaluation_speed", rows, ("work", "seconds (best)", "budget", "within"), {"args": vars(args), "cases": results}
    )


if __name__ == "__main__":
    main()
