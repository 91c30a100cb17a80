"""The seed presets against the seeds' own specs (/work/shared/seeds), and each preset training for real.

Every field of a preset file is compared with an explicit expected value, so a wrong, missing or extra field
fails. A comment marks the values the seed does not state (the project's choices); the others are quoted from
the seed. The training tests take every value from the preset file and override only what cannot run here.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import slice_goemotions
from safetensors.torch import load_file

from emoscope.cli import main
from emoscope.core.config import load_preset, resolve_config
from emoscope.core.runfolder import read_config

# Seed A: "RoBERTa-large", "CustomRoBERTaModel with MLP + attention + classifier", its command line
# "--epochs 10 --batch_size 32 --lr 5e-6 --precision fp16 --max_len 128", "Label Smoothing, Early Stopping".
SEED_A = {
    "backbone": "roberta-large",
    "head": "mlp-attention",
    "head_dropout": 0.1,  # not stated
    "max_len": 128,
    "epochs": 10,
    "batch_size": 32,
    "lr": 5.0e-6,
    "head_lr": None,  # one --lr for the whole model
    "warmup_ratio": 0.1,  # not stated
    "schedule": "linear",  # not stated
    "precision": "fp16",
    "label_smoothing": 0.1,  # label smoothing is used; its amount is not stated
    "early_stopping_patience": 2,  # early stopping is used; its patience is not stated
    "threshold_strategy": "per_emotion",  # not stated
}

# Seed B: "distilbert-base-uncased", "1D convolution with 128 filters and kernel size of 5", "Global max
# pooling", "42% dropout", "Only the last 3 layers of DistilBERT are fine-tuned", "Batch Size: 32",
# "Learning Rate: 7e-5 (AdamW optimizer)", "Max Sequence Length: 128 tokens", "Epochs: 5",
# "BCEWithLogitsLoss", "Scheduler: CosineAnnealingLR", "Prediction Threshold: 0.51".
SEED_B = {
    "backbone": "distilbert-base-uncased",
    "head": "cnn",  # 128 filters of width 5 and the global max pool are the cnn head's own (checked below)
    "head_dropout": 0.42,
    "train_last_layers": 3,
    "max_len": 128,
    "epochs": 5,
    "batch_size": 32,
    "lr": 7.0e-5,
    "head_lr": None,  # one AdamW learning rate
    "warmup_ratio": 0.0,  # CosineAnnealingLR has no warm-up
    "schedule": "cosine",
    "precision": "fp32",  # not stated; the seed's code runs plain fp32
    "early_stopping_patience": None,  # all 5 epochs run
    "threshold_strategy": "fixed",
    "threshold": 0.51,
}

# Fields the presets leave at TrainConfig's default, where the seed depends on that default.
INHERITED = {
    "seed-a": {"pos_weight": "none", "focal_gamma": 0.0, "teachers": []},
    # Plain BCEWithLogitsLoss; torch's AdamW default weight decay; every layer at the same rate.
    "seed-b": {
        "label_smoothing": 0.0,
        "pos_weight": "none",
        "focal_gamma": 0.0,
        "teachers": [],
        "weight_decay": 0.01,
        "layer_lr_decay": 1.0,
    },
}


@pytest.mark.parametrize(("preset", "expected"), [("seed-a", SEED_A), ("seed-b", SEED_B)])
def test_each_preset_file_holds_its_seeds_spec(preset, expected):
    assert load_preset(preset) == expected
    config = resolve_config(preset, {})
    assert {name: getattr(config, name) for name in INHERITED[preset]} == INHERITED[preset]


@pytest.fixture(scope="module")
def preset_data(goemotions_dir, tmp_path_factory):
    """32 train rows (one batch of 32: one optimizer step), 32 dev, 32 test."""
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("preset-data"), 32, 32, 32)


@pytest.fixture(scope="module")
def tiny_distilbert_4_layers(tiny_models, tmp_path_factory):
    """The tiny DistilBERT with 4 layers: with the conftest's 2, "the last 3 layers" would be all of them and
    the freezing of seed B could not be seen."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-distilbert-4")
    config = AutoConfig.from_pretrained(tiny_models["distilbert"])
    config.n_layers = 4
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_models["distilbert"]).save_pretrained(folder)
    return folder


def train_preset(preset: str, backbone, data, run) -> dict:
    """`emoscope train --preset <preset>` with only what cannot run here overridden; returns the overrides.

    backbone: a tiny random model of the preset's family (no hub, no GPU); data_dir: a slice; epochs: 1 (one
    step); precision: fp16 needs a CUDA GPU, so fp32 on CPU. max_len stays: the tiny models take 128 tokens.
    """
    overrides = {
        "backbone": str(backbone),
        "data_dir": str(data),
        "run_dir": str(run),
        "epochs": 1,
        "progress": False,
    }
    if load_preset(preset)["precision"] == "fp16" and not torch.cuda.is_available():
        overrides["precision"] = "fp32"
    args = ["train", "--preset", preset]
    for name, value in overrides.items():
        args += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    assert main(args) == 0
    return overrides


def assert_preset_was_followed(preset: str, run, overrides: dict) -> None:
    config = read_config(run)
    for name, value in load_preset(preset).items():
        assert getattr(config, name) == overrides.get(name, value), name


def test_seed_a_trains_a_step_as_its_preset_says(tiny_models, preset_data, tmp_path):
    run = tmp_path / "run"
    overrides = train_preset("seed-a", tiny_models["roberta"], preset_data, run)
    assert_preset_was_followed("seed-a", run, overrides)
    assert json.loads((run / "run.json").read_text())["precision"] == overrides.get("precision", "fp16")
    weights = load_file(run / "model.safetensors")
    assert any(k.startswith("head.attention.") for k in weights) and any(k.startswith("head.mlp.") for k in weights)
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert (thresholds["strategy"], thresholds["chosen_on"]) == ("per_emotion", "dev")


def test_seed_b_trains_a_step_as_its_preset_says(tiny_distilbert_4_layers, preset_data, tmp_path):
    run = tmp_path / "run"
    overrides = train_preset("seed-b", tiny_distilbert_4_layers, preset_data, run)
    assert "precision" not in overrides  # seed B runs in fp32 as written
    assert_preset_was_followed("seed-b", run, overrides)
    assert json.loads((run / "run.json").read_text())["precision"] == "fp32"
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert thresholds["strategy"] == "fixed" and set(thresholds["thresholds"].values()) == {0.51}

    trained = load_file(run / "model.safetensors")
    assert trained["head.conv.conv.weight"].shape == (128, 32, 5)  # 128 filters of width 5 over dim 32
    start = load_file(tiny_distilbert_4_layers / "model.safetensors")

    def moved(prefix: str) -> bool:
        names = [k for k in start if k.startswith(prefix)]
        assert names, prefix
        return any(not torch.equal(start[k], trained[f"backbone.{k}"]) for k in names)

    # The last 3 of 4 layers learned; the first and the embeddings stayed as they were.
    assert not moved("embeddings.") and not moved("transformer.layer.0.")
    assert all(moved(f"transformer.layer.{i}.") for i in (1, 2, 3))
