"""`emoscope analyze`, `report` and `compare`: what a finished run holds, as numbers, figures and pages."""

from __future__ import annotations

import argparse
from pathlib import Path

from emoscope.cli.options import positive_int
from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.vocab import POOLINGS


def _analyze(args: argparse.Namespace) -> None:
    from emoscope.analysis import run_analysis
    from emoscope.analysis.pipeline import Uncertainty

    run_dirs = [Path(r) for r in args.run_dir]
    if (len(run_dirs) > 1) != (args.out is not None):
        raise UserError("--out DIR goes with several runs (the across-run tables), and only with them")
    for folder in [*run_dirs, *([args.out] if args.out else [])]:
        check_destination(folder)
    if args.capture is not None:
        from emoscope.analysis.capture import capture_weights

        for run_dir in run_dirs:
            capture_weights(run_dir, args.capture, args.capture_epoch, args.probe_size, args.pooling, args.data_dir)
    if args.out is not None:
        from emoscope.analysis.multirun import check_same_probe

        check_same_probe(run_dirs)
    points = args.points.split(",") if args.points else None
    uncertainty = Uncertainty(args.resamples, args.permutations, args.seed)
    for run_dir in run_dirs:
        print(f"analysis: {run_analysis(run_dir, points=points, tsne=not args.no_tsne, uncertainty=uncertainty)}")
        if args.ablation:
            from emoscope.analysis.ablation import layer_ablation

            print(f"layer ablation: {layer_ablation(run_dir, args.resamples, args.seed)}")
    if args.out is not None:
        from emoscope.analysis.multirun import multi_run_analysis

        print(f"across runs: {multi_run_analysis(run_dirs, args.out)}")


def _report(args: argparse.Namespace) -> None:
    from emoscope.core.runfolder import REPORT
    from emoscope.report import write_report

    check_destination(Path(args.run_dir) / REPORT)
    print(f"report: {write_report(Path(args.run_dir))}")


def _compare(args: argparse.Namespace) -> None:
    from emoscope.report import write_comparison

    check_destination(args.out)
    print(f"comparison: {write_comparison([Path(r) for r in args.run_dirs], Path(args.out))}")


def add_analyze(sub) -> None:
    """emoscope analyze RUN [RUN ... --out DIR]"""
    p = sub.add_parser("analyze", help="representation analysis of a run folder's captures (or several runs')")
    p.add_argument("run_dir", nargs="+", help="one run, or several runs of the same probe set with --out")
    p.add_argument("--out", help="with several runs: folder for the across-run metrics and cross-run CKA")
    p.add_argument("--points", help="comma-separated hook points (default: all captured)")
    p.add_argument(
        "--capture",
        nargs="?",
        const="",
        metavar="WEIGHTS",
        help="first capture the probe set through saved weights: the run's best model (default), a "
        "checkpoint folder or a .safetensors file",
    )
    p.add_argument(
        "--capture-epoch",
        "--capture_epoch",
        dest="capture_epoch",
        type=int,
        help="the epoch to file the capture under (default: the one the weights record)",
    )
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--probe-size", "--probe_size", dest="probe_size", type=positive_int, default=2000)
    p.add_argument("--pooling", choices=POOLINGS, help="default: the run's capture_pooling")
    p.add_argument("--no-tsne", dest="no_tsne", action="store_true")
    p.add_argument(
        "--resamples",
        type=positive_int,
        default=1000,
        help="bootstrap resamples of the probe (and test) texts per interval",
    )
    p.add_argument("--permutations", type=positive_int, default=1000, help="label permutations per RSA p-value")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples and permutations")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also reset each encoder layer to its pre-fine-tuning weights (and, separately, replace its update "
        "by its mean over the probe texts) and write the test F1 drops to analysis/layer_ablation.csv",
    )
    p.set_defaults(func=_analyze)


def add_report(sub) -> None:
    """emoscope report RUN"""
    p = sub.add_parser("report", help="write RUN_DIR/report.html")
    p.add_argument("run_dir")
    p.set_defaults(func=_report)


def add_compare(sub) -> None:
    """emoscope compare RUN RUN ..."""
    p = sub.add_parser("compare", help="one page with several runs side by side")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="comparison.html")
    p.set_defaults(func=_compare)
