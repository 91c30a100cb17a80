"""`emoscope train`, `distill` and `crossfit`: the recipes, configured by a preset and any field as --field value."""

from __future__ import annotations

import argparse

from emoscope.core.config import (
    ConfigHelpFormatter,
    add_config_arguments,
    config_overrides,
    config_yaml,
    resolve_config,
)
from emoscope.core.errors import UserError


def _train(args: argparse.Namespace) -> None:
    """`train`, `distill` and `crossfit`; `--print-config` resolves and validates the configuration and stops:
    no data, weights or run folder."""
    config = resolve_config(args.preset, config_overrides(args))
    if args.command == "distill" and not config.teachers:
        raise UserError("emoscope distill needs at least one --teacher DIR (a run, ensemble or crossfit folder)")
    if args.command == "crossfit" and args.folds < 2:
        raise UserError(f"--folds must be at least 2, got {args.folds}")
    if args.command == "crossfit" and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if getattr(args, "print_config", False):
        print(config_yaml(config), end="")
        return
    if args.command == "crossfit":
        from emoscope.recipes.crossfit import crossfit_run

        crossfit_run(config, args.folds, args.jobs)
    else:
        from emoscope.recipes.train import train_run

        train_run(config)


def add_training(sub) -> None:
    """train, distill and crossfit: the same configuration flags, generated from `TrainConfig`."""
    trainers = {
        "train": (
            "fine-tune a model; any config field can be set as --field value",
            "Fine-tune a model: a preset, then any field of the configuration as --field value.",
        ),
        "distill": (
            "train one student on the gold labels and its teachers' probabilities (--teacher DIR ...)",
            "Train a student (any field as --field value) on the gold labels plus the mean probability of "
            "its teachers on the train texts: run, ensemble or crossfit folders (--teacher DIR, repeatable). "
            "The teachers' probabilities are cached in the run folder's teachers/.",
        ),
        "crossfit": (
            "train k teachers, each without one fold of train, into one teacher folder",
            "Train --folds teachers (any field as --field value), teacher k without fold k of train, in "
            "RUN_DIR/fold_<k>/; RUN_DIR becomes their ensemble and holds every train text's out-of-fold "
            "probabilities, for emoscope distill --teacher RUN_DIR.",
        ),
    }
    for name, (summary, description) in trainers.items():
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            formatter_class=ConfigHelpFormatter,
            usage="%(prog)s [--preset NAME|FILE] [--FIELD VALUE ...] [--print-config]",
        )
        p.add_argument(
            "--print-config",
            "--print_config",
            dest="print_config",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print the resolved configuration as YAML and stop",
        )
        if name == "crossfit":
            p.add_argument("--folds", type=int, default=4, help="folds of train, one teacher each (default: 4)")
            p.add_argument(
                "--jobs",
                type=int,
                default=1,
                help="teachers trained side by side, each in its own process with an equal share of the CPU "
                "threads (default: 1, one after another); on 2 cores, 2 jobs trained 1.5x as many examples "
                "per second as one",
            )
        add_config_arguments(p)
        p.set_defaults(func=_train)
