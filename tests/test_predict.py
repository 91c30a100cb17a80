"""Prediction from a run folder: Python API, CLI, batch files, the transformers export, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import slice_goemotions, train_args

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.inference.predictor import Predictor


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return tiny_run


def test_python_api_gives_top_k_sorted_probabilities(run_dir):
    predictor = Predictor(run_dir, precision="fp32")
    [result] = predictor.predict(["what a lovely day"], top_k=5)
    probs = [p for _, p in result["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert set(result["probs"]) == set(predictor.labels) and len(predictor.labels) == 28
    assert result["top"][0][1] == max(result["probs"].values())


def test_bf16_inference_casts_once_and_stays_close_to_fp32(run_dir):
    """bf16 weights (no per-call autocast) on any CPU: slower where emulated, but the same answers."""
    import torch

    texts = ["thank you so much!", "I can't believe this happened, I'm furious", "ok", "what a lovely day"]
    half = Predictor(run_dir, precision="bf16")
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    full = Predictor(run_dir, precision="fp32")
    assert {p.dtype for p in full.model.parameters()} == {torch.float32}
    np.testing.assert_allclose(half.predict_proba(texts), full.predict_proba(texts), atol=0.03)


def test_batches_scored_side_by_side_on_one_thread_each_give_the_same_probabilities(run_dir):
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from emoscope.models.inference import predict_probs, worker_count

    predictor = Predictor(run_dir, precision="fp32")
    texts = [f"text number {i}, {'so happy ' * (i % 7)}and {'sad ' * (i % 3)}" for i in range(40)]
    ids = [predictor.tokenizer(t)["input_ids"] for t in texts]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = predict_probs(predictor.model, ids, predictor.pad_id, 3, predictor.device, workers=1)
        many = predict_probs(predictor.model, ids, predictor.pad_id, 3, predictor.device, workers=3)
        with ThreadPoolExecutor(1) as pool:  # a thread started afterwards gets the caller's count, not the workers' 1
            assert pool.submit(torch.get_num_threads).result() == torch.get_num_threads() == 2
        cpu = torch.device("cpu")
        assert (worker_count(cpu, 40, 3), worker_count(cpu, 40, 3, 3), worker_count(cpu, 3, 3)) == (2, 3, 1)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(many, one, rtol=0, atol=1e-6)
    np.testing.assert_allclose(many[5], predictor.predict_proba([texts[5]])[0], rtol=0, atol=1e-6)  # input order
    with pytest.raises(UserError, match="workers must be a whole number from 1 .*, got 0"):
        predict_probs(predictor.model, ids, predictor.pad_id, 3, predictor.device, workers=0)
    with pytest.raises(UserError, match="got 1.5"):
        Predictor(run_dir, workers=1.5)


def test_batch_mode_reads_csv_tsv_jsonl_and_writes_csv(run_dir, tmp_path):
    (tmp_path / "in.csv").write_text('id,text\n1,"hello, friend"\n2,so sad\n', encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(
        '{"id": "1", "text": "hello, friend"}\n{"id": "2", "text": "so sad"}\n', encoding="utf-8"
    )
    (tmp_path / "in.tsv").write_text("id\ttext\n1\thello, friend\n2\tso sad\n", encoding="utf-8")
    outputs = []
    for name in ("in.csv", "in.jsonl", "in.tsv"):
        out = tmp_path / f"{name}.out.csv"
        assert main(["predict", str(run_dir), "--file", str(tmp_path / name), "--out", str(out)]) == 0
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].splitlines()[0].startswith("text,predicted,admiration,")


@pytest.fixture(scope="module")
def head_runs(tiny_run, tiny_models, goemotions_dir, tmp_path_factory) -> dict:
    """The shared tiny run (linear head), and a tiny run of each other head."""
    data = slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("heads-data"), 96, 32, 32)
    runs = {"linear": tiny_run}
    for head in ("mlp-attention", "cnn"):
        runs[head] = tmp_path_factory.mktemp(head) / "run"
        assert (
            main(train_args(tiny_models["bert"], data, runs[head], "--head", head, "--lexical_baseline", "false")) == 0
        )
    return runs


@pytest.mark.parametrize("head", ["linear", "mlp-attention", "cnn"])
def test_transformers_pipeline_loads_the_export_of_every_head_and_agrees(head, head_runs, tmp_path, capsys):
    from transformers import AutoTokenizer, pipeline

    long_text = "I am so happy " * 500  # ~2,000 tokens: past the tiny BERT's 128 positions, and BERT's 512
    texts = ["thank you so much!", "I can't believe this happened, I'm furious", long_text]
    predictor = Predictor(head_runs[head], precision="fp32")
    ours = predictor.predict_proba(texts)
    assert main(["export", str(head_runs[head]), "--out", str(tmp_path / "hf")]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"transformers export: {tmp_path / 'hf'} (its {head} head is emoscope's own module")
    assert "trust_remote_code=True" in said and "--head native" in said
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tokenizer.model_max_length == predictor.config.max_len == 64
    assert len(tokenizer(long_text, truncation=False)["input_ids"]) > 2000
    classify = pipeline("text-classification", model=str(tmp_path / "hf"), top_k=None, trust_remote_code=True)
    theirs = classify(texts)
    for row, scores in zip(ours, theirs, strict=True):
        by_label = {s["label"]: s["score"] for s in scores}
        np.testing.assert_allclose([by_label[label] for label in predictor.labels], row, atol=1e-5)


def test_an_empty_text_is_refused(run_dir, capsys):
    assert main(["predict", str(run_dir), "   "]) == 2
    assert capsys.readouterr().err.strip() == "emoscope: error: text 1 is empty: nothing to predict"


def test_a_missing_run_folder_is_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), "hi"]) == 2
    assert capsys.readouterr().err.strip() == f"emoscope: error: run folder {tmp_path / 'nope'} does not exist"


def test_a_run_folder_from_another_format_version_is_refused(run_dir, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    info = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({**info, "format": 99}))
    assert main(["predict", str(old), "hi"]) == 2
    assert "was written in run-folder format 99; this emoscope" in capsys.readouterr().err


def test_analyze_can_capture_saved_weights_on_demand(run_dir, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run)
    assert main(["analyze", str(run), "--capture", "--probe-size", "24", "--no-tsne"]) == 0
    assert [p.name for p in (run / "captures").glob("epoch_*.safetensors")] == ["epoch_1.safetensors"]
    assert len((run / "captures" / "probe.jsonl").read_text().splitlines()) == 24
    assert (run / "analysis" / "layer_metrics.csv").stat().st_size > 0
    assert "captured" in capsys.readouterr().out


def test_the_runs_saved_probabilities_are_the_predictors(run_dir):
    """Training scores dev and test through a Predictor on the best weights: in fp32 they agree to 1e-6."""
    from emoscope.evaluate.metrics import read_predictions

    predictor = Predictor(run_dir)  # the run's own precision, recorded in run.json
    assert predictor.precision == json.loads((run_dir / "run.json").read_text())["precision"] == "fp32"
    for split in ("dev", "test"):
        saved = read_predictions(run_dir / "eval" / f"{split}_predictions.jsonl", predictor.labels)
        np.testing.assert_allclose(predictor.predict_proba(saved.texts), saved.probs, rtol=0, atol=1e-6)


def test_the_predictor_runs_in_the_runs_precision_unless_told_otherwise(run_dir, tmp_path):
    import torch
    import yaml

    run = tmp_path / "bf16-run"
    shutil.copytree(run_dir, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "precision": "bf16"}))
    assert Predictor(run).precision == "bf16"
    assert {p.dtype for p in Predictor(run).model.parameters()} == {torch.bfloat16}
    assert Predictor(run, precision="fp32").precision == "fp32"
    with pytest.raises(UserError, match="unknown precision 'fp8'"):
        Predictor(run, precision="fp8")


def test_capture_defaults_to_the_runs_capture_pooling(run_dir, tmp_path):
    import yaml

    from emoscope.analysis import load_capture

    run = tmp_path / "cls-run"
    shutil.copytree(run_dir, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "capture_pooling": "cls"}))
    assert main(["analyze", str(run), "--capture", "--probe-size", "24", "--no-tsne"]) == 0
    assert load_capture(run / "captures" / "epoch_1.safetensors")[1]["pooling"] == "cls"


def test_evaluate_writes_its_own_folder_and_leaves_training_eval_byte_identical(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)

    def training_eval() -> dict:
        return {p.relative_to(run): p.read_bytes() for p in (run / "eval").rglob("*") if p.is_file()}

    before = training_eval()
    assert {"dev_predictions.jsonl", "test_metrics.json"} <= {p.name for p in before}
    out = run / "evaluations" / "dev"
    assert main(["evaluate", str(run), "--split", "dev"]) == 0
    assert f"evaluation: {out}" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"dev_metrics.json", "dev_per_emotion.csv", "dev_predictions.jsonl"}
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    assert (run / "evaluations" / "test" / "test_metrics.json").is_file()
    assert training_eval() == before

    written = out.joinpath("dev_metrics.json").stat().st_mtime_ns
    assert main(["evaluate", str(run), "--split", "dev"]) == 2
    assert capsys.readouterr().err == (
        f"emoscope: error: {out} already exists; pass --overwrite to replace its files, or --out another folder\n"
    )
    assert out.joinpath("dev_metrics.json").stat().st_mtime_ns == written
    assert main(["evaluate", str(run), "--split", "dev", "--overwrite"]) == 0
    elsewhere = tmp_path / "elsewhere"
    assert main(["evaluate", str(run), "--split", "test", "--out", str(elsewhere)]) == 0
    assert (elsewhere / "test_metrics.json").is_file() and training_eval() == before
