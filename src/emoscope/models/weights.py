"""Weights on disk: safetensors written atomically (checkpoints, best weights, exports) and read back with
their metadata. Below training and prediction, so reading a run never imports the training package."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(state_dict: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors, atomically; tensors are made contiguous and unshared (tied weights are copied)."""
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, metadata) of a safetensors file, e.g. the `epoch` the best weights were saved at."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    return load_file(str(path)), metadata
