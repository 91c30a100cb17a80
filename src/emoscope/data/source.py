"""Where GoEmotions comes from: a folder the user names, or a verified download into the user cache.

A download is only trusted after its size and sha256 match the official files; it is written to a
temporary file beside its target and renamed into place only once every file checked out, so an
interrupted, truncated or tampered download never leaves anything that looks like data.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emoscope.core.errors import UserError
from emoscope.data.formats import MIN_RATERS, TEXT_FIELD, Example, ReadResult, apply_taxonomy, read_examples
from emoscope.data.labels import EKMAN_FILE, EMOTIONS_FILE, SENTIMENT_FILE, Taxonomy, load_taxonomy

BASE_URL = "https://raw.githubusercontent.com/google-research/google-research/master/goemotions/data/"
SPLITS = ("train", "dev", "test")
SPLIT_FILES = tuple(f"{split}.tsv" for split in SPLITS)
# name -> (size in bytes, sha256) of the official files.
OFFICIAL_FILES: dict[str, tuple[int, str]] = {
    "train.tsv": (3519053, "1c254a142be5c00e80d819b9ae1bbd36d94b2eeb8f4b1271846508d57e57d9c5"),
    "dev.tsv": (439059, "575489c079c9de1097062a01738f998590d6b7ead66dd1c9fd1d2ba01fd8bc62"),
    "test.tsv": (436706, "0587b2dd8b27b97352adbfc3fb083d46005c8946657fdc2b1ca8b1cc7f1f8be4"),
    EMOTIONS_FILE: (248, "45c3ef86782d2a4d7fedcd6d8c111aa0d0e94720689bd164fac94fefb4495a89"),
    EKMAN_FILE: (396, "d6b1fea382917c1685c42e1324a0344106be9390f52a3850ce032656d103a328"),
    SENTIMENT_FILE: (367, "801f6f028082141bd38541a4b14d65b33bdc55d29c7b2aaa029fefecf206f76b"),
}
Checksums = Mapping[str, tuple[int, str]]  # file name -> (size, sha256); tests pass their own
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_CHUNK = 1 << 16


@dataclass
class GoEmotions:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    taxonomy: Taxonomy
    skipped: list[str] = field(default_factory=list)  # messages of bad rows skipped, over all splits


def cache_root() -> Path:
    """emoscope's user cache: `$EMOSCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/emoscope` or `~/.cache/emoscope`."""
    base = (
        os.environ.get("EMOSCOPE_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emoscope"
    )
    return Path(base)


def cache_dir() -> Path:
    """Where downloads go."""
    return cache_root() / "goemotions"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("EMOSCOPE_DATA_URL") or BASE_URL
    return url if url.endswith("/") else url + "/"


def check_url(url: str) -> None:
    """Only https, except plain http to this machine (tests, a local mirror): nothing else is fetched."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise UserError(f"invalid download URL {url!r}") from None
    if host and (parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)):
        return
    raise UserError(
        f"refusing to download from {url}: only https URLs are allowed (plain http only to {', '.join(LOOPBACK_HOSTS)})"
    )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect must pass the same URL check, so https cannot be downgraded to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _where_to_put(folder: Path, names: list[str], base: str) -> str:
    return (
        f"put {', '.join(names)} (from {base}) in {folder}, or point --data-dir / EMOSCOPE_DATA_DIR "
        "at a folder that has them"
    )


class _NetworkError(Exception):
    """The server could not be reached or the transfer broke off (as opposed to a wrong file)."""


def _fetch(url: str, folder: Path, name: str, size: int, sha256: str, timeout: float) -> Path:
    """Download `url` to a temporary file in `folder`; return it only if size and sha256 match."""
    loopback = urllib.parse.urlsplit(url).hostname in LOOPBACK_HOSTS
    # A proxy cannot reach this machine's loopback, so local mirrors are fetched directly.
    handlers = [_CheckedRedirects()] + ([urllib.request.ProxyHandler({})] if loopback else [])
    opener = urllib.request.build_opener(*handlers)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            try:
                with opener.open(url, timeout=timeout) as response:
                    while received <= size and (chunk := response.read(_CHUNK)):
                        received += len(chunk)
                        digest.update(chunk)
                        out.write(chunk)
            except (OSError, http.client.HTTPException) as e:
                plain = isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError)
                raise _NetworkError(e.reason if plain else e) from None
            if received != size:
                got = f"more than {size}" if received > size else str(received)
                raise UserError(
                    f"rejected {name} from {url}: got {got} bytes, expected {size} (truncated or "
                    f"not the official file); nothing was saved in {folder}"
                )
            if digest.hexdigest() != sha256:
                raise UserError(
                    f"rejected {name} from {url}: sha256 {digest.hexdigest()} is not the "
                    f"official {sha256} (corrupted or tampered); nothing was saved in {folder}"
                )
            out.flush()
            os.fsync(out.fileno())
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download_goemotions(
    folder: str | Path, *, base_url: str | None = None, expected: Checksums | None = None, timeout: float = 60.0
) -> Path:
    """Fetch the official files (`expected`: name -> (size, sha256)) into `folder`, all or nothing.

    Every file is verified in a temporary file first; only when all passed are they renamed into place.
    """
    folder, base = Path(folder), _base_url(base_url)
    check_url(base)
    expected = OFFICIAL_FILES if expected is None else expected
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {folder}: {e.strerror or e}") from None
    verified: dict[str, Path] = {}
    try:
        for name, (size, sha256) in expected.items():
            try:
                verified[name] = _fetch(base + name, folder, name, size, sha256, timeout)
            except _NetworkError as e:
                raise UserError(
                    f"could not download {name} from {base} ({e}): {_where_to_put(folder, list(expected), base)}"
                ) from None
        for name, tmp in verified.items():
            os.replace(tmp, folder / name)
    finally:
        for tmp in verified.values():
            tmp.unlink(missing_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the renames themselves survive a crash
    finally:
        os.close(dir_fd)
    return folder


def _user_dir(path: Path, what: str) -> Path:
    """A folder the user chose: used as it is, never downloaded into; it must hold the three splits."""
    if not path.is_dir():
        raise UserError(f"{what} {path} {'is not a directory' if path.exists() else 'does not exist'}")
    missing = [name for name in SPLIT_FILES if not (path / name).is_file()]
    if missing:
        raise UserError(
            f"{what} {path} has no {', '.join(missing)}: it needs {', '.join(SPLIT_FILES)} (from {BASE_URL})"
        )
    return path


def resolve_data_dir(
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    base_url: str | None = None,
    expected: Checksums | None = None,
) -> Path:
    """The GoEmotions folder: `data_dir`, else `$EMOSCOPE_DATA_DIR`, else the cache (a file missing there, or
    whose size or sha256 is not the official one, is downloaded again).

    Downloading is off with `download=False`, `HF_HUB_OFFLINE=1` or `EMOSCOPE_OFFLINE=1`.
    """
    if data_dir is not None:
        return _user_dir(Path(data_dir), "data dir")
    if os.environ.get("EMOSCOPE_DATA_DIR"):
        return _user_dir(Path(os.environ["EMOSCOPE_DATA_DIR"]), "EMOSCOPE_DATA_DIR")
    folder = cache_dir()
    expected = OFFICIAL_FILES if expected is None else expected
    # A cached copy is trusted only while its sha256 still matches: a file of the right size can be damaged too.
    report = verify_data_dir(folder, expected)
    missing = {name: spec for name, spec in expected.items() if report[name] != "ok"}
    if not missing:
        return folder
    offline = [name for name in ("HF_HUB_OFFLINE", "EMOSCOPE_OFFLINE") if _flag(name)]
    if offline or not download:
        why = f"{offline[0]}=1 forbids downloading" if offline else "downloading is off"
        raise UserError(
            f"GoEmotions data not found and {why}: {_where_to_put(folder, list(missing), _base_url(base_url))}"
        )
    return download_goemotions(folder, base_url=base_url, expected=missing)


def verify_data_dir(path: str | Path, expected: Checksums | None = None) -> dict[str, str]:
    """Each official file -> "ok", "missing" or what differs (size, sha256) from the official copy."""
    path = Path(path)
    report = {}
    for name, (size, sha256) in (OFFICIAL_FILES if expected is None else expected).items():
        file = path / name
        if not file.is_file():
            report[name] = "missing" + ("" if name in SPLIT_FILES else " (the packaged copy is used)")
        elif file.stat().st_size != size:
            report[name] = f"size {file.stat().st_size}, official {size}"
        else:
            digest = hashlib.sha256()
            with file.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            report[name] = "ok" if digest.hexdigest() == sha256 else "sha256 differs from the official file"
    return report


def _taxonomy(taxonomy: str | Taxonomy, data_dir: Path | None) -> Taxonomy:
    return taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy, data_dir)


def load_goemotions(
    data_dir: str | Path | None = None,
    taxonomy: str | Taxonomy = "original",
    skip_bad_rows: bool = False,
    *,
    download: bool = True,
) -> GoEmotions:
    """The official train/dev/test splits, labels in `taxonomy`; the folder as `resolve_data_dir` finds it."""
    folder = resolve_data_dir(data_dir, download=download)
    tax = _taxonomy(taxonomy, folder)
    splits, skipped = {}, []
    for split, name in zip(SPLITS, SPLIT_FILES, strict=True):
        result = read_examples(folder / name, "tsv", skip_bad_rows=skip_bad_rows, labels=tax.original_labels)
        splits[split] = apply_taxonomy(result, tax)
        skipped += result.skipped
    return GoEmotions(splits["train"], splits["dev"], splits["test"], tax, skipped)


def load_examples(
    path: str | Path,
    taxonomy: str | Taxonomy = "original",
    fmt: str | None = None,
    skip_bad_rows: bool = False,
    min_raters: int = MIN_RATERS,
    text_column: str = TEXT_FIELD,
) -> ReadResult:
    """A user's labelled file in any supported layout, with labels in `taxonomy`; the text in `text_column`."""
    tax = _taxonomy(taxonomy, None)
    labels = tax.original_labels
    result = read_examples(
        path, fmt, skip_bad_rows=skip_bad_rows, labels=labels, min_raters=min_raters, text_column=text_column
    )
    return ReadResult(apply_taxonomy(result, tax), result.skipped, result.dropped)
