"""Record pooled representations at the model's named hook points (TransformerLens-style hooks + cache).

A capture runs the probe set through the model in eval mode under `torch.no_grad`, with forward hooks on
`model.hook_points()`; per-token outputs (embeddings, encoder layers) are pooled with the attention mask,
per-text outputs (head stages, logits) are kept as they are. Hooks exist only during the capture and the
train/eval mode is restored, so training sees exactly the model it would have seen without the tracker.
Captures are stored as float16 safetensors with their point names, readable without the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from emoscope.core.errors import DataError, UserError
from emoscope.core.runfolder import capture_path
from emoscope.core.vocab import POOLINGS
from emoscope.data.batching import collate, encode_texts
from emoscope.models.heads import pool

_FP16_MAX = float(torch.finfo(torch.float16).max)


def unwrap(model: nn.Module) -> nn.Module:
    """The EmotionClassifier inside a DDP (or DataParallel) wrapper: hooking and running the inner module
    needs no collective call, so rank 0 can capture alone while the other ranks wait."""
    return model.module if hasattr(model, "module") and hasattr(model.module, "hook_points") else model


def hidden_states(output) -> torch.Tensor:
    """The hidden states of a hooked module's output: a tensor, or a tuple whose first item they are."""
    return output[0] if isinstance(output, tuple) else output


class RepresentationTracker:
    """Forward hooks on the named points, accumulating one float32 vector per text and point.

    Use as a context manager around forward passes made with `run(batch)`; the hooks are removed on exit.
    """

    def __init__(self, model: nn.Module, points: Sequence[str] | None = None, pooling: str = "mean"):
        if pooling not in POOLINGS:
            raise UserError(f"unknown pooling '{pooling}'; choose one of {', '.join(POOLINGS)}")
        self.model = unwrap(model)
        available = self.model.hook_points()
        unknown = [p for p in points or () if p not in available]
        if unknown:
            raise UserError(f"unknown hook point(s) {', '.join(unknown)}; this model has {', '.join(available)}")
        wanted = set(points or available)
        self.modules = {name: m for name, m in available.items() if name in wanted}  # depth order
        self.pooling = pooling
        self._mask: torch.Tensor | None = None
        self._parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.modules}
        self._index: list[torch.Tensor] = []
        self._handles: list = []

    def __enter__(self) -> RepresentationTracker:
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.modules.items()]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            out = hidden_states(output).detach().float()  # before pooling: under AMP the output may be fp16/bf16
            if out.dim() == 3:
                out = pool(out, self._mask.to(out.device), self.pooling)
            self._parts[name].append(out.cpu())

        return hook

    def run(self, batch: Mapping[str, torch.Tensor]) -> None:
        """One forward pass; `batch["index"]`, when given, says which probe rows the batch holds."""
        device = next(self.model.parameters()).device
        self._mask = batch["attention_mask"].to(device)
        self.model(input_ids=batch["input_ids"].to(device), attention_mask=self._mask)
        if "index" in batch:
            self._index.append(torch.as_tensor(batch["index"]).long().cpu())

    def outputs(self) -> dict[str, torch.Tensor]:
        """Point name -> float32 [n_texts, dim], rows in probe order."""
        result = {}
        for name, parts in self._parts.items():
            if not parts:
                raise UserError(f"hook point '{name}' produced no output: was the model run on any batch?")
            stacked = torch.cat(parts)
            if self._index:
                ordered = torch.empty_like(stacked)
                ordered[torch.cat(self._index)] = stacked
                stacked = ordered
            result[name] = stacked
        return result


def capture(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    points: Sequence[str] | None = None,
    pooling: str = "mean",
) -> dict[str, torch.Tensor]:
    """Representations of every text in `batches` (dicts with `input_ids`, `attention_mask`, optionally
    `index`) at each point, in depth order. Eval mode and no_grad for the capture, previous mode after."""
    tracker = RepresentationTracker(model, points, pooling)
    was_training = tracker.model.training
    tracker.model.eval()
    try:
        with torch.no_grad(), tracker:
            for batch in batches:
                tracker.run(batch)
    finally:
        tracker.model.train(was_training)
    return tracker.outputs()


def text_batches(tokenizer, texts: Sequence[str], max_len: int, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """Batches of `texts` for `capture`, tokenised as training and prediction do (`encode_texts`, the run's
    `max_len`), grouped by length (less padding), each with the `index` of its texts so the capture comes
    back in text order. Built once, reusable at every epoch."""
    encoded = encode_texts(tokenizer, texts, max_len)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batches.append({**collate([encoded[i] for i in index], pad_id), "index": torch.tensor(index)})
    return batches


def capture_texts(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    max_len: int,
    batch_size: int = 64,
    points: Sequence[str] | None = None,
    pooling: str = "mean",
) -> dict[str, torch.Tensor]:
    """`capture` on raw texts, returned in text order."""
    return capture(model, text_batches(tokenizer, texts, max_len, batch_size), points, pooling)


def save_capture(path: str | Path, representations: Mapping[str, torch.Tensor], *, epoch: int, pooling: str) -> Path:
    """float16 safetensors, one tensor per point; metadata `epoch`, `pooling`, `points` (depth order).

    Values are clipped to the float16 range so an outlier dimension cannot become inf. Written to a
    temporary name and renamed, so a reader never sees half a capture.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.float().clamp(-_FP16_MAX, _FP16_MAX).half().contiguous() for name, t in representations.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(
        tensors, str(tmp), metadata={"epoch": str(epoch), "pooling": pooling, "points": ",".join(representations)}
    )
    os.replace(tmp, path)
    return path


def capture_epoch(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    run_dir: str | Path,
    epoch: int,
    points: Sequence[str] | None = None,
    pooling: str = "mean",
) -> Path | None:
    """What the training loop calls before training (epoch 0) and after each epoch.

    Under DDP only rank 0 captures (returns the file); other ranks return None at once and should meet
    rank 0 at the loop's next barrier or collective call.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank():
        return None
    return save_capture(
        capture_path(run_dir, epoch), capture(model, batches, points, pooling), epoch=epoch, pooling=pooling
    )


def load_capture(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(point -> float32 [n, dim] in depth order, {"epoch": int, "pooling": str, "points": [names]})."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            names = [p for p in meta.get("points", "").split(",") if p] or list(f.keys())
            arrays = {name: f.get_tensor(name).astype(np.float32) for name in names}
    except (SafetensorError, OSError, KeyError) as exc:
        raise DataError(path, None, f"not a readable capture ({exc})") from exc
    try:
        epoch = int(meta["epoch"])
    except (KeyError, ValueError) as exc:
        raise DataError(path, None, "capture metadata has no integer 'epoch'") from exc
    return arrays, {"epoch": epoch, "pooling": meta.get("pooling", "mean"), "points": names}
