"""The training loop for real: tiny random encoders and the packaged MiniLM, end to end through the CLI."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import slice_goemotions, train_args
from safetensors.torch import load_file

from emoscope.cli import main
from emoscope.core.config import resolve_config
from emoscope.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_data(goemotions_dir, tmp_path_factory) -> Path:
    """A slice of the official files in the official layout: 320 train, 80 dev, 80 test rows."""
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-small"), 320, 80, 80)


def tiny_args(backbone: Path, data: Path, run: Path, *extra: str) -> list[str]:
    """Two epochs, a checkpoint every five steps: the shared tiny-run arguments, overridden."""
    return train_args(
        backbone, data, run, "--epochs", "2", "--lr", "1e-3", "--checkpoint_every", "5", "--log_every", "1", *extra
    )


def weights(run: Path) -> dict:
    return load_file(str(run / "model.safetensors"))


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_cli_trains_evaluates_and_predicts_end_to_end(tiny_models, small_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_models["bert"], small_data, run, "--head", "mlp-attention")) == 0
    for name in (
        "config.yaml",
        "run.json",
        "labels.json",
        "thresholds.json",
        "backbone_config.json",
        "model.safetensors",
        "metrics.jsonl",
        "tokenizer/tokenizer_config.json",
        "eval/test_metrics.json",
        "eval/test_per_emotion.csv",
        "eval/dev_metrics.json",
        "baseline/eval/test_metrics.json",
        "baseline/eval/dev_predictions.jsonl",
    ):
        assert (run / name).exists(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]
    assert all(r["examples_per_s"] > 0 for r in records if r["kind"] == "step")
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert thresholds["chosen_on"] == "dev" and len(thresholds["thresholds"]) == 28
    info = json.loads((run / "run.json").read_text())
    assert info["wall_seconds"] > 0 and info["peak_rss_mb"] > 100  # torch alone is more
    out = capsys.readouterr().out
    assert "macro" in out.lower() and str(run) in out and "lexical floor" in out

    assert main(["predict", str(run), "I love it, thanks!", "--top-k", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "I love it, thanks!" and sum("%" in line for line in printed) == 3

    texts = tmp_path / "texts.txt"
    texts.write_text("thank you!\nthis is terrible\n", encoding="utf-8")
    assert main(["predict", str(run), "--file", str(texts), "--out", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["thank you!", "this is terrible"] and len(rows[0]["probs"]) == 28

    assert main(["evaluate", str(run), "--split", "dev"]) == 0


def test_run_json_times_span_the_data_loading(tiny_models, small_data, tmp_path, monkeypatch):
    """`started` is read from the clock `wall_seconds` counts from, so a slow data load (here 3 s) is inside both."""
    import emoscope.train.loop as loop

    def slow_load(config):
        time.sleep(3)
        return load(config)

    load = loop.load_data
    monkeypatch.setattr(loop, "load_data", slow_load)
    run = tmp_path / "run"
    args = tiny_args(tiny_models["bert"], small_data, run, "--epochs", "1", "--lexical_baseline", "false")
    assert main(args) == 0
    info = json.loads((run / "run.json").read_text())
    started, finished = (datetime.datetime.fromisoformat(info[k]) for k in ("started", "finished"))
    assert info["wall_seconds"] >= 3
    assert (finished - started).total_seconds() >= info["wall_seconds"] - 1  # both stamps are to the second


def test_a_seed_repeats_exactly_and_another_seed_differs(tiny_models, small_data, tmp_path):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        runs[name] = tmp_path / name
        assert (
            main(
                tiny_args(
                    tiny_models["distilbert"], small_data, runs[name], "--seed", seed, "--head", "cnn", "--epochs", "1"
                )
            )
            == 0
        )
    assert same_weights(weights(runs["a"]), weights(runs["b"]))
    assert not same_weights(weights(runs["a"]), weights(runs["c"]))
    assert (runs["a"] / "eval/test_metrics.json").read_text() == (runs["b"] / "eval/test_metrics.json").read_text()


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emoscope", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_resume_after_sigkill_equals_an_uninterrupted_run(tiny_models, small_data, tmp_path):
    args = tiny_args(tiny_models["roberta"], small_data, tmp_path / "straight", "--checkpoint_every", "3")
    assert main(args) == 0
    killed = tmp_path / "killed"
    proc = _cli(*tiny_args(tiny_models["roberta"], small_data, killed, "--checkpoint_every", "3"))
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "latest").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "eval" / "test_metrics.json").exists()
    assert main(tiny_args(tiny_models["roberta"], small_data, killed, "--checkpoint_every", "3", "--resume")) == 0
    assert same_weights(weights(tmp_path / "straight"), weights(killed))
    assert (tmp_path / "straight" / "eval/test_metrics.json").read_text() == (
        killed / "eval/test_metrics.json"
    ).read_text()


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(tiny_models, small_data, tmp_path):
    common = ["--epochs", "1", "--head_dropout", "0", "--backbone_dropout", "0", "--batch_size", "16"]
    one = tmp_path / "one"
    assert main(tiny_args(tiny_models["bert"], small_data, one, *common)) == 0
    two = tmp_path / "two"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "emoscope",
            *tiny_args(tiny_models["bert"], small_data, two, *common),
        ],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((two / "run.json").read_text())["world_size"] == 2
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 2e-5, key
    # What rank 0 makes of those weights: the dev scores, the best epoch and the thresholds chosen on dev.
    dev = [
        [json.loads(line) for line in (run / "eval/dev_predictions.jsonl").read_text().splitlines()]
        for run in (one, two)
    ]
    assert [r["id"] for r in dev[0]] == [r["id"] for r in dev[1]]
    assert (
        max(abs(p - q) for r, s in zip(*dev, strict=True) for p, q in zip(r["probs"], s["probs"], strict=True)) < 1e-5
    )
    best = [
        [
            r["best_epoch"]
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "epoch"
        ]
        for run in (one, two)
    ]
    assert best[0] == best[1] == [1]
    assert json.loads((one / "thresholds.json").read_text()) == json.loads((two / "thresholds.json").read_text())
    # At least one weight must have moved, or the comparison proves nothing.
    first = load_file(str(tiny_models["bert"] / "model.safetensors"))
    moved = [k for k in first if f"backbone.{k}" in a and not bool((first[k] == a[f"backbone.{k}"]).all())]
    assert moved


def test_packaged_minilm_learns_on_real_examples(small_data, tmp_path):
    run = tmp_path / "minilm"
    assert (
        main(
            [
                "train",
                "--data_dir",
                str(small_data),
                "--run_dir",
                str(run),
                "--max_train_examples",
                "200",
                "--epochs",
                "1",
                "--batch_size",
                "16",
                "--progress",
                "false",
                "--log_every",
                "1",
                "--warmup_ratio",
                "0",
            ]
        )
        == 0
    )
    losses = [
        json.loads(line)["loss"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "step"
    ]
    assert len(losses) == 13
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_an_existing_run_folder_is_never_overwritten_silently(tiny_models, small_data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    code = main(tiny_args(tiny_models["bert"], small_data, run))
    assert code == 2 and (run / "keep.txt").read_text() == "mine"
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_seed_a_flags_are_accepted_as_written(tmp_path):
    from emoscope.cli import build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--preset",
            "seed-a",
            "--train_csv",
            "data/train.csv",
            "--test_csv",
            "data/test.csv",
            "--epochs",
            "10",
            "--batch_size",
            "32",
            "--lr",
            "5e-6",
            "--precision",
            "fp16",
            "--max_len",
            "128",
            "--save_dir",
            "checkpoints",
            "--visualize",
        ]
    )
    overrides = {k: v for k, v in vars(args).items() if k not in {"command", "preset", "func"}}
    config = resolve_config("seed-a", overrides)
    assert (config.train_file, config.test_file, config.run_dir) == ("data/train.csv", "data/test.csv", "checkpoints")
    assert (config.epochs, config.batch_size, config.lr, config.precision, config.max_len, config.visualize) == (
        10,
        32,
        5e-6,
        "fp16",
        128,
        True,
    )
    assert (config.backbone, config.head, config.label_smoothing) == ("roberta-large", "mlp-attention", 0.1)
    # The seed's numbers on the command line change nothing: the preset alone holds them (test_presets.py
    # checks every field of the preset file against the seed).
    preset = resolve_config("seed-a", {})
    numbers = ("epochs", "batch_size", "lr", "precision", "max_len")
    assert {n: getattr(preset, n) for n in numbers} == {n: getattr(config, n) for n in numbers}


@pytest.mark.parametrize(
    "preset,field,value",
    [
        ("seed-b", "head", "cnn"),
        ("seed-b", "train_last_layers", 3),
        ("seed-b", "threshold", 0.51),
        ("seed-b", "schedule", "cosine"),
        ("cpu-default", "pooling", "mean"),
    ],
)
def test_presets_hold_the_published_designs(preset, field, value):
    assert getattr(resolve_config(preset, {}), field) == value


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"lr": -1.0}, "--lr must be positive, got -1.0"),
        ({"batch_size": 0}, "--batch_size must be positive, got 0"),
        ({"epochs": 0}, "--epochs must be positive, got 0"),
        ({"precision": "fp8"}, "--precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
        ({"train_streams": 2, "compile": True}, "--train_streams above 1 and --compile do not go together; choose one"),
        (
            {"head": "cnn", "pooling": "cls"},
            "--pooling cls applies to the linear head only; the cnn head pools its own way (leave --pooling at mean)",
        ),
    ],
)
def test_bad_options_are_one_clear_line(overrides, message):
    with pytest.raises(UserError) as info:
        resolve_config("cpu-default", overrides)
    assert str(info.value) == message


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown preset 'nope'; choose one of cpu-default, mpnet-base, seed-a, seed-b"):
        resolve_config("nope", {})


def test_fp16_on_cpu_and_max_len_beyond_the_model_are_refused_before_training(
    tiny_models, small_data, tmp_path, capsys
):
    assert main(tiny_args(tiny_models["bert"], small_data, tmp_path / "a", "--precision", "fp16")) == 2
    assert "fp16 needs a CUDA GPU" in capsys.readouterr().err
    assert main(tiny_args(tiny_models["bert"], small_data, tmp_path / "b", "--max_len", "4096")) == 2
    assert "--max_len 4096 is beyond the backbone's limit of 128 tokens" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_visualize_captures_every_epoch_then_analyses_and_reports(tiny_models, small_data, tmp_path, capsys):
    run = tmp_path / "viz"
    assert (
        main(
            tiny_args(
                tiny_models["bert"], small_data, run, "--head", "mlp-attention", "--visualize", "--probe_size", "80"
            )
        )
        == 0
    )
    assert sorted(p.name for p in (run / "captures").glob("epoch_*.safetensors")) == [
        "epoch_0.safetensors",
        "epoch_1.safetensors",
        "epoch_2.safetensors",
    ]
    assert len((run / "captures" / "probe.jsonl").read_text().splitlines()) == 80
    assert (run / "analysis_inputs" / "cooccurrence.csv").is_file()
    for name in ("layer_metrics.csv", "summary.md", "tsne_coords.csv", "report.html"):
        path = run / "analysis" / name if name != "report.html" else run / name
        assert path.stat().st_size > 0, name
    assert f"report: {run / 'report.html'}" in capsys.readouterr().out

    # Another seed captures the same probe texts, so the two runs can be analysed together.
    other = tmp_path / "viz-seed-7"
    args = tiny_args(tiny_models["bert"], small_data, other, "--visualize", "--probe_size", "80", "--seed", "7")
    assert main(args) == 0
    assert (other / "captures" / "probe.jsonl").read_text() == (run / "captures" / "probe.jsonl").read_text()
    # (fewer resamples and no t-SNE: this asks that the two runs go together, not for the numbers)
    both = ["analyze", str(run), str(other), "--out", str(tmp_path / "both"), "--no-tsne"]
    assert main([*both, "--resamples", "20", "--permutations", "20"]) == 0
    assert (tmp_path / "both" / "runs_layer_metrics.csv").stat().st_size > 0


def test_a_lexical_floor_that_cannot_be_fitted_leaves_the_run_alone(tmp_path, capsys):
    """Texts with no two-letter word give TF-IDF no vocabulary: the run goes on without its floor."""
    from emoscope.core.config import TrainConfig
    from emoscope.data import Example, load_taxonomy
    from emoscope.data.splits import SplitData
    from emoscope.recipes.train import lexical_floor

    examples = [Example("!", (0,), "a"), Example("?", (1,), "b")]
    lexical_floor(
        tmp_path / "baseline", TrainConfig(), SplitData(load_taxonomy("original"), examples, examples, examples)
    )
    assert "lexical floor: not fitted (empty vocabulary" in capsys.readouterr().out
    assert not (tmp_path / "baseline" / "eval").exists()
