"""Weights on disk: safetensors written atomically (checkpoints, best weights, exports) and read back with
their metadata. Below training and prediction, so reading a run never imports the training package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from emoscope.core.errors import UserError


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


def average_weights(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of safetensors files of one architecture (a weight soup), in fp32: models
    fine-tuned from the same pretrained weights average into one that scores about as well as their ensemble."""
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        state = load_file(str(path))
        if total and (state.keys() != total.keys() or any(state[k].shape != total[k].shape for k in total)):
            raise UserError(f"{path} holds other tensors than {paths[0]}: only weights of one architecture average")
        for name, tensor in state.items():
            total[name] = total.get(name, 0) + tensor.float()
    return {name: tensor / len(paths) for name, tensor in total.items()}
