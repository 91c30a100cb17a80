"""Bad input through the real CLI: one line on stderr naming the problem (file:line for data), exit 2, nothing
written. A couple of cases also run as a separate process, to see that no traceback ever reaches the user."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import slice_goemotions, train_args

import emoscope
from emoscope.cli import main
from emoscope.data.labels import PACKAGE_DIR

REPO = Path(__file__).resolve().parents[1]
GOOD = "I love this, thank you!\t15,18\tc1\nThis is awful.\t2\tc2\n"
TSV_COLUMNS = "expected 3 tab-separated columns (text, label ids, comment id; the id may be left out), found"


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["hi"], "labels": [[1]]}), buffer)
    return buffer.getvalue()


# name: (file name, content (None: no file), the problem as printed after "emoscope: error: ")
DATA_CASES = {
    "missing file": ("data.tsv", None, "{path}: no such file"),
    "unsupported format": (
        "data.xlsx",
        GOOD,
        "{path}: cannot tell the format from the extension '.xlsx'; use "
        "one of .tsv, .csv, .jsonl, .json, .parquet or pass the format explicitly (tsv, csv, "
        "jsonl, parquet)",
    ),
    "Parquet named .csv": (
        "data.csv",
        _parquet(),
        "{path}: this is a Parquet file, not CSV: rename it to .parquet or pass the format 'parquet'",
    ),
    "CSV named .tsv": (
        "data.tsv",
        "text,labels\nhi,1\n",
        f"{{path}}:1: {TSV_COLUMNS} 1; is it a CSV? rename it to .csv or pass the format 'csv'",
    ),
    "text named .parquet": (
        "data.parquet",
        GOOD,
        "{path}: not a Parquet file (no PAR1 magic bytes); if it is "
        "text, name it .csv, .tsv or .jsonl or pass that format",
    ),
    "too many columns": ("data.tsv", GOOD + "a\tb\tc\td\n", f"{{path}}:3: {TSV_COLUMNS} 4"),
    "too few columns": (
        "data.csv",
        "text,labels,id\nhi,1,a\nyo,2\n",
        "{path}:3: expected 3 columns as in the header (line 1), found 2",
    ),
    "label id out of range": ("data.tsv", GOOD + "hi\t28\tc3\n", "{path}:3: label id 28 out of range 0..27"),
    "negative label id": ("data.csv", 'text,labels\nhi,"3,-1"\n', "{path}:2: label id -1 out of range 0..27"),
    "unknown label name": (
        "data.jsonl",
        '{"text": "hi", "labels": ["joy"]}\n{"text": "yo", "labels": ["glee"]}\n',
        "{path}:2: unknown label name 'glee'",
    ),
    "empty text": ("data.tsv", GOOD + "\t3\tc3\n", "{path}:3: empty or whitespace-only text"),
    "whitespace-only text": ("data.csv", 'text,labels\nhi,1\n" \t ",2\n', "{path}:3: empty or whitespace-only text"),
    "invalid UTF-8": (
        "data.tsv",
        GOOD.encode() + b"caf\xe9\t1\tc3\n",
        "{path}:3: invalid UTF-8: byte 0xe9 at byte 4 of the line",
    ),
    "1 MB text": (
        "data.tsv",
        GOOD + "x" * 1_000_000 + "\t3\tc3\n",
        "{path}:3: text is 1000000 characters, longer than the maximum 10000",
    ),
    "1 MB text in a CSV": (
        "data.csv",
        'text,labels\nhi,1\n"' + "x" * 1_000_000 + '",3\n',
        "{path}:3: malformed CSV: a field of more than 131072 characters",
    ),
    "empty file": ("data.tsv", "", "{path}: empty file"),
    "header only": ("data.csv", "text,labels\n", "{path}: no examples: the file has no data rows"),
}


def write_case(folder: Path, name: str) -> tuple[Path, str]:
    file_name, content, problem = DATA_CASES[name]
    path = folder / file_name
    if content is not None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path, problem.format(path=path)


def snapshot(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def fails_with(argv: list[str], problem: str, capsys) -> None:
    """Exit code 2 and exactly one line on stderr: "emoscope: error: <problem>"."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"emoscope: error: {problem}\n"


@pytest.fixture(scope="module")
def data(goemotions_dir, tmp_path_factory) -> Path:
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-bad-input"), 64, 16, 16)


@pytest.mark.parametrize("case", DATA_CASES)
def test_bad_training_data(case, tiny_models, tmp_path, capsys):
    path, problem = write_case(tmp_path, case)
    run = tmp_path / "run"
    fails_with(
        ["train", "--train_file", str(path), "--backbone", str(tiny_models["bert"]), "--run_dir", str(run)],
        problem,
        capsys,
    )
    assert not run.exists()


@pytest.mark.parametrize("case", DATA_CASES)
def test_bad_evaluation_data(case, tiny_run, tmp_path, capsys):
    path, problem = write_case(tmp_path, case)
    before = snapshot(tiny_run)
    fails_with(["evaluate", str(tiny_run), "--file", str(path)], problem, capsys)
    assert snapshot(tiny_run) == before


def test_label_files_that_disagree(tiny_models, tiny_run, data, tmp_path, capsys):
    labels = tmp_path / "labels"
    shutil.copytree(data, labels)
    emotions = (PACKAGE_DIR / "emotions.txt").read_text().splitlines()
    for name in ("ekman_mapping.json", "sentiment_dict.json"):
        shutil.copy(PACKAGE_DIR / name, labels / name)
    # An emotions.txt that lost an emotion the groupings still name: refused before training.
    (labels / "emotions.txt").write_text("\n".join(e for e in emotions if e != "grief") + "\n")
    run = tmp_path / "run"
    fails_with(
        train_args(tiny_models["bert"], labels, run),
        f"{labels / 'ekman_mapping.json'}: 'grief' (sadness) is not an emotion of emotions.txt",
        capsys,
    )
    assert not run.exists()
    # Label files in another order than the run was trained with: ids would silently mean other emotions.
    (labels / "emotions.txt").write_text("\n".join([emotions[1], emotions[0], *emotions[2:]]) + "\n")
    (tmp_path / "good.tsv").write_text(GOOD)
    before = snapshot(tiny_run)
    problem = (
        f"the data's label files disagree with {tiny_run / 'labels.json'}: label 0 is 'amusement' in the "
        "data, 'admiration' in the run"
    )
    fails_with(
        ["evaluate", str(tiny_run), "--file", str(tmp_path / "good.tsv"), "--data-dir", str(labels)], problem, capsys
    )
    fails_with(["evaluate", str(tiny_run), "--data-dir", str(labels)], problem, capsys)
    assert snapshot(tiny_run) == before


# ---------------------------------------------------------------- options, presets, backbones


OPTION_CASES = [
    (
        ["--preset", "nope"],
        "unknown preset 'nope'; choose one of cpu-default, mpnet-base, seed-a, seed-b or a .yaml path",
    ),
    (["--preset", "{tmp}/mine.yaml"], "preset file {tmp}/mine.yaml does not exist"),
    (["--backbone", "{tmp}/nope"], "backbone folder {tmp}/nope does not exist"),
    (
        ["--backbone", "{tmp}/empty"],
        "backbone folder {tmp}/empty has no config.json: it is not a Hugging Face model folder",
    ),
    (
        ["--backbone", "someone/not-a-cached-model"],
        "backbone 'someone/not-a-cached-model' is not in the local "
        "Hugging Face cache and the hub is offline (HF_HUB_OFFLINE=1); download it elsewhere and pass its folder: "
        "--backbone /path/to/someone/not-a-cached-model",
    ),
    (["--lr", "0"], "--lr must be positive, got 0.0"),
    (["--lr=-1e-3"], "--lr must be positive, got -0.001"),
    (["--lr", "nan"], "--lr must be positive, got nan"),
    (["--head_lr", "0"], "--head_lr must be positive, got 0.0"),
    (["--batch_size", "0"], "--batch_size must be positive, got 0"),
    (["--batch_size=-16"], "--batch_size must be positive, got -16"),
    (["--epochs", "0"], "--epochs must be positive, got 0"),
    (["--epochs=-1"], "--epochs must be positive, got -1"),
    (["--max_len", "4096"], "--max_len 4096 is beyond the backbone's limit of 128 tokens"),
    (["--max_len", "0"], "--max_len must be positive, got 0"),
]


@pytest.mark.parametrize(("extra", "problem"), OPTION_CASES)
def test_bad_options(extra, problem, tiny_models, data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    run = tmp_path / "run"
    fails_with(
        train_args(tiny_models["bert"], data, run, *(e.format(tmp=tmp_path) for e in extra)),
        problem.format(tmp=tmp_path),
        capsys,
    )
    assert not run.exists()


def test_unparsable_option_values_are_one_line_too(tiny_models, data, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(train_args(tiny_models["bert"], data, tmp_path / "run", "--lr", "fast"))
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "emoscope train: error: argument --lr: invalid float value: 'fast' (see emoscope train --help)\n"
    )


def test_an_existing_run_folder_is_never_overwritten_without_overwrite(tiny_models, data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    fails_with(
        train_args(tiny_models["bert"], data, run),
        f"run folder {run} already exists; pass --overwrite to replace it or --resume",
        capsys,
    )
    assert [p.name for p in run.iterdir()] == ["keep.txt"] and (run / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- predict


def test_predict_on_bad_input(tiny_run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    info = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({**info, "format": 99}))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "model.safetensors").unlink()
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "texts.csv").write_text('id,text\n1,"hello, friend"\n2,"  "\n')
    (tmp_path / "texts.txt").write_bytes(b"fine\nna\xefve\n")
    (tmp_path / "huge.csv").write_text('text\nhi\n"' + "x" * 1_000_000 + '"\n')
    out = tmp_path / "out" / "scores.jsonl"
    cases = [
        ([str(tiny_run), ""], "text 1 is empty: nothing to predict"),
        ([str(tiny_run), "fine", " \t "], "text 2 is empty: nothing to predict"),
        ([str(tmp_path / "nope"), "hi"], f"run folder {tmp_path / 'nope'} does not exist"),
        ([str(tmp_path / "not-a-run"), "hi"], f"{tmp_path / 'not-a-run'} is not an emoscope run folder (no run.json)"),
        (
            [str(old), "hi"],
            f"{old} was written in run-folder format 99; this emoscope {emoscope.__version__} reads "
            f"format {emoscope.RUN_FORMAT_VERSION}: upgrade emoscope (pip install -U emoscope)",
        ),
        ([str(broken), "hi"], f"run folder {broken} is incomplete: model.safetensors is missing"),
        (
            [str(tiny_run), "--file", str(tmp_path / "nope.txt"), "--out", str(out)],
            f"input file {tmp_path / 'nope.txt'} does not exist",
        ),
        (
            [str(tiny_run), "--file", str(tmp_path / "texts.csv"), "--out", str(out)],
            f"{tmp_path / 'texts.csv'}:3: empty text",
        ),
        (
            [str(tiny_run), "--file", str(tmp_path / "texts.txt"), "--out", str(out)],
            f"{tmp_path / 'texts.txt'}:2: invalid UTF-8: byte 0xef at byte 3 of the line",
        ),
        (
            [str(tiny_run), "--file", str(tmp_path / "huge.csv"), "--out", str(out)],
            f"{tmp_path / 'huge.csv'}:3: malformed CSV: a field of more than 131072 characters",
        ),
        (
            [str(tiny_run), "--file", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "out" / "scores.xlsx")],
            f"{tmp_path / 'out' / 'scores.xlsx'}: output must end in .jsonl, .csv or .parquet",
        ),
    ]
    for argv, problem in cases:
        fails_with(["predict", *argv], problem, capsys)
    assert not (tmp_path / "out").exists()


def test_predict_truncates_a_1_mb_text(tiny_run, capsys):
    assert main(["predict", str(tiny_run), "joy " * 250_000, "--top-k", "2"]) == 0
    assert sum("%" in line for line in capsys.readouterr().out.splitlines()) == 2


# ---------------------------------------------------------------- as the user sees it: a separate process


def test_no_traceback_reaches_the_user(tiny_run, tmp_path):
    path, problem = write_case(tmp_path, "invalid UTF-8")
    (tmp_path / "huge.csv").write_text('text\nhi\n"' + "x" * 1_000_000 + '"\n')
    cases = [
        (["train", "--train_file", str(path), "--run_dir", str(tmp_path / "run")], problem),
        (
            ["predict", str(tiny_run), "--file", str(tmp_path / "huge.csv"), "--out", str(tmp_path / "o.jsonl")],
            f"{tmp_path / 'huge.csv'}:3: malformed CSV: a field of more than 131072 characters",
        ),
    ]
    for argv, expected in cases:
        result = subprocess.run(
            [sys.executable, "-m", "emoscope", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            timeout=120,
        )
        assert (result.returncode, result.stderr, result.stdout) == (2, f"emoscope: error: {expected}\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tsv", "huge.csv"]
