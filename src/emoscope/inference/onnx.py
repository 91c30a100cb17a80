"""The `Predictor` backend that runs a run's ONNX export in onnxruntime (the export: `emoscope.export.onnx`).

`emoscope export RUN --format onnx` writes `RUN/onnx/`: `model.onnx` (backbone, pooling, head and sigmoid in
fp32: input_ids and attention_mask [batch, sequence] in, probabilities [batch, labels] out), `tokenizer.json`
(it truncates at the run's max_len and pads a batch, so the `tokenizers` library alone encodes texts as
`Predictor` does), `labels.json` and `thresholds.json`: onnxruntime and tokenizers run it, without torch or
emoscope. The export checks itself on the run's test texts before writing anything. With `--quantize int8` it
adds `model.int8.onnx` and `thresholds.int8.json`, chosen on dev for the int8 model's own probabilities.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    ENSEMBLE_INFO,
    ONNX_EXPORT,
    ONNX_INT8_MODEL,
    ONNX_INT8_THRESHOLDS,
    ONNX_MODEL,
    load_thresholds,
)
from emoscope.inference.predictor import Predictor
from emoscope.models.inference import batch_probs, worker_count

INSTALL_HINT = "pip install 'emoscope[onnx]' (onnx, onnxruntime, onnxscript)"
# Graph rewrites onnxruntime's CPU sessions skip. Its fused SkipLayerNormalization took 21% of the int8 model's
# time where the Add and LayerNormalization it replaces take 7%: without it int8 scores 1.2x and fp32 1.1x the
# texts per second (onnxruntime 1.32, AMD EPYC with AVX-512; docs/export.md).
CPU_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def onnx_runtime():
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"the ONNX backend needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def onnx_session(path: Path, device: str | None = None, threads: int | None = None):
    """An onnxruntime session on the CPU (`threads`, by default as many as torch uses in this process; without
    the rewrites in `CPU_DISABLED_OPTIMIZERS`), or on CUDA where onnxruntime-gpu provides it."""
    ort = onnx_runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    if device is not None and str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError("device cuda needs onnxruntime-gpu for the onnx backend (pip install onnxruntime-gpu)")
        return ort.InferenceSession(str(path), options, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=CPU_DISABLED_OPTIMIZERS
    )


def session_probs(session, ids: list[np.ndarray], pad_id: int, batch_size: int, workers: int = 1) -> np.ndarray:
    """Probabilities [N, labels] in the input order, batched as the torch backend batches them; `workers`
    batches at once share the session (onnxruntime runs concurrent calls of one session)."""

    def probs_of(batch: dict) -> np.ndarray:
        return session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})[0]

    return batch_probs(probs_of, ids, pad_id, batch_size, workers)


class OnnxPredictor(Predictor):
    """`Predictor(run_dir, backend="onnx")`: the run's tokenizer, max_len, labels and thresholds, and its
    export `RUN/onnx/model.onnx` run by onnxruntime (fp32). `backend="onnx-int8"`: `RUN/onnx/model.int8.onnx`
    with its own dev-chosen thresholds (`thresholds.int8.json`)."""

    @classmethod
    def serves(cls, folder: Path, backend: str) -> bool:
        return backend.startswith("onnx") and not (folder / ENSEMBLE_INFO).is_file()

    def __init__(
        self,
        run_dir: str | Path,
        device: str | None = None,
        precision: str | None = None,
        trust_pickle: bool = False,
        backend: str = "onnx",
        workers: int | None = None,
    ):
        int8 = backend == "onnx-int8"
        if precision not in (None, "int8" if int8 else "fp32"):
            raise UserError(
                f"the {backend} backend runs its ONNX model as exported; precision {precision} is for torch"
            )
        self._read_run(run_dir, backend, workers)
        folder = self.run_dir / ONNX_EXPORT
        model = folder / (ONNX_INT8_MODEL if int8 else ONNX_MODEL)
        if not model.is_file():
            how = " --quantize int8" if int8 else ""
            raise UserError(f"{model} is missing: run `emoscope export {self.run_dir} --format onnx{how}` first")
        if int8:
            self.thresholds = load_thresholds(folder / ONNX_INT8_THRESHOLDS, self.labels).values.astype(np.float32)
        self.precision = "int8" if int8 else "fp32"
        self.device = torch.device(device or "cpu")
        self.session = onnx_session(model, device)
        self.model_path = model

    @cached_property
    def one_thread_session(self):
        """The session that `workers` batches at once share, one thread each."""
        return onnx_session(self.model_path, self.device, threads=1)

    def probs_of_ids(self, ids: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
        workers = worker_count(self.device, len(ids), batch_size, self.workers)
        session = self.session if workers == 1 else self.one_thread_session
        return session_probs(session, ids, self.pad_id, batch_size, workers)
