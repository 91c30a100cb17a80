"""Scoring a corpus file: streamed in chunks, every input and output format, resumed after a kill, sharded and
merged, long texts in windows, and bad input (file:line, nothing written)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_TEXTS

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.data.batching import encode_texts
from emoscope.inference.corpus import ScoreOptions, merge_shards, score_file
from emoscope.inference.predictor import Predictor
from emoscope.models.inference import predict_probs

REPO = Path(__file__).resolve().parents[1]
TEXTS = [f"{text} ({i})" for i, text in enumerate(SAMPLE_TEXTS[:30])]
LONG = "I am so happy today, thank you all " * 375  # about 3,000 tokens


@pytest.fixture(scope="module")
def predictor(tiny_run) -> Predictor:
    return Predictor(tiny_run)


def write_inputs(folder: Path, texts: list[str]) -> dict[str, Path]:
    """The same texts (ids "r0", "r1", ...) as .txt, .csv, .tsv, .jsonl and .parquet."""
    ids = [f"r{i}" for i in range(len(texts))]
    paths = {fmt: folder / f"in.{fmt}" for fmt in ("txt", "csv", "tsv", "jsonl", "parquet")}
    paths["txt"].write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        with open(paths[fmt], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerows([("id", "text"), *zip(ids, texts, strict=True)])
    paths["jsonl"].write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)), encoding="utf-8"
    )
    pq.write_table(pa.table({"id": ids, "text": texts}), paths["parquet"])
    return paths


def read_output(path: Path, labels: list[str]) -> tuple[list[str], np.ndarray, list]:
    """Texts, probabilities [texts, labels] and ids (None where the input had none) of an output file."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        assert table.schema.field(labels[0]).type == pa.float32()
        assert table.schema.field("predicted").type == pa.list_(pa.string())
        ids = table.column("id").to_pylist() if "id" in table.column_names else [None] * table.num_rows
        return table.column("text").to_pylist(), np.stack([table.column(k).to_numpy() for k in labels], 1), ids
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        probs = np.array([[float(r[k]) for k in labels] for r in rows])
        return [r["text"] for r in rows], probs, [r.get("id") for r in rows]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    probs = np.array([[r["probs"][k] for k in labels] for r in records])
    return [r["text"] for r in records], probs, [r.get("id") for r in records]


def test_streaming_equals_in_memory_for_every_input_and_output_format(predictor, tmp_path):
    expected = predictor.predict_proba(TEXTS)
    for fmt, path in write_inputs(tmp_path, TEXTS).items():
        for suffix in (".jsonl", ".csv", ".parquet"):
            out = tmp_path / f"{fmt}-out{suffix}"
            score_file(predictor, path, out, ScoreOptions(chunk_size=7), progress=False)
            texts, probs, ids = read_output(out, predictor.labels)
            assert texts == TEXTS
            np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6 if suffix == ".csv" else 1e-7)
            assert ids == ([None] * len(TEXTS) if fmt == "txt" else [f"r{i}" for i in range(len(TEXTS))])
            assert not out.with_name(out.name + ".partial").exists()
    meta = json.loads((tmp_path / "csv-out.parquet.meta.json").read_text())
    assert (meta["rows"], meta["chunks"], meta["columns"]) == (30, 5, [["id", "string"]])


def test_the_cli_streams_a_parquet_file_with_its_own_text_column(tiny_run, predictor, tmp_path, capsys):
    pq.write_table(
        pa.table({"n": list(range(len(TEXTS))), "body": TEXTS, "x": [1.5] * len(TEXTS)}), tmp_path / "in.parquet"
    )
    out = tmp_path / "out.parquet"
    argv = ["predict", str(tiny_run), "--file", str(tmp_path / "in.parquet"), "--out", str(out)]
    assert (
        main([*argv, "--text_column", "body", "--keep_columns", "n", "--chunk_size", "8", "--progress", "false"]) == 0
    )
    assert capsys.readouterr().out == f"scored 30 texts -> {out}\n"
    table = pq.read_table(out)
    assert table.column_names == ["text", "predicted", *predictor.labels, "n"]
    assert table.column("n").to_pylist() == list(range(30)) and table.schema.field("n").type == pa.int64()
    np.testing.assert_allclose(read_output(out, predictor.labels)[1], predictor.predict_proba(TEXTS), atol=1e-7)


def test_the_scoring_flags_reach_the_scores_and_the_manifest(tiny_run, predictor, tmp_path, capsys, monkeypatch):
    """--device, --precision, --batch_size, --num_threads, --workers: the Python API's probabilities asked the
    same way; work left unfinished with one batch size is not continued with another."""
    import torch

    from emoscope.models import inference

    path = write_inputs(tmp_path, TEXTS)["jsonl"]
    argv = ["predict", str(tiny_run), "--file", str(path), "--progress", "false", "--device", "cpu"]
    flags = ["--precision", "fp32", "--batch_size", "4", "--num_threads", "1", "--workers", "2"]
    workers, each_batch = [], inference.each_batch
    monkeypatch.setattr(inference, "each_batch", lambda *a: workers.append(a[2]) or each_batch(*a))
    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--out", str(tmp_path / "out.jsonl"), *flags]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert workers and set(workers) == {2}
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert (meta["precision"], meta["device"], meta["options"]["batch_size"]) == ("fp32", "cpu", 4)
    expected = Predictor(tiny_run, precision="fp32", workers=1).predict_proba(TEXTS, batch_size=4)
    np.testing.assert_allclose(read_output(tmp_path / "out.jsonl", predictor.labels)[1], expected, rtol=0, atol=1e-6)

    other = tmp_path / "other.jsonl"
    assert main([*argv, "--out", str(other), "--chunk_size", "8", "--shard", "0/2", *flags]) == 0
    other.with_name(other.name + ".shard-0-of-2").rename(other.with_name(other.name + ".partial"))
    assert main([*argv, "--out", str(other), "--chunk_size", "8", "--batch_size", "8"]) == 2
    assert "(options.batch_size differs)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--workers", "0"], "argument --workers: must be a whole number from 1, got '0'"),
        (["--num_threads", "two"], "argument --num-threads/--num_threads: must be a whole number from 1, got 'two'"),
        (["--device", "gpu0"], "unknown device 'gpu0': give cpu, cuda or cuda:N"),
        (["--device", "cuda:99"], "device cuda:99: torch sees"),
    ],
)
def test_bad_scoring_flags_are_one_line_errors_and_write_nothing(tiny_run, tmp_path, capsys, flags, problem):
    path = write_inputs(tmp_path, TEXTS[:4])["txt"]
    out = tmp_path / "out.jsonl"
    argv = ["predict", str(tiny_run), "--file", str(path), "--out", str(out), *flags]
    try:  # a usage mistake exits in the parser, a bad value when the run is loaded
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and problem in err and err.count("\n") == 1
    assert not list(tmp_path.glob("out.jsonl*"))


def _run(*argv: str, **popen) -> subprocess.Popen:
    # One thread: on a busy machine two threads of a tiny model wait on each other far longer than they compute.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "emoscope", *argv], cwd=REPO, env=env, **popen)


def test_a_killed_run_resumes_to_the_same_bytes(tiny_run, tmp_path):
    texts = [f"{text} {i}" for i, text in enumerate(SAMPLE_TEXTS[:60])]  # one chunk each
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")

    def command(out: Path) -> list[str]:
        return ["predict", str(tiny_run), "--file", str(tmp_path / "in.jsonl"), "--out", str(out)] + [
            "--chunk_size",
            "1",
            "--progress",
            "false",
        ]

    assert _run(*command(tmp_path / "whole.jsonl")).wait(timeout=600) == 0
    out = tmp_path / "resumed.jsonl"
    partial = out.with_name(out.name + ".partial")
    process = _run(*command(out))
    deadline = time.monotonic() + 600
    while len(list(partial.glob("chunk-*"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(partial.glob("chunk-*")))
    assert not out.exists() and 3 <= done < len(texts), "the run was not killed part-way"
    resumed = _run(*command(out), stdout=subprocess.PIPE)
    assert resumed.communicate(timeout=600)[0].decode().splitlines()[0] == f"continued: {done} chunks were done before"
    assert resumed.returncode == 0
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert not partial.exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_two_shards_merged_equal_one_pass(predictor, tmp_path, suffix):
    path = write_inputs(tmp_path, TEXTS)["csv"]
    options = ScoreOptions(chunk_size=4)
    score_file(predictor, path, tmp_path / f"one{suffix}", options, progress=False)
    out = tmp_path / f"two{suffix}"
    shards = [out.with_name(f"{out.name}.shard-{i}-of-2") for i in range(2)]
    score_file(predictor, path, out, options, shard=(0, 2), progress=False)
    with pytest.raises(UserError, match=r"chunk 1 of 8 is missing: shard 1/2 has not finished"):
        merge_shards(out, shards[:1])
    score_file(predictor, path, out, options, shard=(1, 2), progress=False)
    assert main(["predict", "--merge", str(out), *map(str, shards)]) == 0
    assert out.read_bytes() == (tmp_path / f"one{suffix}").read_bytes()
    assert out.with_name(out.name + ".meta.json").read_bytes() == (tmp_path / f"one{suffix}.meta.json").read_bytes()
    assert not any(s.exists() for s in shards)


def test_under_torchrun_each_rank_scores_its_shard_and_rank_0_merges(tiny_run, predictor, tmp_path, monkeypatch):
    path = write_inputs(tmp_path, TEXTS)["jsonl"]
    score_file(predictor, path, tmp_path / "one.jsonl", ScoreOptions(chunk_size=4), progress=False)
    argv = ["predict", str(tiny_run), "--file", str(path), "--out", str(tmp_path / "two.jsonl"), "--chunk_size", "4"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):  # rank 0 merges once every shard has finished
        monkeypatch.setenv("RANK", rank)
        assert main([*argv, "--progress", "false"]) == 0
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


def test_long_texts_truncate_as_before_or_score_in_windows(predictor, tiny_run, tmp_path):
    texts = [LONG, *TEXTS[:5]]
    assert len(predictor.tokenizer(LONG)["input_ids"]) > 3000
    today = predict_probs(
        predictor.model,
        encode_texts(predictor.tokenizer, texts, predictor.config.max_len, cache=False),
        predictor.pad_id,
        128,
        predictor.device,
    )
    np.testing.assert_array_equal(predictor.predict_proba(texts, long_text="truncate"), today)
    highest = predictor.predict_proba(texts, long_text="chunk")
    mean = predictor.predict_proba(texts, long_text="chunk", combine="mean", stride=0)
    assert highest.shape == mean.shape == (6, 28) and ((highest >= 0) & (highest <= 1)).all()
    assert (highest[0] >= predictor.predict_proba([LONG], long_text="chunk", combine="mean")[0]).all()
    assert not np.allclose(highest[0], today[0])
    np.testing.assert_allclose(highest[1:], today[1:], atol=1e-6)  # a short text is one window: as truncated
    np.testing.assert_allclose(mean[1:], today[1:], atol=1e-6)
    [result] = predictor.predict([LONG], long_text="chunk")
    assert result["probs"][predictor.labels[0]] == pytest.approx(float(highest[0, 0]), abs=1e-6)

    (tmp_path / "long.txt").write_text(("joy " * 10_000).strip() + "\nok\n")  # 10,000 tokens and more
    for mode in ("truncate", "chunk"):
        out = tmp_path / f"{mode}.parquet"
        argv = [
            "predict",
            str(tiny_run),
            "--file",
            str(tmp_path / "long.txt"),
            "--out",
            str(out),
            "--progress",
            "false",
        ]
        assert main([*argv, "--long_text", mode]) == 0
        options = json.loads(out.with_name(out.name + ".meta.json").read_text())["options"]
        assert (options["long_text"], options["combine"]) == (mode, "max")


def fails(argv: list[str], problem: str, capsys) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"emoscope: error: {problem}\n"


def test_bad_rows_and_wrong_columns_are_file_line_errors_and_write_nothing(tiny_run, tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "text": "fine"}\n{"text": "also fine"}\n{"text": 3}\n')
    paths = write_inputs(tmp_path, TEXTS[:3])
    out = tmp_path / "out" / "scores.parquet"
    score = ["predict", str(tiny_run), "--out", str(out), "--progress", "false", "--file"]
    jsonl, table = tmp_path / "bad.jsonl", paths["csv"]
    fails([*score, str(jsonl)], f"{jsonl}:3: field 'text' must hold a string, found int", capsys)
    how = "name the text column with --text_column NAME"
    header = (
        f"no column 'body'; found columns: 'id', 'text'; {how}, or pass --no_header if the first row is already a text"
    )
    fails([*score, str(table), "--text_column", "body"], f"{table}:1: {header}", capsys)
    fails(
        [*score, str(table), "--keep_columns", "id,lang"],
        f"{table}:1: no column 'lang' to keep; found columns: id",
        capsys,
    )
    parquet = paths["parquet"]
    fails(
        [*score, str(parquet), "--text_column", "body"],
        f"{parquet}: no column 'body'; found columns: 'id', 'text'; {how}",
        capsys,
    )
    assert not (tmp_path / "out").exists()

    assert main([*score, str(jsonl), "--skip_bad_rows"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"skipped 1 bad rows (first: {jsonl}:3: field 'text' must hold a string, found int)"
    )
    assert pq.read_table(out).column("id").to_pylist() == [1, None]
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert (meta["rows"], meta["skipped_rows"]) == (2, 1)


def test_an_output_is_never_replaced_without_overwrite(tiny_run, tmp_path, capsys):
    path = write_inputs(tmp_path, TEXTS[:6])["txt"]
    out = tmp_path / "scores.csv"
    out.write_text("mine\n")
    argv = ["predict", str(tiny_run), "--file", str(path), "--out", str(out), "--progress", "false"]
    fails(argv, f"{out} already exists; pass --overwrite to replace it", capsys)
    assert out.read_text() == "mine\n"
    assert main([*argv, "--overwrite"]) == 0
    assert out.read_text().startswith("text,predicted,admiration,")

    other = tmp_path / "other.csv"
    argv = ["predict", str(tiny_run), "--file", str(path), "--out", str(other), "--progress", "false"]
    assert main([*argv, "--chunk_size", "2", "--shard", "0/2"]) == 0  # unfinished work made with other options
    partial = other.with_name(other.name + ".partial")
    other.with_name(other.name + ".shard-0-of-2").rename(partial)
    problem = "holds unfinished work for another input or options (chunks differs); run the same command to continue"
    fails(argv, f"{partial} {problem} it, or pass --overwrite to start over", capsys)
    assert main([*argv, "--overwrite"]) == 0 and other.is_file() and not partial.exists()


def test_a_second_scorer_on_a_busy_output_stops_at_once_naming_the_holder(tiny_run, tmp_path):
    """Two real processes: the first holds the work folder's lock (frozen mid-run so the order is certain); the
    second stops at once with one line naming its pid and touches nothing; after the first is killed, the lock
    dies with it and the next run continues its work."""
    texts = [f"{text} {i}" for i, text in enumerate(SAMPLE_TEXTS[:40])]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    partial = out.with_name(out.name + ".partial")
    command = ["predict", str(tiny_run), "--file", str(tmp_path / "in.jsonl"), "--out", str(out), "--chunk_size", "1"]
    first = _run(*command, "--progress", "false")
    deadline = time.monotonic() + 600
    while not list(partial.glob("chunk-*")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        chunks = sorted(p.name for p in partial.iterdir())
        second = _run(*command, "--progress", "false", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = (stream.decode() for stream in second.communicate(timeout=600))
        assert second.returncode == 2 and stdout == "", stderr
        [line] = stderr.splitlines()
        assert line.startswith(f"emoscope: error: {partial} is in use: process {first.pid} is writing out.jsonl")
        assert sorted(p.name for p in partial.iterdir()) == chunks
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not out.exists()
    resumed = _run(*command, "--progress", "false", stdout=subprocess.PIPE)
    assert resumed.communicate(timeout=600)[0].decode().startswith("continued: ")
    assert resumed.returncode == 0 and len(out.read_text().splitlines()) == len(texts) and not partial.exists()
