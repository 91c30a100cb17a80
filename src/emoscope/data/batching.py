"""Tokenise once (cached on disk), then batch by length with dynamic padding.

Short Reddit comments vary from 3 to 60+ tokens: grouping similar lengths cuts padding, which is most of
the compute a naive loop wastes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from emoscope.core.errors import UserError
from emoscope.data.source import cache_root


def token_cache_dir() -> Path:
    return cache_root() / "tokens"


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(spec.encode()).hexdigest()


def encode_texts(tokenizer, texts: Sequence[str], max_len: int, cache: bool = True) -> list[np.ndarray]:
    """Token ids per text, truncated to `max_len` (special tokens included), cached by content hash."""
    key = hashlib.sha256()
    key.update(_tokenizer_fingerprint(tokenizer).encode())
    key.update(f"|{max_len}|{len(texts)}|".encode())
    for text in texts:
        key.update(text.encode("utf-8", "surrogatepass"))
        key.update(b"\0")
    path = token_cache_dir() / f"{key.hexdigest()[:32]}.safetensors"
    if cache and path.is_file():
        try:
            stored = load_file(str(path))
            return np.split(stored["flat"], stored["offsets"][1:-1])
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    ids = tokenizer(list(texts), truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
    encoded = [np.asarray(x, dtype=np.int32) for x in ids]
    if cache:
        offsets = np.cumsum([0] + [len(x) for x in encoded]).astype(np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"flat": np.concatenate(encoded) if encoded else np.zeros(0, np.int32), "offsets": offsets}, str(tmp))
        os.replace(tmp, path)
    return encoded


def encode_windows(tokenizer, texts: Sequence[str], max_len: int, stride: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Every text as overlapping windows of at most `max_len` tokens (special tokens included), neighbours
    sharing `stride` tokens, so that a long text is read whole rather than cut; a short text is one window, the
    same ids as `encode_texts`. Returns the windows and, per window, the index of its text (ascending)."""
    room = max_len - tokenizer.num_special_tokens_to_add()
    if not 0 <= stride < room:
        raise UserError(f"stride {stride} must be between 0 and {room - 1}: a window holds {room} text tokens")
    if not tokenizer.is_fast:
        raise UserError("scoring long texts in windows needs a fast tokenizer (the run's is not)")
    encoded = tokenizer(list(texts), truncation=True, max_length=max_len, stride=stride, return_overflowing_tokens=True)
    windows = [np.asarray(x, dtype=np.int32) for x in encoded["input_ids"]]
    return windows, np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64)


def batch_plan(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    *,
    shuffle: bool = True,
    group_by_length: bool = True,
    chunk_batches: int = 50,
) -> list[np.ndarray]:
    """The epoch's global batches as index arrays: the same on every rank, a pure function of seed and epoch.

    Length grouping sorts within random chunks of `chunk_batches` batches, then shuffles batch order, so
    batches stay random across the epoch while padding stays small.
    """
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if group_by_length:
        lengths = np.asarray(lengths)
        chunk = batch_size * chunk_batches
        order = (
            np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in np.split(order, range(chunk, n, chunk))])
            if n
            else order
        )
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if shuffle and group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def collate(ids: Sequence[np.ndarray], pad_id: int, labels: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Pad to the longest text in this batch only."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if labels is not None:
        batch["labels"] = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    return batch


def sorted_batches(ids: Sequence[np.ndarray], batch_size: int, pad_id: int) -> Iterator[tuple[np.ndarray, dict]]:
    """Inference batches, longest first so memory peaks at once; yields (row indices, batch)."""
    order = np.argsort([-len(x) for x in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, collate([ids[i] for i in rows], pad_id)
