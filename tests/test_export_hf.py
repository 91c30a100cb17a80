"""The Hub export: a `--head native` run as the standard transformers class (no remote code), and the model
card every transformers export carries, whose metrics must be the run's eval/ files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import slice_goemotions, train_args

from emoscope.cli import main
from emoscope.core.runfolder import load_thresholds
from emoscope.inference.predictor import Predictor


def make_tiny_mpnet(root, bert_folder):
    """A random 2-layer MPNet (the all-mpnet-base-v2 family) over the tiny BERT's WordPiece tokenizer."""
    import torch
    from transformers import AutoModel, AutoTokenizer, MPNetConfig

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = root / "tiny-mpnet"
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def native_runs(tiny_models, goemotions_dir, tmp_path_factory) -> dict:
    """A tiny run of `--head native` on a BERT and on an MPNet."""
    data = slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("native-data"), 96, 32, 32)
    backbones = {
        "bert": tiny_models["bert"],
        "mpnet": make_tiny_mpnet(tmp_path_factory.mktemp("mpnet"), tiny_models["bert"]),
    }
    runs = {}
    for family, backbone in backbones.items():
        runs[family] = tmp_path_factory.mktemp(f"native-{family}") / "run"
        args = train_args(backbone, data, runs[family], "--head", "native", "--lexical_baseline", "false")
        assert main(args) == 0
    return runs


@pytest.mark.parametrize(
    "family,architecture", [("bert", "BertForSequenceClassification"), ("mpnet", "MPNetForSequenceClassification")]
)
def test_a_native_run_exports_the_standard_class_that_a_plain_pipeline_loads(
    family, architecture, native_runs, tmp_path, capsys
):
    from transformers import pipeline

    run, out = native_runs[family], tmp_path / "hf"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"transformers export: {out}\n"
    assert not list(out.glob("*.py"))
    config = json.loads((out / "config.json").read_text())
    predictor = Predictor(run, precision="fp32")
    labels = predictor.labels
    assert "auto_map" not in config and config["architectures"] == [architecture]
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    dev_chosen = load_thresholds(run / "thresholds.json", labels)
    assert dev_chosen.chosen_on == "dev"
    assert [config["thresholds"][label] for label in labels] == pytest.approx(dev_chosen.values.tolist())
    assert load_thresholds(out / "thresholds.json", labels).values.tolist() == dev_chosen.values.tolist()

    # Past max_len, and its end unlike its start: both must cut it at the run's 64 tokens.
    long_text = "I am so happy and grateful for this. " * 8 + "This is awful, I am furious and disgusted. " * 60
    texts = ["thank you so much!", "I can't believe this happened, I'm furious", long_text]
    classify = pipeline("text-classification", model=str(out), top_k=None)
    assert classify.tokenizer.model_max_length == predictor.config.max_len == 64
    theirs = classify(texts, truncation=True)
    for row, scores in zip(predictor.predict_proba(texts), theirs, strict=True):
        by_label = {s["label"]: s["score"] for s in scores}
        np.testing.assert_allclose([by_label[label] for label in labels], row, atol=1e-5)


def test_the_model_card_metadata_is_the_runs_eval_files(native_runs, tiny_run, tmp_path, capsys):
    """Parsed as the Hub parses it: every metric equals eval/test_metrics.json; the body's per-emotion rows are
    eval/test_per_emotion.csv's; a head that needs remote code says so, on the terminal and in the card."""
    import csv

    from huggingface_hub import ModelCard

    for run, remote in ((native_runs["bert"], False), (tiny_run, True)):
        out = tmp_path / run.parent.name
        assert main(["export", str(run), "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert ("trust_remote_code=True" in said) is remote
        card = ModelCard.load(out / "README.md")
        test = json.loads((run / "eval" / "test_metrics.json").read_text())
        found = {(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
        assert found == {
            ("f1", "macro"): test["macro_f1"],
            ("f1", "macro, 95% CI low"): test["macro_f1_ci95_low"],
            ("f1", "macro, 95% CI high"): test["macro_f1_ci95_high"],
            ("f1", "micro"): test["micro_f1"],
            ("f1", "micro, 95% CI low"): test["micro_f1_ci95_low"],
            ("f1", "micro, 95% CI high"): test["micro_f1_ci95_high"],
        }
        assert {r.dataset_split for r in card.data.eval_results} == {"test"}
        data = card.data.to_dict()
        assert data["pipeline_tag"] == "text-classification" and data["language"] == "en"
        assert data["datasets"] == ["google-research-datasets/go_emotions"]
        assert data["license"] == "unknown"  # the tiny backbone's folder has no model card to take it from
        assert "chosen on dev, never on test" in card.text.replace("\n", " ").lower()
        assert ("trust_remote_code=True" in card.text) is remote
        with (run / "eval" / "test_per_emotion.csv").open() as handle:
            for row in csv.DictReader(handle):
                assert f"| {row['label']} | {float(row['f1']):.3f} |" in card.text
                assert f"| {float(row['threshold']):.3f} | {row['support']} |" in card.text
        assert f"--run_dir {run}" in card.text and "--head native" in card.text or remote


def test_the_card_names_the_packaged_backbone_and_its_license():
    from emoscope.export.card import backbone_license
    from emoscope.models.backbone import hub_id

    assert hub_id("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id("/some/folder") is None
    assert backbone_license("all-MiniLM-L6-v2") == "apache-2.0"
