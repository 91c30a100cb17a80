"""Every check before anything is written, for every command that writes: bad options, a damaged run folder and a
destination that cannot be written each give exit 2, one line on stderr, and leave the destination as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emoscope.cli import main

DAMAGED_HEADER = "damaged weights (its header is not a safetensors header); restore the file from a copy, or retrain"


@pytest.fixture(scope="module")
def folders(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """Copies of the tiny run: one whose weights' header was overwritten, one whose weights were cut short, one
    whose thresholds hold a NaN; a file where a folder should be; texts to score."""
    root = tmp_path_factory.mktemp("checks")
    made = {"run": tiny_run, "texts": root / "in.txt", "blocker": root / "a-file"}
    made["texts"].write_text("hello\nthanks a lot\n")
    made["blocker"].write_text("not a folder")
    for name in ("header", "short", "nan"):
        shutil.copytree(tiny_run, root / name, ignore=shutil.ignore_patterns("onnx", "hf", "report.html"))
        made[name] = root / name
    weights = made["header"] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:24] = b"garbage-garbage!"
    weights.write_bytes(bytes(data))
    short = made["short"] / "model.safetensors"
    short.write_bytes(short.read_bytes()[:-100])
    thresholds = json.loads((made["nan"] / "thresholds.json").read_text())
    first = next(iter(thresholds["thresholds"]))
    (made["nan"] / "thresholds.json").write_text(
        json.dumps({**thresholds, "thresholds": {**thresholds["thresholds"], first: float("nan")}})
    )
    made["nan_label"] = first
    return made


def _cases(f: dict[str, Path], out: Path) -> list[tuple[list[str], str]]:
    """(argv, the problem in the one line); each writes, if at all, to `out`."""
    run, texts, blocker = str(f["run"]), str(f["texts"]), f["blocker"]
    score = ["predict", run, "--file", texts, "--out", str(out / "s.jsonl"), "--progress", "false"]
    return [
        ([*score, "--long_text", "chunk", "--stride", "100000"], "stride 100000 must be between 0 and"),
        ([*score, "--stride", "8"], "--stride applies to --long_text chunk only"),
        ([*score, "--top_k", "0"], "argument --top-k/--top_k: must be a whole number from 1, got '0'"),
        ([*score, "--chunk_size", "-3"], "argument --chunk-size/--chunk_size: must be a whole number from 1"),
        ([*score, "--shard", "2/2"], "--shard must be I/N with 0 <= I < N"),
        ([*score, "--batch_size", "0"], "argument --batch-size/--batch_size: must be a whole number from 1"),
        (["predict", run, "hi", "--top_k", "0"], "--top_k: must be a whole number from 1, got '0'"),
        (["predict", str(f["header"]), "--file", texts, "--out", str(out / "s.jsonl")], DAMAGED_HEADER),
        (["predict", str(f["short"]), "hi"], "is not the size its header describes"),
        (["predict", str(f["nan"]), "hi"], f"thresholds must lie in [0, 1]; '{f['nan_label']}' is nan"),
        (
            ["predict", run, "--file", texts, "--out", str(blocker / "s.jsonl")],
            f"{blocker / 's.jsonl'} cannot be written: {blocker} is a file, not a folder",
        ),
        (["predict", run, "--file", texts, "--out", "/proc/emoscope/s.jsonl"], "/proc is not writable"),
        (["export", run, "--out", str(blocker / "hf")], "cannot be written"),
        (["export", run, "--format", "onnx", "--out", "/proc/emoscope/onnx"], "/proc is not writable"),
        (["export", str(f["header"]), "--out", str(out / "hf")], DAMAGED_HEADER),
        (["export", str(f["header"]), "--format", "onnx", "--out", str(out / "onnx")], DAMAGED_HEADER),
        (["export", run, "--quantize", "int8", "--out", str(out / "hf")], "--quantize applies to --format onnx only"),
        (["evaluate", run, "--out", str(blocker / "e")], "cannot be written"),
        (["evaluate", str(f["header"]), "--out", str(out / "e")], DAMAGED_HEADER),
        (["ensemble", run, run, "--out", str(blocker / "e")], "cannot be written"),
        (["analyze", run, run, "--out", str(blocker / "a")], "cannot be written"),
        (["analyze", run, "--resamples", "0"], "argument --resamples: must be a whole number from 1"),
        (["compare", run, "--out", str(blocker / "c.html")], "cannot be written"),
        (["baseline", "--out", str(blocker / "b")], "cannot be written"),
    ]


def test_every_command_checks_before_it_writes(folders, tmp_path, capsys):
    out = tmp_path / "out"
    for argv, problem in _cases(folders, out):
        try:  # a usage mistake exits in the parser, every other check in the command
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and problem in err, (argv, err)
        assert not out.exists(), argv
    assert folders["blocker"].read_text() == "not a folder"
