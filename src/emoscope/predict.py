"""Load a run folder and predict: texts, files, or from Python.

>>> from emoscope.predict import Predictor
>>> Predictor("runs/cpu-default").predict(["thank you so much!"], top_k=3)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

from emoscope.checks import check_destination
from emoscope.data.batching import encode_texts, encode_windows
from emoscope.errors import UserError
from emoscope.models import build_classifier
from emoscope.models.backbone import load_pickled_weights, refuse_pickle
from emoscope.models.inference import (
    check_workers,
    combine_windows,
    predict_probs,
    prepare_for_inference,
    resolve_device,
    resolve_precision,
)
from emoscope.models.weights import save_weights
from emoscope.runfolder import (
    BACKBONE_CONFIG,
    ENSEMBLE_INFO,
    HF_EXPORT,
    PICKLED_WEIGHTS,
    THRESHOLDS,
    TOKENIZER,
    WEIGHTS,
    check_run_dir,
    check_weights,
    load_thresholds,
    read_config,
    read_labels,
)
from emoscope.vocab import BACKENDS, LONG_TEXT_MODES


def weights_file(run_dir: Path, trust_pickle: bool = False) -> Path:
    """`model.safetensors`; pickled weights (model.bin, .pth...) only when the user trusts them."""
    if (run_dir / WEIGHTS).is_file():
        check_weights(run_dir / WEIGHTS)
        return run_dir / WEIGHTS
    for name in PICKLED_WEIGHTS:
        if (run_dir / name).is_file():
            refuse_pickle(run_dir / name, trust_pickle)
            return run_dir / name
    raise UserError(f"run folder {run_dir} is incomplete: {WEIGHTS} is missing")


def read_thresholds(folder: Path, labels: list[str]) -> np.ndarray:
    """The folder's dev-chosen threshold per label (in `labels` order); 0.5 for a folder without them."""
    path = folder / THRESHOLDS
    if not path.is_file():
        return np.full(len(labels), 0.5, dtype=np.float32)
    return load_thresholds(path, labels).values.astype(np.float32)


class Predictor:
    """A trained run, ready to score texts on the CPU or a GPU. `Predictor(ensemble_folder)` gives an
    `EnsemblePredictor`, which scores texts the same way.

    `precision=None` runs in the run's own configured precision, resolved on this device ("auto": bf16 where
    the hardware runs it natively); a value given here overrides it. Training scores dev and test through a
    Predictor too, so its saved probabilities are the ones a Predictor gives.

    `backend="onnx"` runs the run's ONNX export (`RUN/onnx/model.onnx`, from `emoscope export RUN --format
    onnx`) in onnxruntime instead of torch: an `OnnxPredictor`, same tokenisation, labels and thresholds.
    `backend="onnx-int8"` runs its int8 model (`--quantize int8`) with the thresholds chosen on dev for it.

    `workers`: CPU batches scored at once, one thread each (None: one per torch thread; 1: one batch at a time
    over all of them). On small matrices two one-thread streams outrun one two-thread stream (docs/speed.md).
    """

    def __new__(cls, run_dir: str | Path, *args, backend: str = "torch", **kwargs):
        if backend not in BACKENDS:
            raise UserError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if cls is Predictor and (Path(run_dir) / ENSEMBLE_INFO).is_file():
            from emoscope.ensemble_predictor import EnsemblePredictor

            return super().__new__(EnsemblePredictor)
        if cls is Predictor and backend.startswith("onnx"):
            from emoscope.onnx_model import OnnxPredictor

            return super().__new__(OnnxPredictor)
        return super().__new__(cls)

    def __init__(
        self,
        run_dir: str | Path,
        device: str | torch.device | None = None,
        precision: str | None = None,
        trust_pickle: bool = False,
        backend: str = "torch",
        workers: int | None = None,
    ):
        self._read_run(run_dir, backend, workers)
        weights = weights_file(self.run_dir, trust_pickle)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision or self.config.precision, self.device)
        backbone_config = AutoConfig.from_pretrained(self.run_dir / BACKBONE_CONFIG)
        self.model = build_classifier(
            backbone_config,
            self.config.head,
            len(self.labels),
            head_dropout=self.config.head_dropout,
            pooling=self.config.pooling,
        )
        pickled = weights.suffix != ".safetensors"
        state = load_pickled_weights(weights, trust_pickle) if pickled else load_file(str(weights))
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0].rstrip(":")
            raise UserError(
                f"{weights} does not fit the model its run folder describes ({first}); restore the file or retrain"
            ) from None
        prepare_for_inference(self.model, self.precision, self.device)

    def _read_run(self, run_dir: str | Path, backend: str, workers: int | None) -> None:
        """What every backend takes from the run folder (config, labels, thresholds and tokenizer), and how it
        schedules batches."""
        self.run_dir = Path(run_dir)
        self.backend = backend
        self.workers = check_workers(workers)
        check_run_dir(self.run_dir)
        self.config = read_config(self.run_dir)
        self.labels = read_labels(self.run_dir)["labels"]
        self.thresholds = read_thresholds(self.run_dir, self.labels)
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir / TOKENIZER)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def predict_proba(
        self,
        texts: list[str],
        batch_size: int = 128,
        long_text: str = "truncate",
        stride: int | None = None,
        combine: str = "max",
    ) -> np.ndarray:
        """Probabilities [texts, labels]. A text past the run's max_len is cut there (`long_text="truncate"`)
        or scored in overlapping windows of max_len tokens (`"chunk"`; `stride` tokens of overlap, default a
        quarter of max_len) whose probabilities are combined (`combine`: "max" or "mean")."""
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"text {i + 1} is empty: nothing to predict")
        max_len = self.config.max_len
        if long_text == "truncate":
            return self.probs_of_ids(encode_texts(self.tokenizer, texts, max_len, cache=False), batch_size)
        if long_text != "chunk":
            raise UserError(f"unknown long_text '{long_text}'; choose one of {', '.join(LONG_TEXT_MODES)}")
        windows, owner = encode_windows(self.tokenizer, texts, max_len, max_len // 4 if stride is None else stride)
        return combine_windows(self.probs_of_ids(windows, batch_size), owner, combine)

    def probs_of_ids(self, ids: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
        """Probabilities [N, labels] of tokenised texts: where the backends differ (`OnnxPredictor`)."""
        return predict_probs(self.model, ids, self.pad_id, batch_size, self.device, workers=self.workers)

    def predict(self, texts: list[str], top_k: int = 5, batch_size: int = 128, **long_text) -> list[dict]:
        """Per text: the top-k emotions with probabilities, and the emotions above their dev thresholds
        (`long_text`, `stride`, `combine` as in `predict_proba`)."""
        return self.describe(texts, self.predict_proba(texts, batch_size, **long_text), top_k)

    def describe(self, texts: list[str], probs: np.ndarray, top_k: int = 5) -> list[dict]:
        """`predict`'s answer for probabilities already computed."""
        out = []
        for text, row in zip(texts, probs, strict=True):
            order = np.argsort(-row)[:top_k]
            out.append(
                {
                    "text": text,
                    "top": [(self.labels[j], float(row[j])) for j in order],
                    "predicted": [self.labels[j] for j in np.flatnonzero(row >= self.thresholds)],
                    "probs": {label: float(p) for label, p in zip(self.labels, row, strict=True)},
                }
            )
        return out


def export_hf(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """A `transformers` folder for a run of any head: `pipeline("text-classification", model=out, top_k=None,
    trust_remote_code=True)` gives the same probabilities as `Predictor`, long texts truncated to the run's
    max_len alike (the exported tokenizer's `model_max_length`)."""
    import shutil
    from importlib import resources

    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE_INFO).is_file():
        raise UserError(f"{run_dir} is an ensemble: ensembles do not export to transformers, only single runs do")
    check_run_dir(run_dir)
    weights = weights_file(run_dir)
    config = read_config(run_dir)
    state = load_file(str(weights))
    # The head's sizes come from its weights, so they cannot disagree with them.
    if config.head == "linear":
        head_options = {"pooling": config.pooling}
    elif config.head == "mlp-attention":
        head_options = {"mlp_size": state["head.mlp.0.weight"].shape[0]}
    else:
        filters, _, kernel_size = state["head.conv.conv.weight"].shape
        head_options = {"filters": filters, "kernel_size": kernel_size}
    out = Path(out_dir) if out_dir else run_dir / HF_EXPORT
    check_destination(out, 2 * weights.stat().st_size)
    out.mkdir(parents=True, exist_ok=True)
    labels = read_labels(run_dir)["labels"]
    backbone = json.loads((run_dir / BACKBONE_CONFIG).read_text())
    hf_config = {
        "architectures": ["EmoscopeForSequenceClassification"],
        "model_type": "emoscope",
        "auto_map": {
            "AutoConfig": "modeling_emoscope.EmoscopeConfig",
            "AutoModelForSequenceClassification": "modeling_emoscope.EmoscopeForSequenceClassification",
        },
        "custom_pipelines": {
            "text-classification": {
                "impl": "modeling_emoscope.EmoscopeTextClassificationPipeline",
                "pt": ["AutoModelForSequenceClassification"],
            }
        },
        "backbone": backbone,
        "head": config.head,
        "head_options": {"dropout": config.head_dropout, **head_options},
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    (out / "config.json").write_text(json.dumps(hf_config, indent=1))
    (out / "modeling_emoscope.py").write_text(resources.files("emoscope").joinpath("hf_modeling.py").read_text())
    save_weights(state, out / WEIGHTS, {"format": "pt"})
    for item in (run_dir / TOKENIZER).iterdir():
        shutil.copy(item, out / item.name)
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(
        json.dumps({**tokenizer_config, "model_max_length": config.max_len}, indent=2)
    )
    return out
