"""Readers: every layout round-trips, every bad row is a DataError naming file and physical line."""

from __future__ import annotations

import csv
import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoscope.core.errors import DataError, UserError
from emoscope.data import (
    MAX_TEXT_CHARS,
    ORIGINAL_LABELS,
    Example,
    ReadResult,
    apply_taxonomy,
    load_examples,
    load_taxonomy,
    read_examples,
)

EXAMPLES = [
    Example("I love this, thank you!", (15, 18), "c1"),
    Example('He said "wow"; it was great | really', (0,), "c2"),
    Example("Ça m'énerve 😠 vraiment", (2, 3, 10), "c3"),
    Example("  leading and trailing spaces stay  ", (27,), "c4"),
    Example("[1, 2] is not a label here", (6, 7), "c5"),
]
MULTILINE = Example("first line\nsecond, line\r\nthird", (17,), "m1")


def write_tsv(path, examples):
    path.write_text("".join(f"{e.text}\t{','.join(map(str, e.labels))}\t{e.id}\n" for e in examples), encoding="utf-8")


def write_csv(path, examples, labels=lambda e: ",".join(map(str, e.labels)), column="labels"):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", column])
        writer.writerows([e.id, e.text, labels(e)] for e in examples)


def write_one_hot(path, examples, unclear=()):
    """The raw goemotions_1.csv layout: metadata columns, then one 0/1 column per emotion; one row per rating
    (`examples` lists ratings: rows with the same id are one comment's raters)."""
    meta = [
        "text",
        "id",
        "author",
        "subreddit",
        "link_id",
        "parent_id",
        "created_utc",
        "rater_id",
        "example_very_unclear",
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(meta + list(ORIGINAL_LABELS))
        for i, e in enumerate(examples):
            flags = ["1" if j in e.labels else "0" for j in range(len(ORIGINAL_LABELS))]
            writer.writerow(
                [
                    e.text,
                    e.id,
                    "someone",
                    "r/x",
                    "t3_a",
                    "t1_b",
                    "1548381039.0",
                    str(37 + i),
                    "TRUE" if i in unclear else "FALSE",
                    *flags,
                ]
            )


def write_jsonl(path, examples):
    path.write_text(
        "".join(json.dumps({"text": e.text, "labels": list(e.labels), "id": e.id}) + "\n" for e in examples),
        encoding="utf-8",
    )


def write_json_array(path, examples):
    path.write_text(
        json.dumps([{"text": e.text, "labels": list(e.labels), "id": e.id} for e in examples], indent=2),
        encoding="utf-8",
    )


def write_parquet(path, examples):
    table = pa.table(
        {
            "text": [e.text for e in examples],
            "labels": [list(e.labels) for e in examples],
            "id": [e.id for e in examples],
        }
    )
    pq.write_table(table, path)


def write_bytes(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def error_of(path, **kwargs):
    with pytest.raises(DataError) as e:
        read_examples(path, **kwargs)
    return str(e.value)


WRITERS = {
    "data.tsv": write_tsv,
    "ids.csv": write_csv,
    "names.csv": lambda p, ex: write_csv(
        p, ex, lambda e: ";".join(ORIGINAL_LABELS[i] for i in e.labels), column="emotions"
    ),
    "pylist.csv": lambda p, ex: write_csv(p, ex, lambda e: str(list(e.labels)), column="label"),
    "quoted_names.csv": lambda p, ex: write_csv(p, ex, lambda e: str([ORIGINAL_LABELS[i] for i in e.labels])),
    "raw.csv": lambda p, ex: write_one_hot(p, [e for e in ex for _ in range(2)]),  # two raters agree on each
    "data.jsonl": write_jsonl,
    "array.json": write_json_array,
    "data.parquet": write_parquet,
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_layout_round_trips(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](path, EXAMPLES)
    result = read_examples(path)
    assert isinstance(result, ReadResult) and result == EXAMPLES and result.skipped == []
    assert result.summary() == ""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for all generated files (hypothesis reruns a test many times in one function scope)."""
    return tmp_path_factory.mktemp("round_trip")


texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), min_size=1, max_size=80
).filter(lambda t: not t.isspace())
examples = st.lists(
    st.builds(
        Example,
        text=texts,
        labels=st.sets(st.integers(0, len(ORIGINAL_LABELS) - 1), min_size=1).map(lambda s: tuple(sorted(s))),
        id=st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=10),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("name", list(WRITERS))
@settings(max_examples=60, deadline=None)  # nine layouts: 540 files in all
@given(rows=examples)
def test_any_examples_round_trip(folder, name, rows):
    if name.endswith(".tsv"):  # the official layout cannot hold tabs or newlines in a text
        rows = [Example(e.text.replace("\t", " ").replace("\n", " ").replace("\r", " "), e.labels, e.id) for e in rows]
        rows = [e for e in rows if not e.text.isspace()] or [Example("x", (1,), "x")]
    if name == "raw.csv":  # its rows that share a comment id are that comment's raters
        rows = [e for i, e in enumerate(rows) if all(r.id != e.id for r in rows[:i])]
    path = folder / name
    WRITERS[name](path, rows)
    assert read_examples(path) == rows


@pytest.mark.parametrize("name", [n for n in WRITERS if not n.endswith(".tsv")])
def test_texts_with_newlines_round_trip_where_the_layout_allows(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](path, [*EXAMPLES, MULTILINE])
    assert read_examples(path) == [*EXAMPLES, MULTILINE]


def test_explicit_format_overrides_the_extension(tmp_path):
    path = tmp_path / "data.txt"
    write_tsv(path, EXAMPLES)
    assert read_examples(path, fmt="tsv") == EXAMPLES
    with pytest.raises(UserError) as e:
        read_examples(path)
    assert str(e.value) == (
        f"{path}: cannot tell the format from the extension '.txt'; use one of .tsv, "
        ".csv, .jsonl, .json, .parquet or pass the format explicitly "
        "(tsv, csv, jsonl, parquet)"
    )
    with pytest.raises(UserError, match=r"unknown format 'xlsx'; choose one of: tsv, csv, jsonl, parquet"):
        read_examples(path, fmt="xlsx")


def test_missing_ids_default_to_file_and_line(tmp_path):
    path = write_bytes(tmp_path, "x.tsv", "first\t1\n\nthird\t2\t\n")
    assert read_examples(path) == [Example("first", (1,), "x.tsv:1"), Example("third", (2,), "x.tsv:3")]
    path = write_bytes(tmp_path, "x.parquet", b"")
    pq.write_table(pa.table({"text": ["a", "b"], "labels": [[1], [2, 3]]}), path)
    assert read_examples(path) == [Example("a", (1,), "x.parquet:1"), Example("b", (2, 3), "x.parquet:2")]


def test_crlf_bom_and_label_spellings(tmp_path):
    path = write_bytes(tmp_path, "x.csv", '\ufeffText,Labels\r\nhello,"joy, Love"\r\nbye,007|+3\r\n')
    assert read_examples(path) == [Example("hello", (17, 18), "x.csv:2"), Example("bye", (3, 7), "x.csv:3")]


def test_load_examples_maps_to_the_taxonomy(tmp_path):
    path = tmp_path / "data.jsonl"
    write_jsonl(path, EXAMPLES)
    ekman = load_taxonomy("ekman")
    result = load_examples(path, ekman)
    assert [e.labels for e in result] == [(3,), (3,), (0,), (6,), (5,)]
    assert result == apply_taxonomy(EXAMPLES, ekman)
    assert [e.labels for e in load_examples(path, "sentiment")] == [(0,), (0,), (1,), (3,), (2,)]


# --- bad rows: each case with its exact message ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "a text without tabs\n",
            "expected 3 tab-separated columns (text, label ids, comment id; the id may be left out), found 1",
        ),
        (
            "a\tb\tc\td\n",
            "expected 3 tab-separated columns (text, label ids, comment id; the id may be left out), found 4",
        ),
        ("hi\t28\tx\n", "label id 28 out of range 0..27"),
        ("hi\t3,-1\tx\n", "label id -1 out of range 0..27"),
        ("hi\tjoyful\tx\n", "unknown label name 'joyful'"),
        ("\t3\tx\n", "empty or whitespace-only text"),
        (" \u00a0 \t3\tx\n", "empty or whitespace-only text"),
        ("hi\t\tx\n", "no labels"),
        ("hi\t , \tx\n", "no labels"),
        (
            "x" * (MAX_TEXT_CHARS + 1) + "\t3\tx\n",
            f"text is {MAX_TEXT_CHARS + 1} characters, longer than the maximum {MAX_TEXT_CHARS}",
        ),
    ],
)
def test_bad_tsv_rows(tmp_path, content, problem):
    path = write_bytes(tmp_path, "d.tsv", "fine\t1\tok\n" + content)
    assert error_of(path) == f"{path}:2: {problem}"


def test_a_tsv_row_with_other_columns_than_the_first_is_an_error(tmp_path):
    """Three columns, then a row with two (a stray tab or a lost id): the first data row fixes the layout."""
    path = write_bytes(tmp_path, "d.tsv", "\nfine\t1\tok\nalso fine\t2\tid2\nlost its id\t3\n")
    assert error_of(path) == (
        f"{path}:4: 2 tab-separated columns, but line 2 has 3: every row needs the same columns "
        "(text, label ids, and the comment id if any row has one)"
    )
    without_ids = write_bytes(tmp_path, "e.tsv", "fine\t1\nalso fine\t2\n")
    assert [e.id for e in read_examples(without_ids)] == ["e.tsv:1", "e.tsv:2"]


def test_text_at_the_maximum_is_fine(tmp_path):
    path = write_bytes(tmp_path, "d.tsv", "x" * MAX_TEXT_CHARS + "\t3\n")
    assert len(read_examples(path)[0].text) == MAX_TEXT_CHARS


def test_invalid_utf8_names_the_line_of_the_bad_bytes(tmp_path):
    path = write_bytes(tmp_path, "d.tsv", b"ok\t1\ta\nalso ok\t2\tb\nbad \xff here\t1\tc\n")
    assert error_of(path) == f"{path}:3: invalid UTF-8: byte 0xff at byte 5 of the line"
    # inside a quoted multi-line CSV field, the line is the one holding the bytes, not where the row starts
    path = write_bytes(tmp_path, "d.csv", b'text,labels\n"two\nlines \xc3",1\n')
    assert error_of(path) == f"{path}:3: invalid UTF-8: byte 0xc3 at byte 7 of the line"


def test_empty_and_missing_files(tmp_path):
    for name in ("e.tsv", "e.csv", "e.jsonl", "e.parquet"):
        path = write_bytes(tmp_path, name, "")
        assert error_of(path) == f"{path}: empty file"
    path = write_bytes(tmp_path, "blank.tsv", "\n  \n\n")
    assert error_of(path) == f"{path}: empty file"
    path = write_bytes(tmp_path, "header_only.csv", "text,labels\n")
    assert error_of(path) == f"{path}: no examples: the file has no data rows"
    with pytest.raises(UserError) as e:
        read_examples(tmp_path / "nope.tsv")
    assert str(e.value) == f"{tmp_path / 'nope.tsv'}: no such file"
    with pytest.raises(UserError, match="is a directory, not a data file"):
        read_examples(tmp_path, fmt="tsv")


def test_csv_header_problems_name_the_columns_found(tmp_path):
    path = write_bytes(tmp_path, "d.csv", "body,labels\nhi,1\n")
    assert error_of(path) == (
        f"{path}:1: no 'text' column in the header; found columns: 'body', 'labels'; name the text column with "
        "--text_column NAME"
    )
    path = write_bytes(tmp_path, "d.csv", "\ntext,tags\nhi,1\n")
    assert error_of(path) == (
        f"{path}:2: no labels: expected a labels column ('labels', 'label' or "
        "'emotions'); found columns: 'text', 'tags'"
    )
    path = write_bytes(tmp_path, "d.csv", "text,joy,love\nhi,1,0\n")
    message = error_of(path)
    assert message.startswith(
        f"{path}:1: no labels: expected a labels column ('labels', 'label' or "
        "'emotions') or a 0/1 column for every emotion (missing: admiration, "
        "amusement, anger,"
    )
    assert message.endswith("neutral); found columns: 'text', 'joy', 'love'")


def test_bad_csv_rows(tmp_path):
    path = write_bytes(tmp_path, "d.csv", 'text,labels,id\n"multi\nline",1,a\nhi,1\n')
    assert error_of(path) == f"{path}:4: expected 3 columns as in the header (line 1), found 2"
    path = write_bytes(tmp_path, "d.csv", 'text,labels\nhi,1\n"never closed,1\nmore,2\n')
    assert error_of(path) == f"{path}:3: quote opened here is never closed"
    path = write_bytes(tmp_path, "d.csv", 'text,labels\n"quoted"junk,1\n')
    assert error_of(path) == f"{path}:2: malformed CSV: ',' expected after '\"'"
    path = write_bytes(tmp_path, "d.csv", 'text,labels\nhi,"[1, 2, 99]"\n')
    assert error_of(path) == f"{path}:2: label id 99 out of range 0..27"
    path = write_bytes(tmp_path, "d.csv", 'text,labels\nhi,"joy, glee"\n')
    assert error_of(path) == f"{path}:2: unknown label name 'glee'"


def test_bad_one_hot_rows(tmp_path):
    path = tmp_path / "raw.csv"
    write_one_hot(path, [EXAMPLES[0], Example("", (1,), "z")])
    assert error_of(path) == f"{path}:3: empty or whitespace-only text"
    write_one_hot(path, [EXAMPLES[0], EXAMPLES[0]])
    path.write_bytes(path.read_bytes().replace(b",0\r\n", b",x\r\n", 1))
    assert error_of(path) == f"{path}:2: column 'neutral' must be 0 or 1, found 'x'"
    write_one_hot(path, [EXAMPLES[0], Example("another text", (1,), EXAMPLES[0].id)])
    assert error_of(path) == f"{path}:3: comment 'c1' has another text on line 2"
    write_one_hot(path, [Example(EXAMPLES[0].text, (1,), " ")])
    assert error_of(path) == f"{path}:2: no comment id: the rows of one comment (one per rater_id) are merged by id"
    path.write_text("text,rater_id," + ",".join(ORIGINAL_LABELS) + "\nhi,3," + ",".join("0" * 28) + "\n")
    assert error_of(path) == f"{path}:1: one row per rater ('rater_id') but no 'id' column to merge a comment's rows by"


def test_raw_rater_rows_merge_by_comment_as_the_paper_did(tmp_path):
    """A label stays when at least `min_raters` raters chose it; unclear ratings and comments without agreement
    are dropped and counted, never an error."""
    a, b, c = "c1", "c2", "c3"
    ratings = [
        Example("first", (15, 18), a),
        Example("second", (0,), b),
        Example("first", (15,), a),
        Example("third", (3,), c),
        Example("first", (15, 2), a),
        Example("second", (), b),  # marked unclear below
        Example("second", (4,), b),
        Example("third", (5,), c),  # the raters of c agree on nothing
    ]
    path = tmp_path / "goemotions_1.csv"
    write_one_hot(path, ratings, unclear={5})
    result = read_examples(path)
    assert list(result) == [Example("first", (15,), a)]
    assert result.dropped == {
        "ratings marked example_very_unclear": 1,
        "comments with no label chosen by at least 2 raters": 2,
    }
    assert result.summary() == (
        "dropped 1 ratings marked example_very_unclear; dropped 2 comments with no label chosen by at least 2 raters"
    )
    assert list(read_examples(path, min_raters=1)) == [
        Example("first", (2, 15, 18), a),
        Example("second", (0, 4), b),
        Example("third", (3, 5), c),
    ]
    assert list(read_examples(path, min_raters=3)) == [Example("first", (15,), a)]
    with pytest.raises(UserError, match="min_raters must be a positive integer, found 0"):
        read_examples(path, min_raters=0)
    write_one_hot(path, ratings[3:4] + ratings[7:])
    assert error_of(path) == f"{path}: no examples: dropped 1 comments with no label chosen by at least 2 raters"


def test_a_carved_dev_set_never_shares_a_comment_with_train():
    from emoscope.data.splits import carve_dev

    examples = [Example(f"text {i}", (1,), f"c{i % 7}") for i in range(60)]  # each comment id on several rows
    for seed in range(5):
        dev, train = carve_dev(examples, 0.3, seed)
        assert {e.id for e in dev}.isdisjoint(e.id for e in train)
        assert len(dev) + len(train) == len(examples) and len({e.id for e in dev}) == 2  # round(7 * 0.3)


def test_bad_json_rows(tmp_path):
    cases = [
        ('{"text": "hi", "labels": [1]', "invalid JSON: Expecting ',' delimiter (column 29)"),
        (
            '{"body": "hi", "labels": [1]}',
            "missing field 'text' (fields found: body, labels); name the text column with --text_column NAME",
        ),
        ('{"text": "hi"}', "missing field 'labels' (fields found: text)"),
        ('["hi", [1]]', "expected a JSON object with 'text' and 'labels', found list"),
        ('{"text": 5, "labels": [1]}', "text must be a string, found int"),
        ('{"text": "hi", "labels": [1, 30]}', "label id 30 out of range 0..27"),
        ('{"text": "hi", "labels": [true]}', "label True is neither a label id nor a name"),
        ('{"text": "hi", "labels": {"a": 1}}', "labels must be label ids or names, found dict"),
        ('{"text": "hi", "labels": []}', "no labels"),
    ]
    for line, problem in cases:
        path = write_bytes(tmp_path, "d.jsonl", '{"text": "fine", "labels": ["joy"]}\n\n' + line + "\n")
        assert error_of(path) == f"{path}:3: {problem}"


def test_json_array_rows_are_numbered_by_their_first_line(tmp_path):
    path = write_bytes(
        tmp_path, "d.json", '[\n  {"text": "a", "labels": [1]},\n  {"text": "b",\n   "labels": [99]}\n]\n'
    )
    assert error_of(path) == f"{path}:3: label id 99 out of range 0..27"
    result = read_examples(path, skip_bad_rows=True)
    assert result == [Example("a", (1,), "d.json:2")] and len(result.skipped) == 1
    path = write_bytes(tmp_path, "d.json", '[{"text": "a", "labels": [1]}\n {"text": "b"}]')
    assert error_of(path) == f"{path}:2: invalid JSON: expected ',' or ']' after a record"
    path = write_bytes(tmp_path, "d.json", '[{"text": "a", "labels": [1]}]\n\n]')
    assert error_of(path) == f"{path}:3: invalid JSON: extra data after the closing ']'"


def test_bad_parquet_rows_are_numbered_by_row(tmp_path):
    path = tmp_path / "d.parquet"
    table = pa.table({"text": ["a", " ", "c"], "labels": [[1], [2], [40]], "id": ["x", "y", "z"]})
    pq.write_table(table, path)
    assert error_of(path) == f"{path}:2: empty or whitespace-only text"
    result = read_examples(path, skip_bad_rows=True)
    assert result == [Example("a", (1,), "x")]
    assert result.skipped == [f"{path}:2: empty or whitespace-only text", f"{path}:3: label id 40 out of range 0..27"]
    not_utf8 = pa.array([b"fine", b"bad \xff"], pa.binary()).view(pa.string())  # written without a check
    pq.write_table(pa.table({"text": not_utf8, "labels": [[1], [2]]}), path)
    assert error_of(path) == f"{path}:2: invalid UTF-8 in column 'text'"
    pq.write_table(pa.table({"sentence": ["a"], "labels": [[1]]}), path)
    assert error_of(path) == (
        f"{path}: no 'text' column; found columns: sentence, labels; name the text column with --text_column NAME"
    )


# --- content that does not match its extension -----------------------------------------------------------


def test_content_that_does_not_match_the_extension(tmp_path):
    parquet = tmp_path / "real.parquet"
    write_parquet(parquet, EXAMPLES)
    fake_csv = write_bytes(tmp_path, "fake.csv", parquet.read_bytes())
    assert error_of(fake_csv) == (
        f"{fake_csv}: this is a Parquet file, not CSV: rename it to .parquet or pass the format 'parquet'"
    )
    assert read_examples(fake_csv, fmt="parquet") == EXAMPLES
    csv_as_tsv = write_bytes(tmp_path, "fake.tsv", "text,labels\nhi,1\n")
    assert error_of(csv_as_tsv) == (
        f"{csv_as_tsv}:1: expected 3 tab-separated columns (text, label ids, "
        "comment id; the id may be left out), found 1; is it a CSV? rename it to "
        ".csv or pass the format 'csv'"
    )
    tsv_as_csv = write_bytes(tmp_path, "fake2.csv", "text\tlabels\nhi\t1\n")
    assert error_of(tsv_as_csv) == (
        f"{tsv_as_csv}:1: no 'text' column in the header; found columns: "
        "'text\\tlabels' (the header has tabs: a TSV file? rename it to .tsv); name the text column with "
        "--text_column NAME"
    )
    text_as_parquet = write_bytes(tmp_path, "fake.parquet", "text,labels\nhi,1\n")
    assert error_of(text_as_parquet) == (
        f"{text_as_parquet}: not a Parquet file (no PAR1 magic bytes); if "
        "it is text, name it .csv, .tsv or .jsonl or pass that format"
    )
    binary = write_bytes(tmp_path, "bin.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert error_of(binary) == f"{binary}:1: invalid UTF-8: byte 0x89 at byte 1 of the line"
    nul = write_bytes(tmp_path, "nul.tsv", b"fine\t1\nbad\x00\t2\n")
    assert error_of(nul) == f"{nul}:2: a NUL byte at byte 4 of the line (is it a binary file?)"
    assert read_examples(nul, skip_bad_rows=True) == [Example("fine", (1,), "nul.tsv:1")]
    utf16 = write_bytes(tmp_path, "u16.csv", "text,labels\nhi,1\n".encode("utf-16"))
    assert error_of(utf16) == f"{utf16}: the file is UTF-16 encoded; save it as UTF-8"
    broken = write_bytes(tmp_path, "broken.parquet", parquet.read_bytes()[:-30])
    assert error_of(broken).startswith(f"{broken}: not a readable Parquet file: ")


# --- skipping ---------------------------------------------------------------------------------------------


def test_skip_bad_rows_counts_and_reports_every_skipped_row(tmp_path, caplog):
    path = write_bytes(
        tmp_path, "d.tsv", b"good\t1\ta\n\t2\tb\nalso good\t3\tc\nbad\t99\td\n\xfe\t1\te\nfine\tjoy\tf\n"
    )
    assert error_of(path) == f"{path}:2: empty or whitespace-only text"
    with caplog.at_level(logging.WARNING, logger="emoscope.data"):
        result = read_examples(path, skip_bad_rows=True)
    assert [e.id for e in result] == ["a", "c", "f"]
    assert result.skipped == [
        f"{path}:2: empty or whitespace-only text",
        f"{path}:4: label id 99 out of range 0..27",
        f"{path}:5: invalid UTF-8: byte 0xfe at byte 1 of the line",
    ]
    summary = f"skipped 3 bad rows (first: {path}:2: empty or whitespace-only text)"
    assert result.summary() == summary
    assert caplog.messages == [f"{path}: {summary}"]
    mapped = load_examples(path, "ekman", skip_bad_rows=True)
    assert len(mapped) == 3 and mapped.skipped == result.skipped


def test_csv_keeps_reading_after_a_malformed_row_when_skipping(tmp_path):
    path = write_bytes(tmp_path, "d.csv", 'text,labels\n"x"y,1\nok,2\n')
    result = read_examples(path, skip_bad_rows=True)
    assert result == [Example("ok", (2,), "d.csv:3")]
    assert result.skipped == [f"{path}:2: malformed CSV: ',' expected after '\"'"]


def test_a_file_of_only_bad_rows_is_an_error_even_when_skipping(tmp_path):
    path = write_bytes(tmp_path, "d.tsv", "a\t99\nb\t98\n")
    assert error_of(path, skip_bad_rows=True) == (
        f"{path}: no valid rows: all 2 rows are bad (first: {path}:1: label id 99 out of range 0..27)"
    )


def test_labelled_files_name_their_text_column(tmp_path):
    expected = [Example("so glad", (17,), "a"), Example("why me", (9, 25), "b")]
    csv_file = write_bytes(tmp_path, "c.csv", 'id,Body,labels\na,so glad,17\nb,why me,"9,25"\n')
    jsonl = write_bytes(
        tmp_path,
        "j.jsonl",
        '{"id": "a", "body": "so glad", "labels": [17]}\n{"id": "b", "body": "why me", "labels": [9, 25]}\n',
    )
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "body": ["so glad", "why me"], "labels": [[17], [9, 25]]}), parquet)
    for path in (csv_file, jsonl, parquet):
        assert read_examples(path, text_column="body") == expected
    assert error_of(csv_file).startswith(f"{csv_file}:1: no 'text' column in the header")
    assert error_of(jsonl) == (
        f"{jsonl}:1: missing field 'text' (fields found: id, body, labels); name the text column with "
        "--text_column NAME"
    )
    with pytest.raises(DataError, match=r"^.*p.parquet: no 'comment' column; found columns: id, body, labels; name"):
        read_examples(parquet, text_column="comment")
    tsv = write_bytes(tmp_path, "t.tsv", "so glad\t17\n")
    with pytest.raises(UserError, match=r"t.tsv: a labelled .tsv has GoEmotions' layout without a header"):
        read_examples(tsv, text_column="body")
    with pytest.raises(UserError, match="text_column must name a column, found ' '"):
        read_examples(csv_file, text_column=" ")


# --- the reader of texts to score: the same parsers, strict about its text column -------------------------------


def test_a_file_without_the_text_column_is_refused_with_its_columns(tmp_path):
    from emoscope.data.formats import TextReader

    how = "name the text column with --text_column NAME"
    csv_file = write_bytes(tmp_path, "c.csv", "id,body\n1,hello\n")
    with pytest.raises(DataError) as e:
        TextReader(csv_file)
    assert str(e.value) == (
        f"{csv_file}:1: no column 'text'; found columns: 'id', 'body'; {how}, or pass --no_header if the first "
        "row is already a text"
    )
    assert [(r.text, r.columns) for r in TextReader(csv_file, "body").rows()] == [("hello", {"id": "1"})]
    rows = TextReader(csv_file, header=False).rows()
    assert [(r.line, r.text, r.columns) for r in rows] == [
        (1, "id", {"column_2": "body"}),
        (2, "1", {"column_2": "hello"}),
    ]
    jsonl = write_bytes(tmp_path, "j.jsonl", '{"id": 1, "body": "hello"}\n')
    with pytest.raises(DataError, match=rf"^{jsonl}:1: no field 'text'; found fields: 'id', 'body'; {how}$"):
        list(TextReader(jsonl).rows())
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1], "body": ["hello"]}), parquet)
    with pytest.raises(DataError, match=rf"^{parquet}: no column 'text'; found columns: 'id', 'body'; {how}$"):
        TextReader(parquet)
    with pytest.raises(UserError, match="--no_header is for CSV and TSV files"):
        TextReader(jsonl, header=False)


def test_a_quoted_field_over_a_hundred_lines_is_reported_with_its_range(tmp_path):
    from emoscope.data.formats import TextReader

    body = "".join(f"line {i}\n" for i in range(150))
    path = write_bytes(tmp_path, "long.csv", f'text\nfirst\n"stray {body}"\nlast\n')
    problem = "a quoted field spans lines 3-153 (151 lines, more than 100): is the quote opened here a stray one?"
    with pytest.raises(DataError) as e:
        list(TextReader(path).rows())
    assert str(e.value) == f"{path}:3: {problem}"
    reader = TextReader(path, skip_bad_rows=True)
    assert [r.text for r in reader.rows()] == ["first", "last"] and reader.skipped == 1
    hundred = "".join(f"line {i}\n" for i in range(99))
    fine = write_bytes(tmp_path, "fine.csv", f'text\n"{hundred}"\n')
    assert len([r.text for r in TextReader(fine).rows()]) == 1


def test_a_quote_closed_lines_later_and_followed_by_junk_points_at_where_it_opened(tmp_path):
    path = write_bytes(tmp_path, "d.csv", 'text,labels\nfine,1\n"oops,1\nmore,2\n"ends"here,3\n')
    assert error_of(path) == (
        f"{path}:3: malformed CSV: the quote opened here closes on line 5, where ',' expected after '\"'"
    )


def test_runs_that_differ_only_in_seed_share_their_data(tmp_path):
    """The dev carved off a train_file and the max_train_examples subset follow split_seed, not seed: three
    seeds of one run train, choose and probe on the same texts."""
    from emoscope.core.config import resolve_config
    from emoscope.data.splits import load_data

    path = tmp_path / "train.csv"
    write_csv(path, [Example(f"text {i}", (i % 28,), f"c{i}") for i in range(60)])

    def split(**fields):
        data = load_data(resolve_config("cpu-default", {"train_file": str(path), "max_train_examples": 30, **fields}))
        return [e.id for e in data.dev], [e.id for e in data.train]

    first = split(seed=1)
    assert split(seed=2) == split(seed=3) == first
    assert split(seed=1, split_seed=5) != first
