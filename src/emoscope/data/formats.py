"""Readers for every layout GoEmotions comes in, all returning `Example`s with original label ids (0..27).

Layouts: the official TSV (`text<TAB>ids<TAB>comment id`, no header), a CSV with a header (`text` plus
`labels`/`label`/`emotions` holding ids or names, or one 0/1 column per emotion as in the raw
`goemotions_*.csv`, whose one row per rater is merged per comment id as the dataset paper did), JSON Lines
or a JSON array, and Parquet, both as in the Hugging Face "simplified" config (`text`, `labels` list of ints,
`id`).

Every problem is a `DataError` "path:line: problem" with the 1-based physical line (for Parquet, the
1-based row). By default the first bad row raises; with `skip_bad_rows=True` bad rows are skipped and
their messages returned in `ReadResult.skipped` (and logged), so nothing is ever dropped silently.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emoscope.core.errors import DataError, UserError
from emoscope.data.labels import ORIGINAL_LABELS, Taxonomy

# Reddit's own limit on a comment: anything longer is not a comment, most likely a broken quote in a CSV.
MAX_TEXT_CHARS = 10_000
FORMATS = ("tsv", "csv", "jsonl", "parquet")
EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
TEXT_FIELD, ID_FIELD, UNCLEAR_FIELD, RATER_FIELD = "text", "id", "example_very_unclear", "rater_id"
# The dataset paper kept a label when at least two raters chose it.
MIN_RATERS = 2
LABEL_FIELDS = ("labels", "label", "emotions")

log = logging.getLogger("emoscope.data")
_SEPARATORS = re.compile(r"[\s,;|]+")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_ASCII_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[int, ...]  # indices into Taxonomy.labels, sorted, non-empty
    id: str  # comment id, or "<file>:<line>" when the file has none


class ReadResult(list):
    """The examples read (it is the list itself), one message per skipped bad row, and how many valid rows
    were dropped by rule and why (merging the raw per-rater layout drops unclear ratings and comments the
    raters did not agree on)."""

    def __init__(
        self, examples: Sequence[Example] = (), skipped: Sequence[str] = (), dropped: dict[str, int] | None = None
    ):
        super().__init__(examples)
        self.skipped = list(skipped)
        self.dropped = dict(dropped or {})

    def summary(self) -> str:
        """The one line a CLI prints after reading, or "" when nothing was skipped or dropped."""
        parts = [f"dropped {n} {why}" for why, n in self.dropped.items() if n]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} bad rows (first: {self.skipped[0]})")
        return "; ".join(parts)


class _BadRow(Exception):
    """A row's problem, before the collector adds where it is."""


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class _Rows:
    """Validates rows into examples; a bad row raises, or is recorded when skipping."""

    def __init__(self, path: Path, labels: Sequence[str], skip: bool, min_raters: int = MIN_RATERS):
        self.path, self.skip, self.min_raters = path, skip, min_raters
        self.examples: list[Example] = []
        self.skipped: list[str] = []
        self.dropped: Counter[str] = Counter()
        self.comments: dict[str, _Comment] = {}  # the raw per-rater layout, merged in `result`
        self.label_names = tuple(labels)
        self.n_labels = len(labels)
        self.ids: dict[Any, int] = {}
        self.cells: dict[str, tuple[int, ...]] = {}
        for i, name in enumerate(labels):
            self.ids.update({i: i, str(i): i, name: i, name.lower(): i})

    def bad(self, line: int | None, problem: str) -> None:
        error = DataError(self.path, line, problem)
        if not self.skip:
            raise error
        self.skipped.append(str(error))

    def label_ids(self, value: Any) -> tuple[int, ...]:
        """Ids or names as a string ("2,5", "[2, 5]", "joy|love"), a list of them, or one int."""
        if isinstance(value, str):
            # A file repeats a few hundred distinct label cells: parsing each once keeps big files fast.
            ids = self.cells.get(value)
            if ids is None:
                ids = self.cells[value] = self._parse_labels(value)
            return ids
        return self._parse_labels(value)

    def _parse_labels(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, str):
            value = value.strip()
            if value[:1] == "[" and value[-1:] == "]":
                value = value[1:-1]
            items: Any = [t for t in (t.strip("'\"") for t in _SEPARATORS.split(value)) if t]
        elif isinstance(value, (list, tuple)):
            items = value
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [value]
        else:
            raise _BadRow(f"labels must be label ids or names, found {type(value).__name__}")
        found = set()
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise _BadRow(f"label {_show(item)} is neither a label id nor a name")
            i = self.ids.get(item)
            if i is None:
                token = item.strip() if isinstance(item, str) else item
                if isinstance(token, str) and not _ASCII_INT.fullmatch(token):
                    i = self.ids.get(token.lower())
                    if i is None:
                        raise _BadRow(f"unknown label name {_show(item)}")
                else:  # an id in another spelling ("007", "+3") or out of range
                    number = int(token) if isinstance(token, int) or len(token) <= 18 else -1
                    if not 0 <= number < self.n_labels:
                        shown = token if isinstance(token, int) or len(token) <= 18 else token[:18] + "..."
                        raise _BadRow(f"label id {shown} out of range 0..{self.n_labels - 1}")
                    i = number
            found.add(i)
        if not found:
            raise _BadRow("no labels")
        return tuple(sorted(found))

    def add(self, line: int, text: Any, labels: Any, example_id: Any = None) -> None:
        try:
            _check_text(text)
            ids = self.label_ids(labels)
        except _BadRow as e:
            self.bad(line, str(e))
            return
        example_id = "" if example_id is None else str(example_id).strip()
        self.examples.append(Example(text, ids, example_id or f"{self.path.name}:{line}"))

    def add_record(self, line: int, record: Any) -> None:
        """A JSON object in the simplified layout: `text`, `labels` (or `label`/`emotions`), optional `id`."""
        if not isinstance(record, dict):
            self.bad(line, f"expected a JSON object with {TEXT_FIELD!r} and 'labels', found {type(record).__name__}")
            return
        label_key = next((k for k in LABEL_FIELDS if k in record), None)
        if TEXT_FIELD not in record or label_key is None:
            missing = TEXT_FIELD if TEXT_FIELD not in record else "labels"
            fields = ", ".join(map(str, record)) or "none"
            self.bad(line, f"missing field {missing!r} (fields found: {fields})")
            return
        self.add(line, record[TEXT_FIELD], record[label_key], record.get(ID_FIELD))

    def rating(self, line: int, text: str, comment_id: str, labels: list[int] | None) -> None:
        """One rater's row of a comment; `labels` None when the rater marked it example_very_unclear."""
        try:
            _check_text(text)
            if not comment_id.strip():
                raise _BadRow(f"no comment id: the rows of one comment (one per {RATER_FIELD}) are merged by id")
        except _BadRow as e:
            self.bad(line, str(e))
            return
        comment = self.comments.setdefault(comment_id.strip(), _Comment(line, text))
        if comment.text != text:
            self.bad(line, f"comment {comment_id.strip()!r} has another text on line {comment.line}")
        elif labels is None:
            self.dropped[f"ratings marked {UNCLEAR_FIELD}"] += 1
        else:
            comment.votes.update(labels)

    def _merge_ratings(self) -> None:
        """A comment keeps each label at least `min_raters` raters chose, and is dropped without one."""
        for comment_id, comment in self.comments.items():
            labels = tuple(sorted(i for i, n in comment.votes.items() if n >= self.min_raters))
            if labels:
                self.examples.append(Example(comment.text, labels, comment_id))
            else:
                self.dropped[f"comments with no label chosen by at least {self.min_raters} raters"] += 1

    def result(self) -> ReadResult:
        self._merge_ratings()
        if not self.examples:
            if self.dropped:
                raise DataError(self.path, None, f"no examples: {ReadResult(dropped=self.dropped).summary()}")
            if self.skipped:
                raise DataError(
                    self.path, None, f"no valid rows: all {len(self.skipped)} rows are bad (first: {self.skipped[0]})"
                )
            raise DataError(self.path, None, "no examples: the file has no data rows")
        result = ReadResult(self.examples, self.skipped, self.dropped)
        if self.skipped or self.dropped:
            log.warning("%s: %s", self.path, result.summary())
        return result


@dataclass
class _Comment:
    line: int  # where its first rating is
    text: str
    votes: Counter[int] = field(default_factory=Counter)


def _check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise _BadRow(f"text must be a string, found {type(text).__name__}")
    if not text or text.isspace():
        raise _BadRow("empty or whitespace-only text")
    if len(text) > MAX_TEXT_CHARS:
        raise _BadRow(f"text is {len(text)} characters, longer than the maximum {MAX_TEXT_CHARS}")


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    """`fmt` when given, else the format its extension names."""
    if fmt is not None:
        name = fmt.lower().lstrip(".")
        name = "jsonl" if name == "json" else name
        if name not in FORMATS:
            raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
        return name
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UserError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; use one "
            f"of {', '.join(EXTENSIONS)} or pass the format explicitly ({', '.join(FORMATS)})"
        )
    return EXTENSIONS[suffix]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a data file") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def _check_text_file(path: Path, data: bytes, fmt: str) -> None:
    """Refuse binary content at once rather than report a thousand garbled rows."""
    if data.startswith(b"PAR1"):
        raise DataError(
            path, None, f"this is a Parquet file, not {fmt.upper()}: rename it to .parquet or pass the format 'parquet'"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, None, "the file is UTF-16 encoded; save it as UTF-8")
    head = data[:8192]
    if b"\x00" in head:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        raise DataError(path, line, f"binary content (a NUL byte), not a {fmt.upper()} text file")


def _decode(data: bytes) -> tuple[str, dict[int, str]]:
    """The text, and the problem of each line that is not UTF-8 (decoded with U+FFFD so the rest reads)."""
    try:
        text, bad = data.decode("utf-8"), {}
    except UnicodeDecodeError:
        bad = {}
        for line, raw in enumerate(data.split(b"\n"), 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad[line] = f"invalid UTF-8: byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line"
        text = data.decode("utf-8", "replace")
    return text.removeprefix("\ufeff"), bad


def _first_bad(bad: dict[int, str] | set[int], first: int, last: int) -> int | None:
    return next((n for n in range(first, last + 1) if n in bad), None) if bad else None


def _read_tsv(path: Path, text: str, bad: dict[int, str], rows: _Rows) -> None:
    """The first data row fixes the layout (with or without the id column); a row that differs is an error:
    a text with a stray tab would otherwise put part of itself in the label column."""
    layout: tuple[int, int] | None = None  # (columns, line that set them)
    for line_no, line in enumerate(text.split("\n"), 1):
        if line_no in bad:
            rows.bad(line_no, bad[line_no])
            continue
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():  # a blank line holds no row
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            csv_like = len(fields) == 1 and "," in line
            hint = "; is it a CSV? rename it to .csv or pass the format 'csv'" if csv_like else ""
            rows.bad(
                line_no,
                f"expected 3 tab-separated columns (text, label ids, comment id; the id may be "
                f"left out), found {len(fields)}{hint}",
            )
            continue
        if len(fields) == 3 and not fields[2]:  # an empty id is no id
            fields = fields[:2]
        layout = layout or (len(fields), line_no)
        if len(fields) != layout[0]:
            rows.bad(
                line_no,
                f"{len(fields)} tab-separated columns, but line {layout[1]} has {layout[0]}: every "
                "row needs the same columns (text, label ids, and the comment id if any row has one)",
            )
            continue
        rows.add(line_no, *fields)


def _lines(text: str) -> Iterator[str]:
    """Physical lines (split on \\n only, as the line numbers count them) with their ends, for csv."""
    lines = text.split("\n")
    for line in lines[:-1]:
        yield line + "\n"
    if lines[-1]:
        yield lines[-1]


def _csv_columns(path: Path, line: int, header: list[str], labels: Sequence[str]) -> dict[str, Any]:
    """Where the text, labels (a labels column or one 0/1 column per emotion), id and unclear flag are."""
    names = [h.strip().lower() for h in header]
    found = ", ".join(_show(h) for h in header)
    hint = " (the header has tabs: a TSV file? rename it to .tsv)" if any("\t" in h for h in header) else ""
    if TEXT_FIELD not in names:
        raise DataError(path, line, f"no {TEXT_FIELD!r} column in the header; found columns: {found}{hint}")
    where = {
        "text": names.index(TEXT_FIELD),
        "id": names.index(ID_FIELD) if ID_FIELD in names else None,
        "unclear": names.index(UNCLEAR_FIELD) if UNCLEAR_FIELD in names else None,
        "rater": names.index(RATER_FIELD) if RATER_FIELD in names else None,
        "labels": next((names.index(k) for k in LABEL_FIELDS if k in names), None),
        "one_hot": None,
        "n": len(header),
    }
    if where["labels"] is None:
        present = [n for n in labels if n.lower() in names]
        if len(present) < len(labels):
            missing = [n for n in labels if n not in present]
            wanted = "a labels column ('labels', 'label' or 'emotions')"
            if present:
                wanted += f" or a 0/1 column for every emotion (missing: {', '.join(missing)})"
            raise DataError(path, line, f"no labels: expected {wanted}; found columns: {found}{hint}")
        where["one_hot"] = [(i, names.index(n.lower())) for i, n in enumerate(labels)]
    if where["rater"] is not None and where["one_hot"] is not None and where["id"] is None:
        raise DataError(
            path, line, f"one row per rater ({RATER_FIELD!r}) but no {ID_FIELD!r} column to merge a comment's rows by"
        )
    return where


def _csv_records(reader) -> Iterator[tuple[int, int, list[str] | csv.Error]]:
    """(first line, last line, fields) per record of a `csv.reader`, or the `csv.Error` in place of the fields of
    a malformed record; the reader goes on after it. A quoted field may span lines: `line_num` says where."""
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield start, end, exc
            continue
        end = reader.line_num
        yield start, end, fields


def _read_csv(path: Path, text: str, bad: dict[int, str], rows: _Rows, labels: Sequence[str]) -> None:
    where: dict[str, Any] | None = None
    for start, end, fields in _csv_records(csv.reader(_lines(text), strict=True)):
        if isinstance(fields, csv.Error):
            problem = str(fields)
            if "field larger than field limit" in problem:
                problem = (
                    f"a field is longer than {csv.field_size_limit()} characters "
                    f"(texts may have at most {MAX_TEXT_CHARS})"
                )
            elif "unexpected end of data" in problem:
                problem = "a quoted field is never closed (reached the end of the file)"
            if where is None:
                raise DataError(path, start, f"malformed CSV header: {problem}") from None
            rows.bad(start, f"malformed CSV: {problem}")
            continue
        bad_line = _first_bad(bad, start, end)
        if where is None:
            if bad_line is not None:
                raise DataError(path, bad_line, bad[bad_line])
            if any(f.strip() for f in fields):
                where = _csv_columns(path, start, fields, labels)
            continue
        if bad_line is not None:
            rows.bad(bad_line, bad[bad_line])
            continue
        if not any(f.strip() for f in fields):  # a blank line holds no row
            continue
        if len(fields) != where["n"]:
            rows.bad(start, f"expected {where['n']} columns as in the header, found {len(fields)}")
            continue
        _csv_row(start, fields, where, rows)


def _csv_row(line: int, fields: list[str], where: dict[str, Any], rows: _Rows) -> None:
    """One example, or in the raw per-rater layout (one 0/1 column per emotion and a rater id) one rating."""
    per_rater = where["rater"] is not None and where["one_hot"] is not None
    unclear = False
    if where["unclear"] is not None:
        flag = fields[where["unclear"]].strip().lower()
        if flag not in ("true", "1", "false", "0", ""):
            rows.bad(line, f"{UNCLEAR_FIELD} must be true or false, found {_show(fields[where['unclear']])}")
            return
        unclear = flag in ("true", "1")
        if unclear and not per_rater:
            rows.bad(line, f"marked {UNCLEAR_FIELD} (the raters could not label it)")
            return
    if where["one_hot"] is None:
        labels: Any = fields[where["labels"]]
    else:
        labels = []
        for label, column in where["one_hot"]:
            value = fields[column].strip()
            if value == "1":
                labels.append(label)
            elif value != "0":
                rows.bad(line, f"column {rows.label_names[label]!r} must be 0 or 1, found {_show(value)}")
                return
    if per_rater:
        rows.rating(line, fields[where["text"]], fields[where["id"]], None if unclear else labels)
        return
    rows.add(line, fields[where["text"]], labels, fields[where["id"]] if where["id"] is not None else None)


def _json_line(line: str) -> Any:
    """One JSON Lines record; its problem as a `_BadRow` (also for hostile input: a number over 4300 digits,
    nesting too deep)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise _BadRow(f"invalid JSON: {e.msg} (column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise _BadRow(f"invalid JSON: {e}") from None


def _read_jsonl(path: Path, text: str, bad: dict[int, str], rows: _Rows) -> None:
    if text.lstrip().startswith("["):
        _read_json_array(path, text, bad, rows)
        return
    for line_no, line in enumerate(text.split("\n"), 1):
        if line_no in bad:
            rows.bad(line_no, bad[line_no])
            continue
        if not line.strip():  # a blank line holds no row
            continue
        try:
            record = _json_line(line)
        except _BadRow as e:
            rows.bad(line_no, str(e))
            continue
        rows.add_record(line_no, record)


def _read_json_array(path: Path, text: str, bad: dict[int, str], rows: _Rows) -> None:
    """A JSON array of records, each numbered by the line it starts on; a syntax error ends the read."""
    decoder = json.JSONDecoder()
    pos = _JSON_SPACE.match(text, text.index("[") + 1).end()
    line = text.count("\n", 0, pos) + 1
    closed = text.startswith("]", pos)
    while not closed:
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(
                path,
                e.lineno,
                f"invalid JSON: {e.msg} (column {e.colno}); a broken JSON array cannot be read past this point",
            ) from None
        except (ValueError, RecursionError) as e:
            raise DataError(path, line, f"invalid JSON: {e}") from None
        end_line = line + text.count("\n", pos, end)
        bad_line = _first_bad(bad, line, end_line)
        if bad_line is None:
            rows.add_record(line, record)
        else:
            rows.bad(bad_line, bad[bad_line])
        pos = _JSON_SPACE.match(text, end).end()
        line = end_line + text.count("\n", end, pos)
        closed = text.startswith("]", pos)
        if not closed and not text.startswith(",", pos):
            raise DataError(path, line, "invalid JSON: expected ',' or ']' after a record")
        if not closed:
            nxt = _JSON_SPACE.match(text, pos + 1).end()
            line += text.count("\n", pos, nxt)
            pos = nxt
    rest = _JSON_SPACE.match(text, pos + 1).end()
    if rest < len(text):
        line += text.count("\n", pos, rest)
        raise DataError(path, line, "invalid JSON: extra data after the closing ']'")


def _read_parquet(path: Path, data: bytes, rows: _Rows) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not data.startswith(b"PAR1"):
        raise DataError(
            path,
            None,
            "not a Parquet file (no PAR1 magic bytes); if it is text, name it .csv, .tsv or .jsonl or pass that format",
        )
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        names = parquet.schema_arrow.names
        label_key = next((k for k in LABEL_FIELDS if k in names), None)
        if TEXT_FIELD not in names or label_key is None:
            missing = TEXT_FIELD if TEXT_FIELD not in names else "labels"
            raise DataError(path, None, f"no {missing!r} column; found columns: {', '.join(names) or 'none'}")
        wanted = [TEXT_FIELD, label_key] + ([ID_FIELD] if ID_FIELD in names else [])
        table = parquet.read(columns=wanted)
        columns = [_values(table.column(name)) for name in wanted]
    # KeyError: a column name used twice; UnicodeDecodeError: metadata (column names) not UTF-8
    except (pa.ArrowException, OSError, KeyError, UnicodeDecodeError) as e:
        reason = " ".join(str(e).split())  # pyarrow's messages span lines; a UserError is one line
        raise DataError(path, None, f"not a readable Parquet file: {reason}") from None
    ids = columns[2] if len(columns) == 3 else [None] * table.num_rows
    for row, values in enumerate(zip(columns[0], columns[1], ids, strict=True), 1):
        broken = next((n for n, v in zip(wanted, values, strict=False) if isinstance(v, UnicodeDecodeError)), None)
        if broken is not None:
            rows.bad(row, f"invalid UTF-8 in column {broken!r}")
        else:
            rows.add(row, *values)


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


def read_examples(
    path: str | Path,
    fmt: str | None = None,
    *,
    skip_bad_rows: bool = False,
    labels: Sequence[str] = ORIGINAL_LABELS,
    min_raters: int = MIN_RATERS,
) -> ReadResult:
    """Examples of a file in any supported layout, with ids into `labels` (the original 28 by default).
    `min_raters`: in the raw one-row-per-rater layout, how many raters must choose a label to keep it."""
    if isinstance(min_raters, bool) or not isinstance(min_raters, int) or min_raters < 1:
        raise UserError(f"min_raters must be a positive integer, found {min_raters!r}")
    path = Path(path)
    fmt = detect_format(path, fmt)
    data = _read_bytes(path)
    if not data.strip():
        raise DataError(path, None, "empty file")
    rows = _Rows(path, labels, skip_bad_rows, min_raters)
    if fmt == "parquet":
        _read_parquet(path, data, rows)
    else:
        _check_text_file(path, data, fmt)
        text, bad = _decode(data)
        if fmt == "tsv":
            _read_tsv(path, text, bad, rows)
        elif fmt == "csv":
            _read_csv(path, text, bad, rows, labels)
        else:
            _read_jsonl(path, text, bad, rows)
    return rows.result()


def apply_taxonomy(examples: Sequence[Example], taxonomy: Taxonomy) -> list[Example]:
    """Examples with original label ids re-expressed in `taxonomy` (the union of their groups)."""
    if taxonomy.name == "original":
        return list(examples)
    return [Example(e.text, taxonomy.map_labels(e.labels), e.id) for e in examples]


# ---------------------------------------------------------------- texts to score (no labels)

TEXT_FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
SKIPPED_SHOWN = 10  # messages kept of the skipped rows: the count is what grows with the file


@dataclass(frozen=True)
class TextRow:
    line: int  # the 1-based physical line the row starts on (Parquet: the 1-based row)
    text: str
    columns: dict[str, Any]  # the row's other columns by name (headerless CSV/TSV: column_2, column_3, ...)


class TextReader:
    """Texts to score, read row by row: memory does not grow with the file, so a corpus of any size streams.

    .txt: one text a line (blank lines skipped); .csv/.tsv: the `text_column` of the header (default `text`;
    a file whose first row has no `text` has no header and its first column is the text); .jsonl: one object a
    line, its `text_column` field (default `text`); .parquet: the `text_column` column (default `text`).
    Every problem is a `DataError` "path:line: problem"; with `skip_bad_rows` bad rows are counted in `skipped`
    (the first messages in `skipped_messages`) instead. `rows()` may be iterated again and gives the same rows.
    """

    def __init__(self, path: str | Path, text_column: str | None = None, skip_bad_rows: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"input file {self.path} does not exist")
        self.format = self.path.suffix.lower()
        if self.format not in TEXT_FORMATS:
            raise UserError(
                f"{self.path}: unsupported input format '{self.format}'; use one of {', '.join(TEXT_FORMATS)}"
            )
        if self.format == ".txt" and text_column is not None:
            raise UserError(
                f"{self.path}: a .txt file has no columns; --text_column needs a CSV, TSV, JSONL or Parquet"
            )
        self.text_column = text_column
        self.skip = skip_bad_rows
        self.header_line: int | None = None  # where the column names are (CSV/TSV header), for errors
        self.skipped, self.skipped_messages = 0, []

    def _bad(self, line: int | None, problem: str) -> None:
        error = DataError(self.path, line, problem)
        if not self.skip:
            raise error
        self.skipped += 1
        if len(self.skipped_messages) < SKIPPED_SHOWN:
            self.skipped_messages.append(str(error))

    def rows(self) -> Iterator[TextRow]:
        self.skipped, self.skipped_messages = 0, []
        read = {".txt": self._txt, ".jsonl": self._jsonl, ".parquet": self._parquet}.get(self.format, self._delimited)
        found = False
        for row in read():
            if not row.text.strip():
                self._bad(row.line, "empty text")
                continue
            found = True
            yield row
        if not found:
            if self.skipped:
                raise DataError(
                    self.path,
                    None,
                    f"no valid rows: all {self.skipped} rows are bad (first: {self.skipped_messages[0]})",
                )
            raise DataError(self.path, None, "no texts found")

    def _lines(self, bad: set[int]) -> Iterator[str]:
        """The file's physical lines (split on \\n only, as line numbers count them) with their ends; a line
        that is not UTF-8 is decoded with U+FFFD and its number put in `bad`, for the row that holds it."""
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad.add(number)
                    line = raw.decode("utf-8", "replace")
                yield line.removeprefix("\ufeff") if number == 1 else line

    def _txt(self) -> Iterator[TextRow]:
        bad: set[int] = set()
        for number, line in enumerate(self._lines(bad), 1):
            if number in bad:
                self._bad(number, "invalid UTF-8")
            elif line.strip():
                yield TextRow(number, line.rstrip("\r\n"), {})

    def _jsonl(self) -> Iterator[TextRow]:
        bad: set[int] = set()
        column = self.text_column or TEXT_FIELD
        for number, line in enumerate(self._lines(bad), 1):
            if number in bad:
                self._bad(number, "invalid UTF-8")
                continue
            if not line.strip():
                continue
            try:
                record = _json_line(line)
            except _BadRow as exc:
                self._bad(number, str(exc))
                continue
            if not isinstance(record, dict) or not isinstance(record.get(column), str):
                self._bad(number, f"expected an object with a string field {column!r}")
                continue
            yield TextRow(number, record.pop(column), record)

    def _delimited(self) -> Iterator[TextRow]:
        bad: set[int] = set()
        reader = csv.reader(self._lines(bad), delimiter="\t" if self.format == ".tsv" else ",")
        header: list[str] | None = None
        column = 0
        for start, end, row in _csv_records(reader):
            if isinstance(row, csv.Error):
                self._bad(start, f"malformed {self.format[1:].upper()}: {row}")
                continue
            if start == 1:
                wanted = self.text_column or TEXT_FIELD
                if wanted in row:
                    header, column, self.header_line = row, row.index(wanted), 1
                    continue
                if self.text_column is not None:
                    found = ", ".join(_show(h) for h in row)
                    raise DataError(self.path, 1, f"no column {wanted!r} in the header; found columns: {found}")
            bad_line = _first_bad(bad, start, end)
            if bad_line is not None:
                self._bad(bad_line, "invalid UTF-8")
                continue
            if len(row) <= column:
                self._bad(start, f"expected at least {column + 1} columns, found {len(row)}")
                continue
            names = header or [f"column_{k}" for k in range(1, len(row) + 1)]
            others = {name: row[k] if k < len(row) else None for k, name in enumerate(names) if k != column}
            yield TextRow(start, row[column], others)

    def _parquet(self) -> Iterator[TextRow]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        column = self.text_column or TEXT_FIELD
        try:
            parquet = pq.ParquetFile(self.path)
            names = parquet.schema_arrow.names
            if column not in names:
                raise DataError(self.path, None, f"no column {column!r}; found columns: {', '.join(names) or 'none'}")
            row = 0
            for batch in parquet.iter_batches(batch_size=4096):
                values = {name: _values(batch.column(name)) for name in names}
                for k in range(batch.num_rows):
                    row += 1
                    record = {name: values[name][k] for name in names}
                    broken = next((n for n, v in record.items() if isinstance(v, UnicodeDecodeError)), None)
                    text = record.pop(column)
                    if broken is not None:
                        self._bad(row, f"invalid UTF-8 in column {broken!r}")
                    elif not isinstance(text, str):
                        self._bad(row, f"column {column!r} must hold a string, found {type(text).__name__}")
                    else:
                        yield TextRow(row, text, record)
        except (pa.ArrowException, OSError, KeyError, UnicodeDecodeError) as e:
            reason = " ".join(str(e).split())  # pyarrow's messages span lines; a UserError is one line
            raise DataError(self.path, None, f"not a readable Parquet file: {reason}") from None
