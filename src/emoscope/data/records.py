"""One parser per file format, shared by labelled data (`formats.read_examples`) and texts to score
(`formats.TextReader`), so both follow the same rules.

Each parser streams its file and yields `Record`s numbered by physical line (split on \\n only; Parquet: the
1-based row). A record that cannot be read carries its problem instead of its value, and the caller raises it
as `DataError(path, line, problem)` or, with --skip_bad_rows, skips and counts it: bad UTF-8, a NUL byte, a
quote never closed (`file:line: quote opened here is never closed`), a quoted field over `MAX_FIELD_LINES`
lines (almost always a stray quote swallowing the rows after it), a row with other columns than the header,
invalid JSON.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoscope.core.errors import DataError, UserError

MAX_FIELD_LINES = 100  # a quoted field spanning more lines is read as a stray quote, reported with its range
PEEK_BYTES = 8192
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class Record:
    line: int  # where it starts (a bad record: where its problem is); Parquet: the 1-based row
    end: int  # the last physical line it spans
    value: Any = None  # the fields (text formats), the decoded JSON value, or a Parquet row as a dict
    problem: str | None = None  # a bad record's problem, without file and line


def check_readable(path: Path, kind: str) -> bytes:
    """The file's first bytes, after refusing what is not a `kind` text file at all: missing, a folder,
    Parquet, UTF-16 (a Parquet `kind` checks only that it exists)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PEEK_BYTES)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a data file") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if kind == "parquet":
        return head
    if head.startswith(b"PAR1"):
        raise DataError(
            path,
            None,
            f"this is a Parquet file, not {kind.upper()}: rename it to .parquet or pass the format 'parquet'",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, None, "the file is UTF-16 encoded; save it as UTF-8")
    return head


def lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(number, line with its end, problem or None) per physical line: a line that is not UTF-8 is decoded with
    U+FFFD (so a quote on it still counts) and carries its problem, as does one with a NUL byte."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            problem = None
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problem = f"invalid UTF-8: byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line"
                line = raw.decode("utf-8", "replace")
            if problem is None and "\x00" in line:
                problem = f"a NUL byte at byte {raw.index(0) + 1} of the line (is it a binary file?)"
            yield number, (line.removeprefix("\ufeff") if number == 1 else line), problem


def text_records(path: Path) -> Iterator[Record]:
    """Plain text: one text a line (its end removed), blank lines skipped."""
    for number, line, problem in lines(path):
        if problem is not None:
            yield Record(number, number, problem=problem)
        elif line.strip():
            yield Record(number, number, [line.rstrip("\r\n")])


def tab_records(path: Path) -> Iterator[Record]:
    """The GoEmotions TSV: tab-separated fields without quoting, one row a line, blank lines skipped."""
    for number, line, problem in lines(path):
        if problem is not None:
            yield Record(number, number, problem=problem)
            continue
        line = line.removesuffix("\n").removesuffix("\r")
        if line.strip():
            yield Record(number, number, line.split("\t"))


def delimited_records(path: Path, delimiter: str) -> Iterator[Record]:
    """CSV (or TSV with its quoting) as the `csv` module reads it, strictly: the fields of each row, a quoted
    field spanning lines included; blank lines skipped."""
    kind = "CSV" if delimiter == "," else "TSV"
    bad: dict[int, str] = {}
    held: list[str] = []  # the physical lines of the row being read, to find where a quote opened

    def feed() -> Iterator[str]:
        for number, line, problem in lines(path):
            if problem is not None:
                bad[number] = problem
            held.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield _malformed(str(exc), kind, start, end, held, delimiter)
            held.clear()
            continue
        end = reader.line_num
        spans = _quoted_spans(held, start, delimiter)
        held.clear()
        bad_line = next((n for n in range(start, end + 1) if n in bad), None)
        if bad_line is not None:
            yield Record(bad_line, end, problem=bad[bad_line])
            continue
        long = next(((a, b) for a, b in spans if b is not None and b - a + 1 > MAX_FIELD_LINES), None)
        if long is not None:
            yield Record(
                long[0],
                end,
                problem=f"a quoted field spans lines {long[0]}-{long[1]} ({long[1] - long[0] + 1} lines, more than "
                f"{MAX_FIELD_LINES}): is the quote opened here a stray one?",
            )
        elif fields:
            yield Record(start, end, fields)


def _malformed(message: str, kind: str, start: int, end: int, held: list[str], delimiter: str) -> Record:
    """The record of a row the `csv` module refused, at the line where its trouble began."""
    spans = _quoted_spans(held, start, delimiter)
    still_open = next((a for a, b in spans if b is None), None)
    if "unexpected end of data" in message and still_open is not None:
        return Record(still_open, end, problem="quote opened here is never closed")
    if "field larger than field limit" in message:
        where = f" (lines {start}-{end})" if end > start else ""
        hint = f"; is the quote opened on line {still_open} a stray one?" if still_open is not None else ""
        limit = csv.field_size_limit()
        return Record(start, end, problem=f"malformed {kind}: a field of more than {limit} characters{where}{hint}")
    last = spans[-1] if spans else None
    if last is not None and last[1] is not None and last[1] > last[0]:
        return Record(
            last[0], end, problem=f"malformed {kind}: the quote opened here closes on line {last[1]}, where {message}"
        )
    return Record(start, end, problem=f"malformed {kind}: {message}")


def _quoted_spans(held: list[str], first: int, delimiter: str) -> list[tuple[int, int | None]]:
    """(line it opens on, line it closes on or None) of each quoted field in the physical lines `held`."""
    spans: list[tuple[int, int | None]] = []
    quoted, at_field_start, opened = False, True, 0
    for number, line in enumerate(held, first):
        if '"' not in line and not quoted:
            at_field_start = True
            continue
        i = 0
        while i < len(line):
            char = line[i]
            if quoted:
                if char == '"':
                    if line.startswith('"', i + 1):  # an escaped quote
                        i += 1
                    else:
                        quoted = False
                        spans.append((opened, number))
            elif char == '"' and at_field_start:
                quoted, opened = True, number
            at_field_start = not quoted and char in (delimiter, "\n", "\r")
            i += 1
    if quoted:
        spans.append((opened, None))
    return spans


@dataclass
class Table:
    """A CSV or TSV as named columns: `columns` from the header (line `header_line`), or column_1, column_2, ...
    for a file without one; `rows()` gives the records after the header, a row with another number of fields
    than the columns being a bad record."""

    path: Path
    delimiter: str
    header: bool = True

    def __post_init__(self) -> None:
        self.columns: list[str] = []
        self.header_line: int | None = None
        for record in delimited_records(self.path, self.delimiter):
            if record.problem is not None:
                raise DataError(self.path, record.line, record.problem)
            if not any(f.strip() for f in record.value):
                continue
            if self.header:
                self.columns, self.header_line = record.value, record.line
            else:
                self.columns = [f"column_{k}" for k in range(1, len(record.value) + 1)]
            return

    def rows(self) -> Iterator[Record]:
        """The data rows; with a header, every one after it."""
        records = delimited_records(self.path, self.delimiter)
        if self.header_line is not None:
            for record in records:
                if record.end >= self.header_line:
                    break
        shape = f"in the header (line {self.header_line})" if self.header else "on the first row"
        for record in records:
            if record.problem is None and not any(f.strip() for f in record.value):
                continue  # a row of empty fields holds nothing, as a blank line
            if record.problem is None and len(record.value) != len(self.columns):
                record = Record(
                    record.line,
                    record.end,
                    problem=f"expected {len(self.columns)} columns as {shape}, found {len(record.value)}",
                )
            yield record


def json_records(path: Path) -> Iterator[Record]:
    """JSON Lines (one value a line, blank lines skipped), or a JSON array of values, each numbered by the
    line it starts on (a syntax error in an array ends the read: nothing after it can be trusted)."""
    head = check_readable(path, "jsonl")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        yield from _json_array(path)
        return
    for number, line, problem in lines(path):
        if problem is not None:
            yield Record(number, number, problem=problem)
        elif line.strip():
            try:
                yield Record(number, number, _json_value(line.rstrip("\r\n")))
            except ValueError as e:
                yield Record(number, number, problem=str(e))


def _json_value(text: str) -> Any:
    """One JSON value; its problem as a ValueError (also for hostile input: a number over 4300 digits, nesting
    too deep)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} (column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise ValueError(f"invalid JSON: {e}") from None


def _json_array(path: Path) -> Iterator[Record]:
    bad: dict[int, str] = {}
    parts = []
    for number, line, problem in lines(path):
        if problem is not None:
            bad[number] = problem
        parts.append(line)
    text = "".join(parts)
    decoder = json.JSONDecoder()
    pos = _JSON_SPACE.match(text, text.index("[") + 1).end()
    line = text.count("\n", 0, pos) + 1
    closed = text.startswith("]", pos)
    while not closed:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            problem = f"invalid JSON: {e.msg} (column {e.colno}); a broken JSON array cannot be read past this point"
            raise DataError(path, e.lineno, problem) from None
        except (ValueError, RecursionError) as e:
            raise DataError(path, line, f"invalid JSON: {e}") from None
        end_line = line + text.count("\n", pos, end)
        bad_line = next((n for n in range(line, end_line + 1) if n in bad), None)
        yield Record(line, end_line, value) if bad_line is None else Record(bad_line, end_line, problem=bad[bad_line])
        pos = _JSON_SPACE.match(text, end).end()
        line = end_line + text.count("\n", end, pos)
        closed = text.startswith("]", pos)
        if not closed and not text.startswith(",", pos):
            raise DataError(path, line, "invalid JSON: expected ',' or ']' after a record")
        if not closed:
            after = _JSON_SPACE.match(text, pos + 1).end()
            line += text.count("\n", pos, after)
            pos = after
    rest = _JSON_SPACE.match(text, pos + 1).end()
    if rest < len(text):
        raise DataError(path, line + text.count("\n", pos, rest), "invalid JSON: extra data after the closing ']'")


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, after checking it is one."""
    import pyarrow.parquet as pq

    if not check_readable(path, "parquet").startswith(b"PAR1"):
        raise DataError(
            path,
            None,
            "not a Parquet file (no PAR1 magic bytes); if it is text, name it .csv, .tsv or .jsonl or pass that format",
        )
    with _parquet_errors(path):
        return list(pq.ParquetFile(path).schema_arrow.names)


def parquet_records(path: Path, columns: list[str]) -> Iterator[Record]:
    """`columns` of every row, batch by batch; a value that is not UTF-8 makes its row a bad record."""
    import pyarrow.parquet as pq

    row = 0
    with _parquet_errors(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=columns):
            values = {name: _values(batch.column(name)) for name in columns}
            for k in range(batch.num_rows):
                row += 1
                record = {name: values[name][k] for name in columns}
                broken = next((n for n, v in record.items() if isinstance(v, UnicodeDecodeError)), None)
                if broken is None:
                    yield Record(row, row, record)
                else:
                    yield Record(row, row, problem=f"invalid UTF-8 in column {broken!r}")


@contextmanager
def _parquet_errors(path: Path) -> Iterator[None]:
    """pyarrow's errors on a damaged file as one DataError line."""
    import pyarrow as pa

    try:
        yield
    # KeyError: a column name used twice; UnicodeDecodeError: metadata (column names) not UTF-8
    except (pa.ArrowException, OSError, KeyError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())  # pyarrow's messages span lines; a UserError is one line
        raise DataError(path, None, f"not a readable Parquet file: {reason}") from None


def _values(column: Any) -> list[Any]:
    """A Parquet column as Python values; a value that is not UTF-8 becomes its error, reported on its row."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        values: list[Any] = []
        for i in range(len(column)):
            try:
                values.append(column[i].as_py())
            except UnicodeDecodeError as e:
                values.append(e)
        return values
