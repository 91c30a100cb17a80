"""A run folder as a model: `Predictor` loads it and predicts texts and files, from Python or the CLI.

>>> from emoscope import Predictor
>>> Predictor("runs/cpu-default").predict(["thank you so much!"], top_k=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    BACKBONE_CONFIG,
    LABELS,
    PICKLED_WEIGHTS,
    TOKENIZER,
    WEIGHTS,
    check_run_dir,
    check_weights,
    read_config,
    read_labels,
    read_thresholds,
)
from emoscope.core.vocab import BACKENDS, LONG_TEXT_MODES
from emoscope.data.batching import encode_texts, encode_windows
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

    def __new__(
        cls,
        run_dir: str | Path,
        device: str | torch.device | None = None,
        precision: str | None = None,
        trust_pickle: bool = False,
        backend: str = "torch",
        workers: int | None = None,
    ):
        """The one loader: `Predictor(...)` becomes the subclass that `serves` this folder and backend (each
        backend a sibling module of this one, which imports none of them: `emoscope.inference` loads them all),
        else the torch model of a run."""
        if backend not in BACKENDS:
            raise UserError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if cls is Predictor:
            cls = next((sub for sub in Predictor.__subclasses__() if sub.serves(Path(run_dir), backend)), cls)
        return super().__new__(cls)

    @classmethod
    def serves(cls, folder: Path, backend: str) -> bool:
        """Whether this class is the one that loads `folder` with `backend` (a subclass's answer)."""
        return False

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

    def check_labels(self, labels: Sequence[str], of: str = "the data") -> None:
        """Refuse to score against other labels: probability columns follow the label files' order, so scores
        against another order would be silently wrong."""
        ours, theirs = list(labels), list(self.labels)
        if ours != theirs:
            i = next(i for i in range(max(len(ours), len(theirs))) if ours[i : i + 1] != theirs[i : i + 1])
            mine, its = (repr(seq[i]) if i < len(seq) else "missing" for seq in (ours, theirs))
            raise UserError(
                f"{of}'s label files disagree with {self.run_dir / LABELS}: label {i} is {mine} in {of}, {its} in "
                "the run"
            )

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
