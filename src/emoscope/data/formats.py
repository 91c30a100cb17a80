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

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emoscope.core.errors import DataError, UserError
from emoscope.data.labels import ORIGINAL_LABELS, Taxonomy
from emoscope.data.records import (
    Record,
    Table,
    check_readable,
    json_records,
    parquet_columns,
    parquet_records,
    tab_records,
    text_records,
)

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

    def __init__(
        self, path: Path, labels: Sequence[str], skip: bool, min_raters: int = MIN_RATERS, text_field: str = TEXT_FIELD
    ):
        self.path, self.skip, self.min_raters, self.text_field = path, skip, min_raters, text_field
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
        """A JSON object in the simplified layout: the text field (`text` unless named), `labels` (or `label` /
        `emotions`), optional `id`."""
        text = self.text_field
        if not isinstance(record, dict):
            self.bad(line, f"expected a JSON object with {text!r} and 'labels', found {type(record).__name__}")
            return
        label_key = next((k for k in LABEL_FIELDS if k in record), None)
        if text not in record or label_key is None:
            missing = text if text not in record else "labels"
            fields = ", ".join(map(str, record)) or "none"
            self.bad(line, f"missing field {missing!r} (fields found: {fields}){_name_it(missing)}")
            return
        self.add(line, record[text], record[label_key], record.get(ID_FIELD))

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


def _read_tsv(path: Path, rows: _Rows) -> None:
    """The first data row fixes the layout (with or without the id column); a row that differs is an error:
    a text with a stray tab would otherwise put part of itself in the label column."""
    layout: tuple[int, int] | None = None  # (columns, line that set them)
    for record in tab_records(path):
        if record.problem is not None:
            rows.bad(record.line, record.problem)
            continue
        line_no, fields = record.line, record.value
        if len(fields) not in (2, 3):
            csv_like = len(fields) == 1 and "," in fields[0]
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


NAME_THE_TEXT_COLUMN = "name the text column with --text_column NAME"


def _name_it(missing: str) -> str:
    """The fix, when the missing column is the text's."""
    return f"; {NAME_THE_TEXT_COLUMN}" if missing != "labels" else ""


def _csv_columns(path: Path, line: int, header: list[str], labels: Sequence[str], text: str) -> dict[str, Any]:
    """Where the text, labels (a labels column or one 0/1 column per emotion), id and unclear flag are."""
    names = [h.strip().lower() for h in header]
    found = ", ".join(_show(h) for h in header)
    hint = " (the header has tabs: a TSV file? rename it to .tsv)" if any("\t" in h for h in header) else ""
    if text.strip().lower() not in names:
        problem = f"no {text!r} column in the header; found columns: {found}{hint}{_name_it(text)}"
        raise DataError(path, line, problem)
    where = {
        "text": names.index(text.strip().lower()),
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


def _read_csv(path: Path, rows: _Rows, labels: Sequence[str]) -> None:
    table = Table(path, ",")
    if table.header_line is None:
        return
    where = _csv_columns(path, table.header_line, table.columns, labels, rows.text_field)
    for record in table.rows():
        if record.problem is not None:
            rows.bad(record.line, record.problem)
        else:
            _csv_row(record.line, record.value, where, rows)


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


def _read_jsonl(path: Path, rows: _Rows) -> None:
    for record in json_records(path):
        if record.problem is not None:
            rows.bad(record.line, record.problem)
        else:
            rows.add_record(record.line, record.value)


def _read_parquet(path: Path, rows: _Rows) -> None:
    names, text = parquet_columns(path), rows.text_field
    label_key = next((k for k in LABEL_FIELDS if k in names), None)
    if text not in names or label_key is None:
        missing = text if text not in names else "labels"
        found = ", ".join(names) or "none"
        raise DataError(path, None, f"no {missing!r} column; found columns: {found}{_name_it(missing)}")
    wanted = [text, label_key] + ([ID_FIELD] if ID_FIELD in names else [])
    for record in parquet_records(path, wanted):
        if record.problem is not None:
            rows.bad(record.line, record.problem)
        else:
            rows.add(record.line, *record.value.values())


def read_examples(
    path: str | Path,
    fmt: str | None = None,
    *,
    skip_bad_rows: bool = False,
    labels: Sequence[str] = ORIGINAL_LABELS,
    min_raters: int = MIN_RATERS,
    text_column: str = TEXT_FIELD,
) -> ReadResult:
    """Examples of a file in any supported layout, with ids into `labels` (the original 28 by default).
    `min_raters`: in the raw one-row-per-rater layout, how many raters must choose a label to keep it.
    `text_column`: the CSV/Parquet column or JSONL field that holds the text."""
    if isinstance(min_raters, bool) or not isinstance(min_raters, int) or min_raters < 1:
        raise UserError(f"min_raters must be a positive integer, found {min_raters!r}")
    if not isinstance(text_column, str) or not text_column.strip():
        raise UserError(f"text_column must name a column, found {text_column!r}")
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt == "tsv" and text_column != TEXT_FIELD:
        raise UserError(
            f"{path}: a labelled .tsv has GoEmotions' layout without a header (text, label ids, id), so it has no "
            f"column {text_column!r}; use a CSV, JSONL or Parquet file to name the text column"
        )
    head = check_readable(path, fmt)
    if not head.strip() and path.stat().st_size <= len(head):
        raise DataError(path, None, "empty file")
    rows = _Rows(path, labels, skip_bad_rows, min_raters, text_column)
    {"parquet": _read_parquet, "tsv": _read_tsv, "jsonl": _read_jsonl}.get(fmt, lambda p, r: _read_csv(p, r, labels))(
        path, rows
    )
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

    .txt: one text a line (blank lines skipped); .csv/.tsv: the `text_column` of the header (default `text`),
    or with `header=False` a file without one, whose columns are column_1, column_2, ... (the text: column_1
    unless `text_column` names another); .jsonl: one object a line, its `text_column` field (default `text`);
    .parquet: the `text_column` column (default `text`). A file without the text column is refused at once,
    listing the columns it has. Every problem is a `DataError` "path:line: problem"; with `skip_bad_rows` bad
    rows are counted in `skipped` (the first messages in `skipped_messages`) instead. `rows()` may be iterated
    again and gives the same rows.
    """

    def __init__(
        self, path: str | Path, text_column: str | None = None, skip_bad_rows: bool = False, header: bool = True
    ):
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
        if not header and self.format not in (".csv", ".tsv"):
            raise UserError(f"{self.path}: --no_header is for CSV and TSV files; a {self.format} file has no header")
        self.header = header
        self.text_column = text_column or (TEXT_FIELD if header else "column_1")
        self.skip = skip_bad_rows
        self.skipped, self.skipped_messages = 0, []
        self.table: Table | None = None
        self.header_line: int | None = None  # where the column names are (CSV/TSV header), for errors
        columns = None
        if self.format == ".parquet":
            columns = parquet_columns(self.path)
        else:
            check_readable(self.path, self.format[1:])
        if self.format in (".csv", ".tsv"):
            self.table = Table(self.path, "," if self.format == ".csv" else "\t", header)
            self.header_line, columns = self.table.header_line, self.table.columns
        if columns and self.text_column not in columns:
            raise DataError(self.path, self.header_line, self._no_column(columns, "column"))

    def _no_column(self, found: Sequence[str], kind: str) -> str:
        """The missing text column's problem: the columns there are, and the flags that read another."""
        how = NAME_THE_TEXT_COLUMN
        if self.table is not None and self.header:
            how += ", or pass --no_header if the first row is already a text"
        shown = ", ".join(_show(name) for name in found) or "none"
        return f"no {kind} {self.text_column!r}; found {kind}s: {shown}; {how}"

    def _bad(self, line: int | None, problem: str) -> None:
        error = DataError(self.path, line, problem)
        if not self.skip:
            raise error
        self.skipped += 1
        if len(self.skipped_messages) < SKIPPED_SHOWN:
            self.skipped_messages.append(str(error))

    def rows(self) -> Iterator[TextRow]:
        self.skipped, self.skipped_messages = 0, []
        found = False
        for record in self._records():
            if record.problem is not None:
                self._bad(record.line, record.problem)
                continue
            row = self._row(record)
            if row is None:
                continue
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

    def _records(self) -> Iterator[Record]:
        if self.table is not None:
            return self.table.rows()
        if self.format == ".txt":
            return text_records(self.path)
        if self.format == ".jsonl":
            return json_records(self.path)
        return parquet_records(self.path, parquet_columns(self.path))

    def _row(self, record: Record) -> TextRow | None:
        """The record as a text and its other columns, or None after reporting why it has no text."""
        if self.format == ".txt":
            return TextRow(record.line, record.value[0], {})
        values = record.value if self.table is None else dict(zip(self.table.columns, record.value, strict=True))
        column = self.text_column
        if not isinstance(values, dict):
            self._bad(record.line, f"expected a JSON object with a string field {column!r}, found {_kind(values)}")
        elif column not in values:
            self._bad(record.line, self._no_column(list(values), "field"))
        elif not isinstance(values[column], str):
            what = "field" if self.format == ".jsonl" else "column"
            self._bad(record.line, f"{what} {column!r} must hold a string, found {_kind(values[column])}")
        else:
            text = values.pop(column)
            return TextRow(record.line, text, values)
        return None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
