"""A run's classifier as one ONNX graph, checked against torch before it is written (`emoscope export --format
onnx`); `emoscope.inference.onnx` runs it.

`RUN/onnx/` holds `model.onnx` (backbone, pooling, head and sigmoid in fp32: input_ids and attention_mask
[batch, sequence] in, probabilities [batch, labels] out), `tokenizer.json` (it truncates at the run's max_len and
pads a batch, so the `tokenizers` library alone encodes texts as `Predictor` does), `labels.json` and
`thresholds.json`: onnxruntime and tokenizers run it, without torch or emoscope. With `--quantize int8` it adds
`model.int8.onnx` and `thresholds.int8.json`, chosen on dev for the int8 model's own probabilities.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    ENSEMBLE_INFO,
    LABELS,
    ONNX_EXPORT,
    ONNX_INT8_MODEL,
    ONNX_INT8_THRESHOLDS,
    ONNX_MODEL,
    ONNX_TOKENIZER,
    THRESHOLDS,
    ThresholdChoice,
    check_run_dir,
    eval_file,
    save_thresholds,
    split_predictions,
)
from emoscope.core.vocab import QUANTIZATIONS
from emoscope.data.batching import collate, encode_texts
from emoscope.evaluate.metrics import compute_metrics, read_predictions
from emoscope.evaluate.thresholds import choose_thresholds
from emoscope.inference.onnx import INSTALL_HINT, onnx_runtime, onnx_session, session_probs
from emoscope.inference.predictor import Predictor
from emoscope.models.backbone import set_attention

MAX_ABS_DIFF = 1e-4  # fp32 ONNX against the fp32 torch model: more means the graph is not the model
INT8_MAX_F1_DROP = 0.005  # dev macro-F1 (2-fold) an int8 model may lose against fp32 and still be written


class _Probabilities(nn.Module):
    """The classifier with its sigmoid: the exported graph gives probabilities, not logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(input_ids, attention_mask).float())


@dataclass(frozen=True)
class OnnxExport:
    folder: Path
    texts: int  # the test texts the export was checked on
    max_abs_diff: float  # largest |ONNX - torch| probability on them, fp32
    # with --quantize: macro-F1 of "fp32" and "int8" on dev (2-fold: thresholds chosen on the other half; what
    # decides) and on test (each with its thresholds chosen on all of dev; reported after the choice)
    macro_f1: dict[str, dict[str, float]] | None
    int8_written: bool = False


def export_onnx(run_dir: str | Path, out_dir: str | Path | None = None, quantize: str | None = None) -> OnnxExport:
    """Export, check on the run's test texts (ONNX within `MAX_ABS_DIFF` of torch; a failed check writes
    nothing), then write the folder. With `quantize="int8"` the int8 model is written beside the fp32 one when
    its dev macro-F1 (2-fold) is within `INT8_MAX_F1_DROP` of fp32's, a choice made on dev like every other;
    refused, the fp32 model is still written."""
    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE_INFO).is_file():
        raise UserError(f"{run_dir} is an ensemble: export each of its runs instead")
    if quantize not in (None, *QUANTIZATIONS):
        raise UserError(f"unknown quantization '{quantize}'; choose one of {', '.join(QUANTIZATIONS)}")
    check_run_dir(run_dir)
    onnx_runtime()
    try:
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError:
        raise UserError(f"ONNX export needs onnx and onnxscript: {INSTALL_HINT}") from None
    predictions = eval_file(run_dir, split_predictions("test"))
    if not predictions.is_file():
        raise UserError(f"{predictions} is missing: the export checks the model on the run's test texts")
    dev_predictions = eval_file(run_dir, split_predictions("dev"))
    if quantize and not dev_predictions.is_file():
        raise UserError(f"{dev_predictions} is missing: the int8 model's thresholds are chosen on the run's dev texts")
    predictor = Predictor(run_dir, device="cpu", precision="fp32")
    test = read_predictions(predictions, predictor.labels)
    ids = encode_texts(predictor.tokenizer, test.texts, predictor.config.max_len, cache=False)
    out = Path(out_dir) if out_dir else run_dir / ONNX_EXPORT
    check_destination(out, 8 * sum(p.numel() for p in predictor.model.parameters()))  # fp32 and int8, staged
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staged = Path(tmp)
        with _quiet():
            _export_graph(predictor, ids[:2], staged / ONNX_MODEL)
        session = onnx_session(staged / ONNX_MODEL)
        probs = session_probs(session, ids, predictor.pad_id, 128)
        max_abs_diff = float(np.abs(probs - predictor.probs_of_ids(ids)).max())
        if not max_abs_diff <= MAX_ABS_DIFF:
            raise UserError(
                f"the ONNX model differs from the torch model by up to {max_abs_diff:.2e} on {len(ids)} test texts "
                f"(allowed {MAX_ABS_DIFF:.0e}); nothing written"
            )
        macro_f1, int8_written = None, False
        if quantize == "int8":
            macro_f1 = _quantize_int8(staged, test.truth, probs, ids, predictor, dev_predictions)
            int8_written = macro_f1["dev"]["fp32"] - macro_f1["dev"]["int8"] <= INT8_MAX_F1_DROP
            if not int8_written:
                (staged / ONNX_INT8_MODEL).unlink()
                (staged / ONNX_INT8_THRESHOLDS).unlink()
        _write_reader_files(predictor, staged)
        out.mkdir(exist_ok=True)
        for stale in (ONNX_INT8_MODEL, ONNX_INT8_THRESHOLDS):  # an older int8 model does not match this export
            (out / stale).unlink(missing_ok=True)
        for item in staged.iterdir():
            item.replace(out / item.name)
    return OnnxExport(out, len(ids), max_abs_diff, macro_f1, int8_written)


@contextmanager
def _quiet():
    """torch's exporter and onnxruntime's quantiser warn and log advice meant for their developers (torchvision
    absent, shape-constraint renames, pre-processing); the export's own check says whether the result is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _export_graph(predictor: Predictor, example: list[np.ndarray], path: Path) -> None:
    """torch's dynamo exporter (its default since 2.9), batch and sequence axes dynamic. Attention goes out in its
    eager form (an additive mask, then Softmax), which onnxruntime ran 1.02-1.06x (int8) and 1.02x (fp32) faster
    than the graph of SDPA with its NaN guards, within 1.2e-6 of torch (docs/speed.md); the export's own predictor
    keeps it."""
    set_attention(predictor.model, "eager")
    batch = collate(example, predictor.pad_id)
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
    torch.onnx.export(
        _Probabilities(predictor.model).eval(),
        (batch["input_ids"], batch["attention_mask"]),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["probabilities"],
        dynamic_shapes={"input_ids": dims, "attention_mask": dims},
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def _quantize_int8(
    staged: Path, truth: np.ndarray, fp32_probs: np.ndarray, ids, predictor: Predictor, dev_predictions: Path
) -> dict[str, dict[str, float]]:
    """Dynamic int8 quantisation (weights int8 per output channel, activations quantised on the fly), with
    thresholds chosen on the run's dev texts by the run's own strategy, as the run's were: int8 shifts the
    probabilities, and the fp32 thresholds cost it 0.008-0.016 dev macro-F1 where its own cost 0.001-0.002
    (docs/export.md). Returns both models' macro-F1 on dev (2-fold, which decides) and on test."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    config, labels = predictor.config, predictor.labels
    dev = read_predictions(dev_predictions, labels)
    with _quiet():
        quantize_dynamic(staged / ONNX_MODEL, staged / ONNX_INT8_MODEL, per_channel=True, weight_type=QuantType.QInt8)
    session = onnx_session(staged / ONNX_INT8_MODEL)
    dev_ids = encode_texts(predictor.tokenizer, dev.texts, config.max_len, cache=False)
    dev_probs = session_probs(session, dev_ids, predictor.pad_id, 128)
    choice = choose_thresholds(config.threshold_strategy, dev.truth, dev_probs, config.threshold, labels)
    save_thresholds(staged / ONNX_INT8_THRESHOLDS, choice, labels)
    int8_probs = session_probs(session, ids, predictor.pad_id, 128)
    return {
        "dev": {
            name: _two_fold_f1(config, dev.truth, p, labels) for name, p in (("fp32", dev.probs), ("int8", dev_probs))
        },
        "test": {
            name: compute_metrics(truth, p, thresholds, labels).summary["macro_f1"]
            for name, p, thresholds in (("fp32", fp32_probs, predictor.thresholds), ("int8", int8_probs, choice.values))
        },
    }


def _two_fold_f1(config, truth: np.ndarray, probs: np.ndarray, labels) -> float:
    """Dev macro-F1 with each half's thresholds chosen on the other half (alternate rows), averaged: thresholds
    never scored on the texts they were chosen on, so a model is not favoured for fitting dev's noise."""
    halves = (np.arange(len(truth))[0::2], np.arange(len(truth))[1::2])
    scores = []
    for tune, score in (halves, halves[::-1]):
        choice = choose_thresholds(config.threshold_strategy, truth[tune], probs[tune], config.threshold, labels)
        scores.append(compute_metrics(truth[score], probs[score], choice.values, labels).summary["macro_f1"])
    return float(np.mean(scores))


def _write_reader_files(predictor: Predictor, folder: Path) -> None:
    """What a reader needs besides the graph: the tokenizer set to encode as `Predictor` does, the labels in
    column order, the run's thresholds (0.5 for a run without them, as `Predictor` uses)."""
    from tokenizers import Tokenizer

    if not predictor.tokenizer.is_fast:
        raise UserError(f"{predictor.run_dir}: the ONNX export needs a fast tokenizer (tokenizer.json)")
    tokenizer = Tokenizer.from_str(predictor.tokenizer.backend_tokenizer.to_str())
    tokenizer.enable_truncation(predictor.config.max_len)
    tokenizer.enable_padding(pad_id=predictor.pad_id, pad_token=predictor.tokenizer.pad_token or "[PAD]")
    tokenizer.save(str(folder / ONNX_TOKENIZER))
    shutil.copy(predictor.run_dir / LABELS, folder / LABELS)
    if (predictor.run_dir / THRESHOLDS).is_file():
        shutil.copy(predictor.run_dir / THRESHOLDS, folder / THRESHOLDS)
    else:
        save_thresholds(folder / THRESHOLDS, ThresholdChoice("fixed", None, predictor.thresholds), predictor.labels)
