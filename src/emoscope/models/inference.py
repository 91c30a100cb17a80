"""Batched probabilities for already-tokenised texts: shared by evaluation during training and by predict."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from emoscope.core.errors import UserError
from emoscope.core.vocab import PRECISIONS, WINDOW_COMBINES
from emoscope.data.batching import sorted_batches

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: without them (e.g. AVX2-only CPUs) bf16 is emulated and several times slower."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto`: bf16 where the hardware runs it natively, fp16 on older GPUs, else fp32."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """Mixed precision in plain sight: bf16 works on CPU and recent GPUs, fp16 needs CUDA."""
    return torch.autocast(
        device_type=device.type, dtype=AMP_DTYPES.get(precision, torch.float32), enabled=precision in AMP_DTYPES
    )


def prepare_for_inference(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """On `device`, in eval mode, weights cast once to `precision` (bf16 weights ran 1.3x faster than fp32
    weights under autocast on CPU): how `Predictor`, and so a run's saved dev and test scores, run a model."""
    model.to(device).eval()
    if precision in AMP_DTYPES:
        model.to(AMP_DTYPES[precision])
    return model


def predict_probs(
    model: nn.Module,
    ids: Sequence[np.ndarray],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    autocast_to: str | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Sigmoid probabilities [N, labels] in the input order, by `batch_probs`.

    The model runs in its own weights' dtype (`prepare_for_inference`), or, with `autocast_to` ("bf16",
    "fp16"), fp32 weights run under autocast: evaluation during training, where the weights must stay fp32.
    """
    if autocast_to is not None and next(model.parameters()).dtype != torch.float32:
        raise ValueError(f"autocast_to={autocast_to!r} needs fp32 weights; this model's were cast already")

    def probs_of(batch: dict) -> np.ndarray:
        with autocast(device, autocast_to or "fp32"):
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        return torch.sigmoid(logits.float()).cpu().numpy()

    was_training = model.training
    model.eval()
    try:
        return batch_probs(probs_of, ids, pad_id, batch_size, worker_count(device, len(ids), batch_size, workers))
    finally:
        model.train(was_training)


def batch_probs(
    probs_of: Callable[[dict], np.ndarray], ids: Sequence[np.ndarray], pad_id: int, batch_size: int, workers: int = 1
) -> np.ndarray:
    """`probs_of(batch)` over length-sorted batches, `workers` of them at once (`each_batch`), gathered into
    [N, labels] in the input order: what every backend shares."""
    out = np.zeros((0, 0), dtype=np.float32) if not ids else None
    lock = threading.Lock()

    def score(_worker: int, rows: np.ndarray, batch: dict) -> None:
        nonlocal out
        probs = probs_of(batch)
        with lock:
            if out is None:
                out = np.empty((len(ids), probs.shape[1]), dtype=np.float32)
        out[rows] = probs

    each_batch(score, sorted_batches(ids, batch_size, pad_id), workers)
    return out


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device` as torch names it ("cpu", "cuda", "cuda:1"); None: the GPU where torch sees one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}: give cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device {device}: torch sees {torch.cuda.device_count()} CUDA device(s) here")
    return resolved


def check_workers(workers: int | None) -> int | None:
    """`workers` of `worker_count`: a whole number from 1, or None."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UserError(f"workers must be a whole number from 1 (or None: one per torch thread), got {workers!r}")
    return workers


def worker_count(device: torch.device, texts: int, batch_size: int, workers: int | None = None) -> int:
    """How many batches `each_batch` runs at once for `texts` texts: `workers`, by default one per torch thread,
    but never more than there are batches (a lone batch keeps every thread); 1 off the CPU."""
    check_workers(workers)
    if device.type != "cpu":
        return 1
    batches = -(-texts // batch_size)
    return max(1, min(batches, torch.get_num_threads() if workers is None else workers))


def each_batch(
    work: Callable[[int, np.ndarray, dict], None],
    batches: Iterator[tuple[np.ndarray, dict]],
    workers: int = 1,
) -> None:
    """`work(worker, rows, batch)` for every batch, in inference mode; with `workers` > 1 (`worker_count`) that
    many batches at once, each worker on one thread of its own (`worker` numbers them from 0): on these small
    matrices two one-thread streams outrun one stream over two threads (docs/speed.md)."""
    threads = torch.get_num_threads()
    lock, failed = threading.Lock(), threading.Event()

    def run(worker: int) -> None:
        with torch.inference_mode():
            while not failed.is_set():
                with lock:
                    rows, batch = next(batches, (None, None))
                if rows is None:
                    return
                try:
                    work(worker, rows, batch)
                except BaseException:
                    failed.set()  # the other workers stop at their next batch
                    raise

    def run_on_one_thread(worker: int) -> None:
        torch.set_num_threads(1)  # also this thread's own OpenMP and MKL pools
        run(worker)

    if workers == 1:
        run(0)
        return
    try:
        with ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(run_on_one_thread, worker) for worker in range(workers)]:
                done.result()
    finally:
        torch.set_num_threads(threads)


def combine_windows(probs: np.ndarray, owner: np.ndarray, how: str) -> np.ndarray:
    """One row per text from its windows' rows (`owner`: each window's text, ascending, every text present):
    `max` finds an emotion anywhere in the text, `mean` weighs the whole text evenly."""
    if how not in WINDOW_COMBINES:
        raise UserError(f"unknown way to combine windows '{how}'; choose one of {', '.join(WINDOW_COMBINES)}")
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    if how == "max":
        return np.maximum.reduceat(probs, starts, axis=0)
    return np.add.reduceat(probs, starts, axis=0) / np.diff(np.r_[starts, len(owner)])[:, None]
