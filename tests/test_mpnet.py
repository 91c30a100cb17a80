"""MPNet as a backbone, and training over a frozen bottom computed once (`--cache_frozen_layers`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FAMILIES, slice_goemotions, train_args

from emoscope.cli import main
from emoscope.data.batching import collate
from emoscope.inference import Predictor
from emoscope.models import build_classifier, encoder_layers
from emoscope.models.dropout import use_cpu_dropout
from emoscope.models.frozen import FrozenBottom


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("frozen_layers", [0, 1])
def test_the_cached_bottom_gives_the_logits_of_running_it(tiny_models, family, frozen_layers):
    """Same logits as the whole model with its frozen bottom in eval mode (no dropout there), and the same
    dropout masks above it: the cache changes where the bottom's outputs come from, nothing else."""
    torch.manual_seed(0)
    model = use_cpu_dropout(build_classifier(str(tiny_models[family]), "linear", 5, head_dropout=0.1))
    trained = len(encoder_layers(model.backbone)) - frozen_layers
    model.freeze(trained, freeze_embeddings=True)
    rng = np.random.default_rng(0)
    ids = [np.array([2, *rng.integers(5, 90, size=n), 3]) for n in rng.integers(1, 30, size=50)]
    model.train()  # as in the loop's steps: the cache must still be computed without dropout
    frozen = FrozenBottom(model, trained, ids, 0, torch.device("cpu"), "fp32", batch_size=7)
    rows = np.array([4, 31, 9, 17, 0])
    batch = collate([ids[r] for r in rows], 0)
    model.train()
    for module in [model.backbone.embeddings, *encoder_layers(model.backbone)[:frozen_layers]]:
        module.eval()
    torch.manual_seed(1)
    whole = model(batch["input_ids"], batch["attention_mask"])
    torch.manual_seed(1)
    cached = frozen(batch["input_ids"], batch["attention_mask"], rows=rows)
    torch.testing.assert_close(cached, whole, rtol=0, atol=1e-6)
    assert not torch.equal(whole, model(batch["input_ids"], batch["attention_mask"]))  # dropout above is live


def losses(run) -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["kind"] == "step"]


def test_training_on_the_cache_repeats_training_without_it(tiny_models, goemotions_dir, tmp_path):
    """Without dropout in the frozen bottom, a run on the cache takes the same steps as a run through it."""
    data = slice_goemotions(goemotions_dir, tmp_path, 96, 32, 32)
    common = ("--train_last_layers", "1", "--backbone_dropout", "0", "--log_every", "1", "--lexical_baseline", "false")
    runs = {}
    for name, extra in (("through", ()), ("cached", ("--cache_frozen_layers", "true"))):
        runs[name] = tmp_path / "runs" / name
        assert main(train_args(tiny_models["mpnet"], data, runs[name], *common, *extra)) == 0
    assert len(losses(runs["cached"])) == 6
    np.testing.assert_allclose(losses(runs["cached"]), losses(runs["through"]), rtol=1e-5)
    test = [(runs[n] / "eval" / "test_predictions.jsonl").read_text() for n in runs]
    probs = [np.array([json.loads(x)["probs"] for x in t.splitlines()]) for t in test]
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-5)


def test_the_cache_needs_frozen_layers_and_one_process(tiny_models, goemotions_dir, tmp_path, capsys):
    data = slice_goemotions(goemotions_dir, tmp_path, 40, 16, 16)
    code = main(train_args(tiny_models["mpnet"], data, tmp_path / "run", "--cache_frozen_layers", "true"))
    assert code == 2
    assert "--cache_frozen_layers needs --train_last_layers" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def mpnet_run(tiny_models, goemotions_dir, tmp_path_factory):
    data = slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("mpnet-data"), 96, 32, 32)
    run = tmp_path_factory.mktemp("mpnet") / "run"
    assert main(train_args(tiny_models["mpnet"], data, run, "--lexical_baseline", "false")) == 0
    return run


def test_the_exports_of_an_mpnet_run_score_as_the_predictor(mpnet_run, tmp_path):
    from transformers import pipeline

    texts = ["thank you so much!", "I can't believe this happened, I'm furious", "ok " * 300]
    predictor = Predictor(mpnet_run, precision="fp32")
    ours = predictor.predict_proba(texts)
    classify = pipeline("text-classification", model=str(mpnet_run / "hf"), top_k=None, trust_remote_code=True)
    for row, scores in zip(ours, classify(texts), strict=True):
        by_label = {s["label"]: s["score"] for s in scores}
        np.testing.assert_allclose([by_label[label] for label in predictor.labels], row, atol=1e-5)
    assert main(["export", str(mpnet_run), "--format", "onnx"]) == 0
    onnx = Predictor(mpnet_run, backend="onnx").predict_proba(texts)
    np.testing.assert_allclose(onnx, ours, atol=1e-4)


def test_the_real_mpnet_trains_a_step_and_predicts(goemotions_dir, tmp_path):
    """The genuine all-mpnet-base-v2 (110M) from its PyPI pieces: one optimizer step, then `Predictor`."""
    data = slice_goemotions(goemotions_dir, tmp_path, 9, 8, 8)
    run = tmp_path / "run"
    args = train_args("all-mpnet-base-v2", data, run, "--batch_size", "8", "--max_len", "16")
    assert main([*args, "--lexical_baseline", "false", "--eval_batch_size", "8"]) == 0
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in steps if x["kind"] == "epoch"] == [1]
    assert json.loads((run / "backbone_config.json").read_text())["num_hidden_layers"] == 12
    probs = Predictor(run, precision="fp32").predict_proba(["I love this", "this is awful"])
    assert probs.shape == (2, 28) and np.isfinite(probs).all()
