"""Atomic checkpoints: a folder is complete or absent, `latest` names the newest complete one.

Each checkpoint is written under a temporary name, every file fsynced, then renamed; `state.json` records a
sha256 per file, so a damaged checkpoint is detected on load and the previous one is used instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from emoscope.core.errors import UserError
from emoscope.core.runfolder import WEIGHTS, sha256_file
from emoscope.models.weights import fsync_dir, save_weights

LATEST = "latest"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def save_checkpoint(root: Path, step: int, model_state: dict, train_state: dict, state: dict, keep: int) -> Path:
    """Write `root/step_<step>` atomically, point `latest` at it, keep the newest `keep` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".tmp-step_{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(model_state, tmp / WEIGHTS)
    torch.save(train_state, tmp / "train_state.pt")
    with open(tmp / "train_state.pt", "rb") as handle:
        os.fsync(handle.fileno())
    files = {name: sha256_file(tmp / name) for name in (WEIGHTS, "train_state.pt")}
    atomic_write_bytes(tmp / "state.json", json.dumps({**state, "files": files}, indent=1).encode())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    atomic_write_bytes(root / LATEST, final.name.encode())
    for old in sorted(_complete(root), key=_step_of)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step_of(path: Path) -> int:
    return int(path.name.split("_", 1)[1])


def _complete(root: Path) -> list[Path]:
    return [p for p in root.glob("step_*") if p.is_dir() and p.name[5:].isdigit()]


def _verify(path: Path) -> dict:
    state = json.loads((path / "state.json").read_text())
    for name, digest in state["files"].items():
        if sha256_file(path / name) != digest:
            raise ValueError(f"{path / name} does not match its recorded sha256")
    return state


def load_latest_checkpoint(root: Path) -> tuple[dict, dict, dict, Path] | None:
    """(model_state, train_state, state, path) of the newest checkpoint that verifies, or None if there is none.

    `latest` is tried first; a damaged one is reported and skipped for the one before it.
    """
    if not root.is_dir():
        return None
    candidates = sorted(_complete(root), key=_step_of, reverse=True)
    pointer = root / LATEST
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        candidates.sort(key=lambda p: p != named)
    for path in candidates:
        try:
            state = _verify(path)
            model_state = load_file(str(path / WEIGHTS))
            train_state = torch.load(path / "train_state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any damage means: fall back to an older checkpoint
            print(
                f"emoscope: checkpoint {path} is damaged ({type(exc).__name__}: {exc}); trying an older one", flush=True
            )
            continue
        return model_state, train_state, state, path
    if candidates:
        raise UserError(f"every checkpoint in {root} is damaged; start again without --resume")
    return None
