"""The ONNX export: a folder onnxruntime and tokenizers run alone, the onnx backend of `Predictor`, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SAMPLE_TEXTS, missing

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.evaluate.metrics import read_predictions
from emoscope.evaluate.thresholds import choose_thresholds
from emoscope.inference.onnx import CPU_DISABLED_OPTIMIZERS
from emoscope.inference.predictor import Predictor

LONG_TEXT = "I am so happy " * 500  # past the run's max_len: the exported tokenizer must truncate it
# What a user of the folder runs (docs/export.md's example), with torch, transformers and emoscope made unimportable.
ALONE = """
import json, sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "transformers", "emoscope"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Blocked())
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
folder, texts = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
session = ort.InferenceSession(
    f"{folder}/model.onnx", providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
)
batch = tokenizer.encode_batch(texts)
feed = {name: np.array([getattr(e, field) for e in batch], dtype=np.int64)
        for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"))}
print(json.dumps(session.run(None, feed)[0].tolist()))
"""


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    """A copy of the shared tiny run, exported to ONNX with int8 (accepted whatever its F1 here: the tiny run's
    test split is too small to decide it; the refusal has its own test)."""
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        missing("onnxruntime and onnxscript are not installed: pip install -e '.[test]'")
    folder = tmp_path_factory.mktemp("onnx") / "run"
    shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns("checkpoints", "hf"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("emoscope.export.onnx.INT8_MAX_F1_DROP", 1.0)
        assert main(["export", str(folder), "--format", "onnx", "--quantize", "int8"]) == 0
    return folder


def texts_of(run) -> list[str]:
    test = [json.loads(line)["text"] for line in (run / "eval" / "test_predictions.jsonl").read_text().splitlines()]
    return [*dict.fromkeys(SAMPLE_TEXTS), *test, LONG_TEXT]


def test_the_export_runs_in_onnxruntime_and_tokenizers_alone_and_matches_the_predictor(run):
    texts = texts_of(run)
    alone = subprocess.run(
        [sys.executable, "-c", ALONE, str(run / "onnx")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    probs = np.array(json.loads(alone.stdout))
    ours = Predictor(run, precision="fp32").predict_proba(texts)
    assert len(texts) > 40 and probs.shape == ours.shape
    np.testing.assert_allclose(probs, ours, rtol=0, atol=1e-4)
    for name in ("labels.json", "thresholds.json"):
        assert (run / "onnx" / name).read_text() == (run / name).read_text()
    assert (run / "onnx" / "model.int8.onnx").is_file() and (run / "onnx" / "thresholds.int8.json").is_file()


def test_the_int8_backend_runs_the_int8_model_with_thresholds_chosen_on_dev_for_it(run, tmp_path):
    import onnxruntime as ort

    texts = texts_of(run)
    int8 = Predictor(run, backend="onnx-int8", workers=1)
    assert type(int8).__name__ == "OnnxPredictor" and int8.precision == "int8"
    session = ort.InferenceSession(  # the rewrites the backend skips change int8's rounding
        str(run / "onnx" / "model.int8.onnx"),
        providers=["CPUExecutionProvider"],
        disabled_optimizers=CPU_DISABLED_OPTIMIZERS,
    )
    for text in texts[:5]:  # one at a time: int8 activations are scaled per batch
        [probs] = int8.predict_proba([text])
        ids = int8.tokenizer([text], truncation=True, max_length=int8.config.max_len, return_tensors="np")
        feed = {name: ids[name].astype(np.int64) for name in ("input_ids", "attention_mask")}
        np.testing.assert_allclose(session.run(None, feed)[0][0], probs, rtol=0, atol=1e-6)
    dev = read_predictions(run / "eval" / "dev_predictions.jsonl", int8.labels)
    config = int8.config
    chosen = choose_thresholds(
        config.threshold_strategy, dev.truth, int8.predict_proba(dev.texts), config.threshold, int8.labels
    )
    np.testing.assert_allclose(int8.thresholds, chosen.values, rtol=0, atol=1e-6)
    saved = json.loads((run / "onnx" / "thresholds.int8.json").read_text())
    assert saved["strategy"] == config.threshold_strategy and saved["chosen_on"] == chosen.chosen_on
    (tmp_path / "in.txt").write_text("\n".join(texts[:5]), encoding="utf-8")
    out = tmp_path / "int8.jsonl"
    assert (
        main(["predict", str(run), "--file", str(tmp_path / "in.txt"), "--out", str(out), "--backend", "onnx-int8"])
        == 0
    )
    for row, reference in zip(out.read_text(encoding="utf-8").splitlines(), int8.predict(texts[:5]), strict=True):
        assert json.loads(row)["predicted"] == reference["predicted"]


def test_attention_is_exported_in_its_eager_form(run):
    """An additive mask and Softmax, not SDPA's graph with a NaN guard after each Softmax (slower in onnxruntime)."""
    import onnx

    for name in ("model.onnx", "model.int8.onnx"):
        ops = [node.op_type for node in onnx.load(run / "onnx" / name).graph.node]
        assert ops.count("Softmax") >= 1 and "IsNaN" not in ops


def test_cpu_sessions_run_without_the_fused_skip_layer_norm(run, monkeypatch):
    """Its onnxruntime kernel was the int8 model's slowest op after the matmuls (docs/speed.md); without it the
    tiny model's probabilities are the same, so the sessions' options are what can be checked."""
    import onnxruntime as ort

    skipped = []
    real = ort.InferenceSession

    def spy(*args, **kwargs):
        skipped.append(kwargs.get("disabled_optimizers") or [])
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    for backend in ("onnx", "onnx-int8"):
        Predictor(run, backend=backend, workers=2).predict_proba(texts_of(run), batch_size=8)
    assert len(skipped) == 4 and all("SkipLayerNormFusion" in names for names in skipped)


def test_the_onnx_backend_equals_the_torch_backend(run, tmp_path):
    texts = texts_of(run)
    onnx, torch = Predictor(run, backend="onnx"), Predictor(run, precision="fp32")
    assert type(onnx).__name__ == "OnnxPredictor" and onnx.labels == torch.labels
    np.testing.assert_array_equal(onnx.thresholds, torch.thresholds)
    for a, b in zip(onnx.predict(texts), torch.predict(texts), strict=True):
        assert a["predicted"] == b["predicted"]
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), rtol=0, atol=1e-5)
    # Three batches at once share a one-thread session, in the input order, as one batch at a time does.
    one, side_by_side = Predictor(run, backend="onnx", workers=1), Predictor(run, backend="onnx", workers=3)
    np.testing.assert_allclose(
        side_by_side.predict_proba(texts, batch_size=4), one.predict_proba(texts, batch_size=4), rtol=0, atol=1e-6
    )
    assert "one_thread_session" in vars(side_by_side) and "one_thread_session" not in vars(one)
    (tmp_path / "in.txt").write_text("\n".join(texts[:5]), encoding="utf-8")
    rows = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.jsonl"
        args = ["predict", str(run), "--file", str(tmp_path / "in.txt"), "--out", str(out), "--backend", backend]
        assert main(args) == 0
        rows[backend] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for a, b in zip(rows["onnx"], rows["torch"], strict=True):
        assert a["predicted"] == b["predicted"]
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), rtol=0, atol=1e-5)


def test_an_ensemble_on_the_onnx_backend_runs_its_members_on_onnx(run, tmp_path):
    assert main(["ensemble", str(run), str(run), "--out", str(tmp_path / "ensemble")]) == 0
    ensemble = Predictor(tmp_path / "ensemble", backend="onnx")
    assert [type(m).__name__ for m in ensemble.members] == ["OnnxPredictor", "OnnxPredictor"]
    texts = texts_of(run)[:8]
    np.testing.assert_allclose(
        ensemble.predict_proba(texts), Predictor(run, backend="onnx").predict_proba(texts), rtol=0, atol=1e-6
    )


def test_int8_is_decided_on_dev_and_never_costs_the_fp32_model(run, tmp_path, capsys, monkeypatch):
    """Refused on dev, int8 is not written but the fp32 model is; the test numbers are reported after the choice,
    never consulted: an int8 that does better on test than on dev is still refused."""
    import emoscope.export.onnx as onnx_model

    scores, rows = iter([0.5, 0.4]), []  # fp32's dev macro-F1, then int8's

    def two_fold(config, truth, probs, labels):
        rows.append(len(truth))
        return next(scores)

    monkeypatch.setattr(onnx_model, "_two_fold_f1", two_fold)
    out = tmp_path / "o"
    assert main(["export", str(run), "--format", "onnx", "--quantize", "int8", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("int8: dev macro-F1 0.4000 (2-fold) against fp32's 0.5000: not written (it loses more ")
    assert "; test macro-F1 " in lines[1] and "reported after the choice" in lines[1]
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "model.onnx", "thresholds.json", "tokenizer.json"]
    dev_rows = len((run / "eval" / "dev_predictions.jsonl").read_text().splitlines())
    assert rows == [dev_rows, dev_rows]  # the decision read dev, not test


def test_bad_input_is_refused_in_one_line(run, tmp_path, capsys, monkeypatch):
    assert main(["export", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    assert capsys.readouterr().err.strip() == f"emoscope: error: run folder {tmp_path / 'nope'} does not exist"
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(run), "--format", "tflite"])
    assert exit_.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    assert main(["export", str(run), "--quantize", "int8"]) == 2
    assert "--quantize applies to --format onnx only" in capsys.readouterr().err
    unexported = tmp_path / "unexported"
    shutil.copytree(run, unexported, ignore=shutil.ignore_patterns("onnx"))
    assert main(["predict", str(unexported), "hi", "--backend", "onnx"]) == 2
    assert "model.onnx is missing: run `emoscope export" in capsys.readouterr().err
    assert main(["predict", str(unexported), "hi", "--backend", "onnx-int8"]) == 2
    assert "model.int8.onnx is missing: run `emoscope export" in capsys.readouterr().err
    with pytest.raises(UserError, match="the onnx-int8 backend runs its ONNX model as exported; precision fp32"):
        Predictor(run, backend="onnx-int8", precision="fp32")
    (unexported / "eval" / "dev_predictions.jsonl").unlink()
    assert main(["export", str(unexported), "--format", "onnx", "--quantize", "int8"]) == 2
    assert "dev_predictions.jsonl is missing: the int8 model's thresholds" in capsys.readouterr().err
    assert not (unexported / "onnx").exists()
    with pytest.raises(UserError, match="unknown backend 'tensorflow'"):
        Predictor(run, backend="tensorflow")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'emoscope[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
