"""The emoscope command line: a thin shell over functions anyone can call.

Every user error is one line on stderr and exit code 2; nothing is written when the input is bad. Each command
group has its module here: its handlers and one function per command that adds its parser.
"""

from __future__ import annotations

import argparse
import sys

from emoscope.cli import analysis, data, export, scoring, training
from emoscope.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emoscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        training.add_training,
        scoring.add_evaluate,
        scoring.add_predict,
        analysis.add_analyze,
        export.add_export,
        analysis.add_report,
        analysis.add_compare,
        data.add_baseline,
        data.add_ensemble,
        data.add_data,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UserError as exc:
        print(f"emoscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emoscope: interrupted", file=sys.stderr)
        return 130
    return 0
