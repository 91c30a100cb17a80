"""`emoscope data`, `baseline` and `ensemble`: the dataset, the lexical floor, and runs averaged into one model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.vocab import TAXONOMIES, THRESHOLD_STRATEGIES, TUNED_THRESHOLD_STRATEGY


def _baseline(args: argparse.Namespace) -> None:
    from emoscope.data import load_goemotions
    from emoscope.evaluate.baseline import run_baseline_on
    from emoscope.evaluate.metrics import format_table

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it")
    check_destination(out)
    data = load_goemotions(args.data_dir, taxonomy=args.taxonomy, skip_bad_rows=args.skip_bad_rows)
    result = run_baseline_on(data, out, threshold_strategy=args.threshold_strategy, seed=args.seed)
    print(
        format_table(
            result, title=f"TF-IDF + logistic regression, test ({args.threshold_strategy} thresholds chosen on dev)"
        )
    )
    print(f"baseline folder: {out}")


def _ensemble(args: argparse.Namespace) -> None:
    from emoscope.evaluate.ensemble import build_ensemble

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it")
    check_destination(out)
    build_ensemble(args.run_dirs, out, baseline=args.baseline, threshold_strategy=args.threshold_strategy)
    print(f"ensemble folder: {out}")


def _data(args: argparse.Namespace) -> None:
    from emoscope.data import load_goemotions, resolve_data_dir, verify_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    report = verify_data_dir(data_dir)
    data = load_goemotions(data_dir, taxonomy=args.taxonomy)
    print(
        json.dumps(
            {
                "data_dir": str(data_dir),
                "verified": report,
                "taxonomy": data.taxonomy.name,
                "labels": len(data.taxonomy.labels),
                "examples": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
            },
            indent=1,
            default=str,
        )
    )


def add_baseline(sub) -> None:
    """emoscope baseline"""
    p = sub.add_parser("baseline", help="TF-IDF + logistic regression, scored like a model")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--taxonomy", default="original", choices=TAXONOMIES)
    p.add_argument(
        "--threshold-strategy",
        dest="threshold_strategy",
        default=TUNED_THRESHOLD_STRATEGY,
        choices=THRESHOLD_STRATEGIES,
    )
    p.add_argument("--out", default="runs/baseline-tfidf")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad-rows", "--skip_bad_rows", dest="skip_bad_rows", action="store_true")
    p.set_defaults(func=_baseline)


def add_ensemble(sub) -> None:
    """emoscope ensemble RUN RUN ..."""
    p = sub.add_parser("ensemble", help="average finished runs (and blend the baseline), tuned on dev")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--baseline", help="an `emoscope baseline` folder; its share is chosen on dev")
    p.add_argument(
        "--threshold-strategy",
        dest="threshold_strategy",
        choices=THRESHOLD_STRATEGIES,
        help=f"default: the runs' own, when they share one tuned on dev; else {TUNED_THRESHOLD_STRATEGY}",
    )
    p.add_argument("--out", default="runs/ensemble")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_ensemble)


def add_data(sub) -> None:
    """emoscope data"""
    p = sub.add_parser("data", help="locate (download if needed), verify and summarise GoEmotions")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--taxonomy", default="original", choices=TAXONOMIES)
    p.set_defaults(func=_data)
