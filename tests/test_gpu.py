"""The CUDA paths CPU tests cannot see: fp16 with GradScaler, bf16 autocast, and resume with the CUDA random
state. Marked `gpu`: collected everywhere, run where a CUDA GPU is present, skipped with the reason elsewhere
(under CI=true too: CI machines have no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import slice_goemotions
from test_faults import assert_same_run, kill, launch, train_args, wait_for

from emoscope.cli import main
from emoscope.core.runfolder import CHECKPOINTS, RUN_INFO
from emoscope.data.source import load_goemotions
from emoscope.inference.predictor import Predictor
from emoscope.train.checkpoint import load_latest_checkpoint

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(goemotions_dir, tmp_path_factory) -> Path:
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-gpu"), 240, 60, 60)


def dev_probs(run: Path, data: Path) -> np.ndarray:
    texts = [e.text for e in load_goemotions(data).dev]
    return Predictor(run, precision="fp32").predict_proba(texts)


def test_fp16_with_grad_scaler_and_bf16_train_like_fp32_on_cuda(tiny_models, data, tmp_path):
    probs = {}
    for precision in ("fp32", "fp16", "bf16"):
        run = tmp_path / precision
        assert main(train_args(tiny_models["bert"], data, run, "--precision", precision, "--epochs", "1")) == 0
        assert json.loads((run / RUN_INFO).read_text())["precision"] == precision
        assert not json.loads((run / RUN_INFO).read_text())["hardware"].startswith("CPU")
        probs[precision] = dev_probs(run, data)
        if precision == "fp16":
            _, extra, _, _ = load_latest_checkpoint(run / CHECKPOINTS)
            assert extra["scaler"]["scale"] > 0  # the GradScaler ran and its state is saved for resume
    assert np.abs(probs["fp32"] - 0.5).mean() > 0.1  # training moved the probabilities: the match means something
    for precision in ("fp16", "bf16"):
        assert np.abs(probs[precision] - probs["fp32"]).max() < 0.05, precision


def test_kill_and_resume_on_cuda_repeats_exactly_with_deterministic_algorithms(tiny_models, data, tmp_path):
    args = ["--deterministic", "true", "--precision", "fp16"]
    straight = tmp_path / "straight"
    assert main(train_args(tiny_models["bert"], data, straight, *args)) == 0
    run, log = tmp_path / "killed", tmp_path / "killed.log"
    metrics = run / "metrics.jsonl"
    proc = launch(train_args(tiny_models["bert"], data, run, *args), log)
    wait_for(lambda: metrics.exists() and metrics.read_text().count('"kind": "step"') >= 7, proc, log)
    kill(proc)
    proc = launch(train_args(tiny_models["bert"], data, run, *args, "--resume"), log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "emoscope: resumed from" in log.read_text()
    assert_same_run(straight, run)


def test_seed_a_architecture_trains_20_fp16_steps_and_reports_speed_and_memory(goemotions_dir):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_seed_a.py"), "--steps", "20"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "EMOSCOPE_DATA_DIR": str(goemotions_dir)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["examples_per_s"] > 0 and 1 < result["peak_gib"] < 80
