"""User-facing errors: the CLI prints them as one line and exits with code 2, without a traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem the user can fix (bad input, bad option, missing file); never a bug in emoscope."""


class DataError(UserError):
    """A bad row or file: the message always names the file and, where there is one, the line."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")
