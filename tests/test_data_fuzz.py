"""Property tests: any bytes in any format give examples or a UserError/DataError, never another error."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoscope.core.errors import DataError, UserError
from emoscope.data import MAX_TEXT_CHARS, ORIGINAL_LABELS, Example, read_examples
from emoscope.data.formats import TextReader

FUZZ = settings(max_examples=150, deadline=None)
# Pieces that make bytes look like each layout, so the fuzzer reaches past the first check.
TOKENS = [
    b"text",
    b"labels",
    b"id",
    b"example_very_unclear",
    b"joy",
    b"neutral",
    b"TRUE",
    b"0",
    b"1",
    b"27",
    b"28",
    b"-1",
    b"007",
    b"\t",
    b",",
    b";",
    b"|",
    b" ",
    b"\n",
    b"\r\n",
    b"\r",
    b'"',
    b"'",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b'"text"',
    b'"labels"',
    b"null",
    b"true",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\x00",
    b"PAR1",
    "é😀".encode(),
    b"x" * 50,
]
texty = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)
anything = st.one_of(st.binary(max_size=300), texty)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _check(path, fmt, skip):
    """Read `path`: the examples must be well-formed, and the only exception allowed is a UserError."""
    try:
        result = read_examples(path, fmt, skip_bad_rows=skip)
    except UserError as e:  # DataError is one
        assert str(e) and "\n" not in str(e)
        return
    assert result
    for example in result:
        assert isinstance(example, Example) and example.text.strip() and len(example.text) <= MAX_TEXT_CHARS
        assert example.labels == tuple(sorted(set(example.labels)))
        assert all(0 <= i < len(ORIGINAL_LABELS) for i in example.labels) and example.labels


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
@FUZZ
@given(data=anything, skip=st.booleans())
def test_text_readers_never_crash(folder, fmt, data, skip):
    path = folder / f"any.{fmt}"
    path.write_bytes(data)
    _check(path, fmt, skip)


@FUZZ
@given(data=anything, skip=st.booleans())
def test_json_arrays_never_crash(folder, data, skip):
    path = folder / "any.json"
    path.write_bytes(b"[" + data)
    _check(path, None, skip)


def _parquet_bytes():
    buffer = io.BytesIO()
    table = pa.table({"text": ["hello", "", "bye"], "labels": [[1, 2], [3], [40]], "id": ["a", "b", "c"]})
    pq.write_table(table, buffer)
    return buffer.getvalue()


PARQUET = _parquet_bytes()


@FUZZ
@given(data=st.data(), skip=st.booleans())
def test_parquet_reader_never_crashes(folder, data, skip):
    """Damaged real Parquet files (bytes changed, cut short) and arbitrary bytes behind the magic."""
    raw = bytearray(PARQUET)
    kind = data.draw(st.sampled_from(["mutate", "truncate", "arbitrary"]))
    if kind == "mutate":
        for index, value in data.draw(
            st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=8)
        ):
            raw[index] = value
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw = b"PAR1" + data.draw(st.binary(max_size=300)) + data.draw(st.sampled_from([b"", b"PAR1"]))
    path = folder / "any.parquet"
    path.write_bytes(bytes(raw))
    _check(path, None, skip)


# ---------------------------------------------------------------- strict reading: valid files round-trip, damage
# is found on its line, the same in the reader of labelled data and the reader of texts to score

plain = st.text("abcdefghij XYZ.!?é😀", min_size=1, max_size=30).filter(lambda t: t.strip())
any_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), min_size=1).filter(
    lambda t: t.strip() and t == t.strip("\r\n")
)


def _write_csv(path, texts, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerows([("text", "labels"), *((t, "1") for t in texts)])


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@FUZZ
@given(texts=st.lists(any_text, min_size=1, max_size=8))
def test_any_texts_round_trip_through_the_reader_of_texts(folder, suffix, texts):
    path = folder / f"texts{suffix}"
    _write_csv(path, texts, "," if suffix == ".csv" else "\t")
    rows = list(TextReader(path).rows())
    assert [(r.text, r.columns) for r in rows] == [(t, {"labels": "1"}) for t in texts]
    if suffix == ".csv":
        assert [e.text for e in read_examples(path)] == texts


DAMAGES = {
    "quote": (lambda line: '"' + line, "quote opened here is never closed"),
    "nul": (lambda line: "\x00" + line, "a NUL byte at byte 1 of the line (is it a binary file?)"),
    "utf8": (lambda line: "\udcff" + line, "invalid UTF-8: byte 0xff at byte 1 of the line"),
    "ragged": (lambda line: line + ",more", "expected 2 columns as in the header (line 1), found 3"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@FUZZ
@given(texts=st.lists(plain, min_size=1, max_size=12), data=st.data())
def test_damage_is_reported_on_its_line_by_both_readers(folder, damage, texts, data):
    """One row damaged (a quote left open, a NUL byte, a byte that is not UTF-8, an extra field): both readers
    stop on that physical line with the same problem, and with skip_bad_rows read every other row."""
    row = data.draw(st.integers(0, len(texts) - 1))
    change, problem = DAMAGES[damage]
    lines = ["text,labels", *(f"{t},1" for t in texts)]
    lines[row + 1] = change(lines[row + 1])
    path = folder / "damaged.csv"
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape"))
    expected = f"{path}:{row + 2}: {problem}"
    with pytest.raises(DataError) as labelled:
        read_examples(path)
    with pytest.raises(DataError) as to_score:
        list(TextReader(path).rows())
    assert str(labelled.value) == str(to_score.value) == expected
    others = texts[:row] if damage == "quote" else texts[:row] + texts[row + 1 :]
    reader = TextReader(path, skip_bad_rows=True)
    if others:
        assert [r.text for r in reader.rows()] == others and reader.skipped == 1
        assert [e.text for e in read_examples(path, skip_bad_rows=True)] == others
