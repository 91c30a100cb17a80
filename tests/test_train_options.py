"""Every option that changes training, checked against what it promises: tiny models, one or two epochs."""

from __future__ import annotations

import csv
import json
import math
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import slice_goemotions, train_args

from emoscope.cli import main
from emoscope.core.config import TrainConfig, resolve_config
from emoscope.core.errors import UserError
from emoscope.core.runfolder import read_config
from emoscope.data.labels import load_taxonomy
from emoscope.models import build_classifier
from emoscope.models.weights import read_weights
from emoscope.train import loop, train
from emoscope.train.losses import hierarchy_loss, multilabel_loss, positive_weights, rdrop_loss
from emoscope.train.setup import param_groups


@pytest.fixture(scope="module")
def data96(goemotions_dir, tmp_path_factory) -> Path:
    """96 train rows: three batches of 32, six of 16."""
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-96"), 96, 32, 32)


def train_only(backbone: Path, data: Path, run: Path, **overrides) -> Path:
    """The loop alone (no thresholds, floor or export after it): fp32, one epoch, batch 16, no progress bar."""
    values = {
        "backbone": str(backbone),
        "data_dir": str(data),
        "run_dir": str(run),
        "epochs": 1,
        "batch_size": 16,
        "precision": "fp32",
        "progress": False,
        **overrides,
    }
    return train(resolve_config("cpu-default", values)).run_dir


def records(run: Path, kind: str) -> list[dict]:
    """The run's `metrics.jsonl` lines of one kind ("step" or "epoch")."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


# ---------------------------------------------------------------- gradient accumulation


def test_two_accumulated_batches_of_16_make_the_update_of_one_batch_of_32(tiny_models, data96, tmp_path):
    common = {"group_by_length": False, "head_dropout": 0.0, "backbone_dropout": 0.0, "lr": 1e-3}
    accumulated = train_only(tiny_models["bert"], data96, tmp_path / "accum", grad_accum=2, **common)
    whole = train_only(tiny_models["bert"], data96, tmp_path / "whole", batch_size=32, **common)
    a, _ = read_weights(accumulated / "model.safetensors")
    b, _ = read_weights(whole / "model.safetensors")
    assert a.keys() == b.keys()
    # Tight: AdamW all but ignores a gradient's scale, so a wrong divisor moves weights by only ~1e-5.
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-6, key
    steps = [[r["step"] for r in records(run, "epoch")] for run in (accumulated, whole)]
    assert steps == [[3], [3]]
    start, _ = read_weights(tiny_models["bert"] / "model.safetensors")
    assert any(not torch.equal(start[k], a[f"backbone.{k}"]) for k in start if f"backbone.{k}" in a)


# ---------------------------------------------------------------- training streams


def test_two_training_streams_make_the_update_of_one_and_run_on_two_threads(tiny_models, data96, tmp_path, monkeypatch):
    common = {"group_by_length": False, "head_dropout": 0.0, "backbone_dropout": 0.0, "lr": 1e-3, "batch_size": 32}
    one = train_only(tiny_models["bert"], data96, tmp_path / "one", **common)
    threads = set()
    seeded = loop.stream_generator  # entered by every forward pass, in the thread that runs it

    def recording(generator):
        threads.add((threading.get_ident(), generator is not None))
        return seeded(generator)

    monkeypatch.setattr(loop, "stream_generator", recording)
    two = train_only(tiny_models["bert"], data96, tmp_path / "two", train_streams=2, **common)
    # Two worker threads, each part with a dropout generator of its own; none of it on the calling thread.
    assert len(threads) == 2 and all(own for _, own in threads)
    assert threading.get_ident() not in {ident for ident, _ in threads}
    a, _ = read_weights(one / "model.safetensors")
    b, _ = read_weights(two / "model.safetensors")
    for key in a:  # tight, as for accumulation: a wrong divisor moves weights by ~1e-5
        assert (a[key] - b[key]).abs().max() < 1e-6, key
    assert [r["step"] for r in records(two, "epoch")] == [3]


def test_training_streams_with_dropout_repeat_exactly_and_resume(tiny_models, data96, tmp_path):
    options = {"lr": 1e-3, "train_streams": 2, "checkpoint_every": 1, "keep_checkpoints": 10}
    runs = [train_only(tiny_models["bert"], data96, tmp_path / name, **options) for name in ("a", "b")]
    a, b = (read_weights(run / "model.safetensors")[0] for run in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain, _ = read_weights(train_only(tiny_models["bert"], data96, tmp_path / "c", lr=1e-3) / "model.safetensors")
    assert any(not torch.equal(a[k], plain[k]) for k in a)  # the streams draw masks of their own
    # Resumed from step 3 of 6, the streams draw the masks the uninterrupted run drew.
    for i in (4, 5, 6):
        shutil.rmtree(runs[1] / "checkpoints" / f"step_{i}")
    (runs[1] / "checkpoints" / "latest").write_text("step_3")
    resumed, _ = read_weights(
        train_only(tiny_models["bert"], data96, runs[1], resume=True, **options) / "model.safetensors"
    )
    assert all(torch.equal(a[k], resumed[k]) for k in a)


# ---------------------------------------------------------------- the loss


LOGITS = [[2.0, -1.0, 0.5], [-0.3, 0.0, 1.5]]
TARGETS = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def focal_term(p: float, y: float, pw: float, gamma: float) -> float:
    """-w [pw y log p + (1 - y) log (1 - p)], w = (1 - p_true) ** gamma."""
    p_true = p * y + (1 - p) * (1 - y)
    return -(pw * y * math.log(p) + (1 - y) * math.log(1 - p)) * (1 - p_true) ** gamma


def asymmetric_term(p: float, y: float, pw: float, gamma_neg: float, clip: float) -> float:
    """-[pw y log p + (1 - y) p_m ** gamma_neg log (1 - p_m)], p_m = max(p - clip, 0)."""
    p_m = max(p - clip, 0.0)
    return -(pw * y * math.log(p) + (1 - y) * p_m**gamma_neg * math.log(1 - p_m))


def hand_loss(term, smoothing: float = 0.0, pos_weight=(1.0, 1.0, 1.0)) -> list[float]:
    """Per-example mean over labels of `term(p, smoothed y, pos_weight)`."""
    out = []
    for logits, targets in zip(LOGITS, TARGETS, strict=True):
        terms = [
            term(1 / (1 + math.exp(-z)), y * (1 - smoothing) + 0.5 * smoothing, pw)
            for z, y, pw in zip(logits, targets, pos_weight, strict=True)
        ]
        out.append(sum(terms) / len(terms))
    return out


@pytest.mark.parametrize(
    "gamma_neg,clip,smoothing,pos_weight",
    [(4.0, 0.05, 0.0, None), (2.0, 0.0, 0.1, (3.0, 0.5, 2.0)), (1.0, 0.3, 0.0, (3.0, 0.5, 2.0))],
)
def test_the_asymmetric_loss_is_its_formula(gamma_neg, clip, smoothing, pos_weight):
    config = TrainConfig(asl_gamma_neg=gamma_neg, asl_clip=clip, label_smoothing=smoothing)
    weight = torch.tensor(pos_weight) if pos_weight else None
    got = multilabel_loss(torch.tensor(LOGITS), torch.tensor(TARGETS), config, weight)
    expected = hand_loss(partial(asymmetric_term, gamma_neg=gamma_neg, clip=clip), smoothing, pos_weight or (1,) * 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("gamma_neg,clip", [(0.5, 0.0), (4.0, 0.05), (1.0, 0.3)])
def test_the_asymmetric_loss_stays_finite_at_saturated_logits_and_below_the_margin(gamma_neg, clip):
    logits = torch.tensor([[-30.0, -0.1, 3.0, 30.0], [0.0, -8.0, 30.0, 1.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    loss = multilabel_loss(logits, targets, TrainConfig(asl_gamma_neg=gamma_neg, asl_clip=clip), None)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    "options,pos_weight",
    [
        ({}, None),
        ({"label_smoothing": 0.2}, None),
        ({"focal_gamma": 2.0}, None),
        ({"focal_gamma": 1.5, "label_smoothing": 0.1}, (3.0, 0.5, 2.0)),
        ({}, (3.0, 0.5, 2.0)),
    ],
)
def test_the_loss_is_the_formula(options, pos_weight):
    weight = torch.tensor(pos_weight) if pos_weight else None
    got = multilabel_loss(torch.tensor(LOGITS), torch.tensor(TARGETS), TrainConfig(**options), weight)
    term = partial(focal_term, gamma=options.get("focal_gamma", 0.0))
    expected = hand_loss(term, options.get("label_smoothing", 0.0), pos_weight or (1,) * 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_the_hierarchy_loss_is_bce_of_each_groups_log_sum_exp():
    membership = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]  # group A = labels 0 and 1, group B = labels 1 and 2
    got = hierarchy_loss(torch.tensor(LOGITS), torch.tensor(TARGETS), torch.tensor(membership))
    expected = []
    for logits, targets in zip(LOGITS, TARGETS, strict=True):
        terms = []
        for members in ((0, 1), (1, 2)):
            p = 1 / (1 + math.exp(-math.log(sum(math.exp(logits[i]) for i in members))))
            y = max(targets[i] for i in members)
            terms.append(-(y * math.log(p) + (1 - y) * math.log(1 - p)))
        expected.append(sum(terms) / 2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_the_coarse_groups_are_the_ekman_and_sentiment_groups_of_two_or_more_emotions():
    taxonomy = load_taxonomy("original")
    names, membership = taxonomy.coarse_groups()
    members = {
        name: {taxonomy.labels[i] for i in np.flatnonzero(column)}
        for name, column in zip(names, membership.T, strict=True)
    }
    assert members["ekman:anger"] == {"anger", "annoyance", "disapproval"}
    assert "ekman:disgust" not in members and not any(name.endswith(":neutral") for name in names)
    sentiment = membership[:, [n.startswith("sentiment:") for n in names]]
    assert sentiment.sum(1).tolist() == [1.0] * 27 + [0.0]  # every emotion but neutral in exactly one
    with pytest.raises(UserError, match="groups of the original emotions"):
        load_taxonomy("ekman").coarse_groups()


def test_the_auxiliary_losses_add_to_the_loss_and_nothing_to_the_saved_model(tiny_models, data96, tmp_path):
    plain = train_only(tiny_models["bert"], data96, tmp_path / "plain", log_every=1)
    aux = train_only(tiny_models["bert"], data96, tmp_path / "aux", log_every=1, aux_weight=1.0)
    first = [records(run, "step")[0] for run in (plain, aux)]
    assert first[1]["loss"] > first[0]["loss"] + 0.1  # the same first batch and weights, plus the groups' BCE
    (plain_weights, _), (aux_weights, _) = (read_weights(run / "model.safetensors") for run in (plain, aux))
    assert plain_weights.keys() == aux_weights.keys()
    assert any(not torch.equal(plain_weights[k], aux_weights[k]) for k in plain_weights)


def test_multi_sample_dropout_draws_one_mask_per_sample_in_training_only(tiny_models):
    model = build_classifier(str(tiny_models["bert"]), "linear", 5, head_dropout=0.5)
    ids, mask = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    model.train()
    torch.manual_seed(0)
    samples = model(ids, mask, dropout_samples=3)
    assert len(samples) == 3 and not torch.equal(samples[0], samples[1]) and not torch.equal(samples[1], samples[2])
    model.eval()
    plain = model(ids, mask)
    assert all(torch.equal(s, plain) for s in model(ids, mask, dropout_samples=3))


def test_the_multi_sample_loss_is_the_mean_over_samples_not_their_sum(tiny_models, data96, tmp_path):
    """Without dropout anywhere the K samples are the same logits: the mean of K equal losses is the plain
    loss, so the two runs take the same steps."""
    no_dropout = {"head_dropout": 0.0, "backbone_dropout": 0.0, "log_every": 1}
    one = train_only(tiny_models["bert"], data96, tmp_path / "one", **no_dropout)
    three = train_only(tiny_models["bert"], data96, tmp_path / "three", dropout_samples=3, **no_dropout)
    losses = [[r["loss"] for r in records(run, "step")] for run in (one, three)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_the_rdrop_loss_is_the_mean_of_both_bernoulli_kl_divergences():
    first, second = torch.randn(4, 6) * 3, torch.randn(4, 6) * 3
    p, q = torch.sigmoid(first.double()), torch.sigmoid(second.double())

    def kl(a, b):
        return a * torch.log(a / b) + (1 - a) * torch.log((1 - a) / (1 - b))

    expected = (0.5 * (kl(p, q) + kl(q, p))).mean(dim=1)
    torch.testing.assert_close(rdrop_loss(first, second).double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(rdrop_loss(first, first), torch.zeros(4))


def test_rdrop_runs_each_batch_twice_and_adds_the_weighted_divergence(tiny_models, data96, tmp_path):
    """Without dropout the two passes are the same, so R-Drop takes the plain run's steps; with dropout the
    same seed draws the same two masks whatever the weight, so a larger weight adds more to the same loss."""
    no_dropout = {"head_dropout": 0.0, "backbone_dropout": 0.0, "log_every": 1}
    plain = train_only(tiny_models["bert"], data96, tmp_path / "plain", **no_dropout)
    twice = train_only(tiny_models["bert"], data96, tmp_path / "twice", rdrop_weight=5.0, **no_dropout)
    losses = [[r["loss"] for r in records(run, "step")] for run in (plain, twice)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    dropout = {"head_dropout": 0.5, "log_every": 1, "epochs": 1}
    light = train_only(tiny_models["bert"], data96, tmp_path / "light", rdrop_weight=1e-6, **dropout)
    heavy = train_only(tiny_models["bert"], data96, tmp_path / "heavy", rdrop_weight=50.0, **dropout)
    first = [records(run, "step")[0]["loss"] for run in (light, heavy)]
    assert first[1] > first[0] + 1e-3


def test_positive_weights_are_negatives_over_positives_capped_at_50():
    # 200 texts: label 0 on 40, label 1 on 1, label 2 on none (counted as one of 200: 199 / 1), label 3 on all.
    y = np.zeros((200, 4), dtype=np.float32)
    y[:40, 0] = 1
    y[0, 1] = 1
    y[:, 3] = 1
    assert positive_weights(y, "none") is None
    balanced = [160 / 40, 50.0, 50.0, 0.0]  # 199 / 1 is capped
    np.testing.assert_allclose(positive_weights(y, "balanced").numpy(), balanced, rtol=1e-6)
    np.testing.assert_allclose(
        positive_weights(y, "sqrt").numpy(), [2.0, math.sqrt(199), math.sqrt(199), 0.0], rtol=1e-6
    )


# ---------------------------------------------------------------- learning rates per parameter


def test_each_parameter_gets_its_layers_learning_rate_and_only_matrices_decay(tiny_models):
    model = build_classifier(str(tiny_models["bert"]), "mlp-attention", 5, head_dropout=0.0)
    config = TrainConfig(lr=1e-3, head_lr=7e-3, layer_lr_decay=0.5, weight_decay=0.05)
    setting = {id(p): (g["lr"], g["weight_decay"]) for g in param_groups(model, config) for p in g["params"]}
    named = dict(model.named_parameters())
    assert setting.keys() == {id(p) for p in named.values()}
    seen = set()
    for name, param in named.items():
        if name.startswith("head."):
            lr = 7e-3
        elif ".embeddings." in name:
            lr = 1e-3 * 0.5**2  # one step below the first of the two layers
        elif ".layer.0." in name:
            lr = 1e-3 * 0.5
        else:  # the top layer, and whatever sits above the layers (a pooler)
            lr = 1e-3
        decay = 0.0 if name.endswith("bias") or "LayerNorm" in name else 0.05
        assert setting[id(param)] == (pytest.approx(lr), decay), name
        seen.add(lr)
    assert len(seen) == 4
    same = param_groups(model, TrainConfig(lr=1e-3, head_lr=None, layer_lr_decay=1.0))
    assert {g["lr"] for g in same} == {1e-3}


# ---------------------------------------------------------------- early stopping


def test_early_stopping_stops_keeps_the_best_epoch_and_resume_does_not_go_on(tiny_models, data96, tmp_path, capsys):
    # A learning rate this small leaves every weight as it was: dev macro-F1 never rises after epoch 1.
    options = {"epochs": 5, "lr": 1e-12, "head_lr": 1e-12, "early_stopping_patience": 2}
    run = train_only(tiny_models["bert"], data96, tmp_path / "run", **options)
    epochs = records(run, "epoch")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["best_epoch"] == 1
    assert "early stopping: no dev improvement for 2 epochs" in capsys.readouterr().out
    assert read_weights(run / "model.safetensors")[1]["epoch"] == "1"
    before = (run / "metrics.jsonl").read_text()
    train_only(tiny_models["bert"], data96, run, resume=True, **options)
    assert (run / "metrics.jsonl").read_text() == before


# ---------------------------------------------------------------- torch.compile


def test_a_compiled_training_step_learns_what_the_eager_one_does(tiny_models, data96, tmp_path):
    from torch._dynamo.utils import counters

    options = {"head_dropout": 0.0, "backbone_dropout": 0.0, "lr": 1e-3, "log_every": 1}
    eager = train_only(tiny_models["bert"], data96, tmp_path / "eager", **options)
    counters.clear()
    compiled = train_only(tiny_models["bert"], data96, tmp_path / "compiled", compile=True, **options)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo did compile the step
    losses = [[r["loss"] for r in records(run, "step")] for run in (eager, compiled)]
    assert len(losses[0]) == 6 and losses[1] == pytest.approx(losses[0], rel=1e-4)


# ---------------------------------------------------------------- weight averaging


def test_ema_saves_the_average_of_every_steps_weights_and_survives_a_resume(tiny_models, data96, tmp_path):
    """Six steps, a checkpoint after each: the raw weights of every step are on disk to average by hand."""
    decay = 0.6
    options = {"ema_decay": decay, "checkpoint_every": 1, "keep_checkpoints": 10, "lr": 1e-3}
    run = train_only(tiny_models["bert"], data96, tmp_path / "ema", **options)
    steps = [read_weights(run / "checkpoints" / f"step_{i}" / "model.safetensors")[0] for i in range(1, 7)]
    saved, _ = read_weights(run / "model.safetensors")
    assert saved.keys() == steps[0].keys()
    for key in saved:
        expected = steps[0][key]  # the first update copies, then each step blends in
        for raw in steps[1:]:
            expected = decay * expected + (1 - decay) * raw[key]
        assert torch.allclose(saved[key], expected, atol=1e-6), key
    assert any(not torch.equal(saved[k], steps[-1][k]) for k in saved)
    [record] = records(run, "epoch")
    assert 0 <= record["dev_macro_f1_raw_weights"] <= 1

    # The average is training state: resumed from step 3, the run ends with the same average.
    for i in (4, 5, 6):
        shutil.rmtree(run / "checkpoints" / f"step_{i}")
    (run / "checkpoints" / "latest").write_text("step_3")
    train_only(tiny_models["bert"], data96, run, resume=True, **options)
    resumed, _ = read_weights(run / "model.safetensors")
    assert all(torch.allclose(resumed[k], saved[k], atol=1e-6) for k in saved)

    # Training itself is untouched: the raw weights equal a run without the average.
    plain = train_only(tiny_models["bert"], data96, tmp_path / "plain", **{**options, "ema_decay": None})
    last = read_weights(plain / "checkpoints" / "step_6" / "model.safetensors")[0]
    assert all(torch.equal(last[k], steps[-1][k]) for k in last)


# ---------------------------------------------------------------- taxonomies


@pytest.mark.parametrize(
    "taxonomy,labels,foreign",
    [
        # Files hold GoEmotions names; a sentiment group is none of them. (Ekman's names all are.)
        ("ekman", ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"], "positive"),
        ("sentiment", ["positive", "negative", "ambiguous", "neutral"], None),
    ],
)
def test_a_grouped_taxonomy_trains_evaluates_and_predicts(
    tiny_models, data96, tmp_path, capsys, taxonomy, labels, foreign
):
    run = tmp_path / taxonomy
    assert main(train_args(tiny_models["bert"], data96, run, "--taxonomy", taxonomy)) == 0
    saved = json.loads((run / "labels.json").read_text())
    assert (saved["taxonomy"], saved["labels"]) == (taxonomy, labels)
    rows = (run / "eval" / "test_per_emotion.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == labels
    assert list(json.loads((run / "thresholds.json").read_text())["thresholds"]) == labels
    capsys.readouterr()

    assert main(["predict", str(run), "thank you so much!", "--top-k", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    shown = [line for line in printed[1:] if "%" in line]
    assert printed[0] == "thank you so much!" and len(shown) == 2
    assert all(any(label in line for label in labels) for line in shown), shown

    # GoEmotions names are mapped into the run's groups; names of another grouping are refused in one line.
    ours = tmp_path / "ours.jsonl"
    ours.write_text(json.dumps({"text": "so happy", "labels": ["joy"]}) + "\n", encoding="utf-8")
    assert main(["evaluate", str(run), "--file", str(ours)]) == 0
    if foreign is None:
        return
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text(json.dumps({"text": "so happy", "labels": [foreign]}) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--file", str(theirs)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(theirs) in err and repr(foreign) in err, err
    assert not (run / "evaluations" / "theirs").exists()


def test_own_files_with_another_text_column_train_and_evaluate(tiny_models, data96, tmp_path, capsys):
    """`--text_column` names where the text is in train, dev and test files and in `evaluate --file`."""
    rows = [line.split("\t") for line in (data96 / "train.tsv").read_text().splitlines()]
    own = tmp_path / "own.csv"
    with own.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "comment", "labels"])
        writer.writerows([i, text, labels] for text, labels, i in rows)
    run = tmp_path / "run"
    common = ["--train_file", str(own), "--test_file", str(own), "--lexical_baseline", "false"]
    assert main(train_args(tiny_models["bert"], data96, run, *common, "--text_column", "comment")) == 0
    assert read_config(run).text_column == "comment"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--file", str(own), "--text_column", "comment"]) == 0
    assert main(["evaluate", str(run), "--file", str(own), "--out", str(tmp_path / "e")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "no 'text' column in the header; found columns: 'id', 'comment', 'labels'; name the text column with "
            "--text_column NAME"
        )
    )
