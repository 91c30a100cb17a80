"""Weights are read from safetensors; a pickle only when the user passes --trust-pickle, and then only with
torch.load(weights_only=True), so a malicious pickle never runs its code. Plus a fuzz test of predict's reader."""

from __future__ import annotations

import builtins
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import slice_goemotions, train_args
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.data.formats import TextReader
from emoscope.inference.predictor import Predictor
from emoscope.models import build_classifier
from emoscope.train.checkpoint import load_latest_checkpoint, save_checkpoint

RISK = (
    "is a pickle, and loading a pickle can run arbitrary code: use safetensors weights, or pass --trust-pickle "
    "if you trust its source (it is then read with weights_only=True)"
)
REFUSED = "holds more than tensors, so torch.load(weights_only=True) refused it: it may be malicious"


class Payload:
    """Unpickling this creates a file: proof that a pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


def malicious(path: Path, marker: Path) -> None:
    torch.save({"weight": Payload(marker)}, path)


@pytest.fixture
def pickled_backbone(tiny_models, tmp_path) -> Path:
    """The tiny BERT as an old hub folder would hold it: pytorch_model.bin, no safetensors."""
    folder = tmp_path / "pickled-bert"
    shutil.copytree(tiny_models["bert"], folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


@pytest.fixture(scope="module")
def data(goemotions_dir, tmp_path_factory) -> Path:
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-safety"), 32, 16, 16)


def test_a_backbone_with_only_pickled_weights_is_refused(pickled_backbone, data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(pickled_backbone, data, run)) == 2
    assert capsys.readouterr().err == f"emoscope: error: {pickled_backbone / 'pytorch_model.bin'} {RISK}\n"
    assert not run.exists()


def test_a_trusted_pickled_backbone_loads_the_same_weights(pickled_backbone, tiny_models):
    with pytest.raises(UserError, match="is a pickle"):
        build_classifier(str(pickled_backbone), "linear", 28, head_dropout=0.1)
    model = build_classifier(str(pickled_backbone), "linear", 28, head_dropout=0.1, trust_pickle=True)
    original = load_file(str(tiny_models["bert"] / "model.safetensors"))
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)


def test_a_malicious_backbone_pickle_never_runs_even_when_trusted(pickled_backbone, data, tmp_path, capsys):
    marker = tmp_path / "pwned"
    malicious(pickled_backbone / "pytorch_model.bin", marker)
    run = tmp_path / "run"
    assert main(train_args(pickled_backbone, data, run, "--trust-pickle")) == 2
    assert capsys.readouterr().err == f"emoscope: error: {pickled_backbone} {REFUSED}\n"
    assert not marker.exists() and not run.exists()


@pytest.fixture
def pickled_run(tiny_run, tmp_path) -> Path:
    """A run folder whose weights are model.bin instead of model.safetensors."""
    run = tmp_path / "pickled-run"
    shutil.copytree(tiny_run, run)
    torch.save(load_file(str(run / "model.safetensors")), run / "model.bin")
    (run / "model.safetensors").unlink()
    return run


def test_a_run_folder_with_pickled_weights_is_refused_unless_trusted(pickled_run, tiny_run, capsys):
    for argv in (["predict", str(pickled_run), "hi"], ["evaluate", str(pickled_run)]):
        assert main(argv) == 2
        assert capsys.readouterr().err == f"emoscope: error: {pickled_run / 'model.bin'} {RISK}\n"
    assert main(["predict", str(pickled_run), "hi", "--trust-pickle"]) == 0
    texts = ["thank you so much!", "this is terrible"]
    np.testing.assert_array_equal(
        Predictor(pickled_run, trust_pickle=True).predict_proba(texts), Predictor(tiny_run).predict_proba(texts)
    )


def test_a_malicious_run_folder_pickle_never_runs_even_when_trusted(pickled_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    (pickled_run / "model.bin").unlink()
    malicious(pickled_run / "model.pth", marker)
    assert main(["predict", str(pickled_run), "hi", "--trust-pickle"]) == 2
    assert capsys.readouterr().err == f"emoscope: error: {pickled_run / 'model.pth'} {REFUSED}\n"
    assert not marker.exists()


def test_a_run_folder_holds_weights_only_as_safetensors(tiny_run):
    suffixes = {p.suffix for p in tiny_run.rglob("*") if p.is_file()}
    assert ".safetensors" in suffixes and not suffixes & {".bin", ".pth", ".ckpt", ".pkl"}
    # The one pickle emoscope writes, a checkpoint's optimizer state, holds tensors and numbers only.
    for state in tiny_run.glob("checkpoints/step_*/train_state.pt"):
        torch.load(state, weights_only=True)


def test_a_malicious_checkpoint_train_state_is_refused_and_never_runs(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    for step in (1, 2):
        save_checkpoint(root, step, {"w": torch.zeros(2)}, {"torch_rng": torch.get_rng_state()}, {"step": step}, 2)
    marker = tmp_path / "pwned"
    newest = root / "step_2"
    malicious(newest / "train_state.pt", marker)
    state = json.loads((newest / "state.json").read_text())  # an attacker rewrites the checksum too
    state["files"]["train_state.pt"] = hashlib.sha256((newest / "train_state.pt").read_bytes()).hexdigest()
    (newest / "state.json").write_text(json.dumps(state))
    assert load_latest_checkpoint(root)[3] == root / "step_1"
    assert "UnpicklingError" in capsys.readouterr().out and not marker.exists()


# ---------------------------------------------------------------- predict's own reader, fuzzed

TOKENS = [
    b"text",
    b"id",
    b",",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b'"',
    b" ",
    b"{",
    b"}",
    b":",
    b'"text"',
    b"[",
    b"]",
    b"null",
    b"1",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\xef\xbb\xbf",
    "é😀".encode(),
    b"x" * 40,
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-texts")


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl"])
@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(TOKENS), max_size=50).map(b"".join)))
def test_predict_reader_never_crashes(folder, suffix, data):
    path = folder / f"texts{suffix}"
    path.write_bytes(data)
    try:
        texts = [row.text for row in TextReader(path).rows()]
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert texts and all(isinstance(t, str) and t.strip() for t in texts)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[" * 100_000 + "\n", "invalid JSON: maximum recursion depth exceeded"),
        ('{"text": 1' + "1" * 5000 + "}\n", "invalid JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_predict_reader_on_hostile_json(tmp_path, content, problem):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "fine"}\n' + content)
    with pytest.raises(UserError) as e:
        list(TextReader(path).rows())
    assert str(e.value).startswith(f"{path}:2: {problem}")
