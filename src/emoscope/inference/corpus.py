"""Score a whole corpus file: streamed in chunks, resumable after a kill, split into shards over machines.

The work goes into a folder beside the output, `OUT.partial/` (a shard's: `OUT.shard-I-of-N/`): `manifest.json`
(the input's identity and every option that shapes the output) and one file per finished chunk, each renamed
into place when complete, so the chunk files present are the chunks done and a rerun of the same command
scores only the others. At the end the output is assembled from the chunk files in input order and renamed
into place, and `OUT.meta.json` (the manifest without the shard) records how it was made. A single pass and
merged shards assemble the same chunk files the same way, so they give the same bytes.

Before anything is written the input is read once through (reading is cheap next to the model): a bad row
stops the command with nothing written, and the rows, chunks and carried columns are known in advance.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoscope.core import version
from emoscope.core.checks import LOCK, FolderLock, check_destination
from emoscope.core.errors import UserError
from emoscope.core.vocab import LONG_TEXT_MODES, WINDOW_COMBINES
from emoscope.data.batching import encode_windows
from emoscope.data.formats import TextReader, TextRow
from emoscope.inference.predictor import Predictor

OUTPUT_FORMATS = (".jsonl", ".csv", ".parquet")
MANIFEST = "manifest.json"
HEAD_BYTES = 1 << 20  # the input's first MiB, hashed: with its size, enough to notice another file
FIXED_FIELDS = ("text", "predicted", "top", "probs")  # what every output row has besides the carried columns


class _NotFinished(UserError):
    """A shard that has not started or finished yet: what `merge_shards(wait=True)` waits out."""


@dataclass(frozen=True)
class ScoreOptions:
    """Everything that shapes the output's bytes (so a resumed or sharded run must use the same)."""

    text_column: str | None = None
    header: bool = True  # False: a CSV/TSV without a header (columns column_1, column_2, ...)
    keep_columns: str = "all"  # "all", "none", or comma-separated column names
    chunk_size: int = 4096
    skip_bad_rows: bool = False
    long_text: str = "truncate"
    stride: int | None = None  # None: a quarter of the run's max_len
    combine: str = "max"
    top_k: int = 5
    batch_size: int = 128  # batch composition can move the last bits of reduced-precision probabilities

    def check(self) -> None:
        if self.chunk_size < 1:
            raise UserError(f"--chunk_size must be at least 1, got {self.chunk_size}")
        if self.batch_size < 1:
            raise UserError(f"--batch_size must be at least 1, got {self.batch_size}")
        if self.long_text not in LONG_TEXT_MODES:
            raise UserError(f"--long_text must be one of {', '.join(LONG_TEXT_MODES)}, got {self.long_text!r}")
        if self.combine not in WINDOW_COMBINES:
            raise UserError(f"--combine must be one of {', '.join(WINDOW_COMBINES)}, got {self.combine!r}")
        if self.top_k < 1:
            raise UserError(f"--top_k must be at least 1, got {self.top_k}")
        if self.stride is not None and self.long_text != "chunk":
            raise UserError("--stride applies to --long_text chunk only")


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N), 0 <= I < N."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise UserError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(index), int(count)


def torchrun_shard() -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) under torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def work_folder(out: Path, shard: tuple[int, int]) -> Path:
    index, count = shard
    suffix = ".partial" if count == 1 else f".shard-{index}-of-{count}"
    return out.with_name(out.name + suffix)


def meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def _chunk_name(index: int, fmt: str) -> str:
    return f"chunk-{index:06d}{fmt}"


def _check_output(out: Path, overwrite: bool) -> str:
    fmt = out.suffix.lower()
    if fmt not in OUTPUT_FORMATS:
        raise UserError(f"{out}: output must end in {', '.join(OUTPUT_FORMATS[:-1])} or {OUTPUT_FORMATS[-1]}")
    for path in (out, meta_path(out)):
        if path.exists() and not overwrite:
            raise UserError(f"{path} already exists; pass --overwrite to replace it")
    return fmt


def _arrow_type(kinds: set[type]) -> str:
    """A carried column's Parquet type from the Python types of its values; anything mixed becomes JSON text."""
    if kinds <= {str}:
        return "string"
    if kinds == {bool}:
        return "bool"
    if kinds == {int}:
        return "int64"
    return "double" if kinds <= {int, float} else "string"


def _survey(reader: TextReader, options: ScoreOptions, labels: Sequence[str]) -> dict[str, Any]:
    """Read the input once through: validates every row, and finds the rows, the chunks and the columns to
    carry (JSONL: every field any record has, in order of appearance) with their types."""
    rows, kinds = 0, {}
    for row in reader.rows():
        rows += 1
        for name, value in row.columns.items():
            seen = kinds.setdefault(name, set())
            if value is not None:
                seen.add(type(value))
    if options.keep_columns == "all":
        keep = list(kinds)
    elif options.keep_columns == "none":
        keep = []
    else:
        keep = [name.strip() for name in options.keep_columns.split(",") if name.strip()]
        missing = [name for name in keep if name not in kinds]
        if missing:
            raise UserError(
                f"{reader.path}{f':{reader.header_line}' if reader.header_line else ''}: no column "
                f"{missing[0]!r} to keep; found columns: {', '.join(kinds) or 'none'}"
            )
    clash = [name for name in keep if name in FIXED_FIELDS or name in labels]
    if clash:
        raise UserError(
            f"{reader.path}: column {clash[0]!r} would collide with an output column of that name; "
            "leave it out of --keep_columns"
        )
    return {
        "rows": rows,
        "chunks": -(-rows // options.chunk_size),
        "skipped_rows": reader.skipped,
        "first_skipped": reader.skipped_messages,
        "columns": [[name, _arrow_type(kinds[name])] for name in keep],
    }


def _input_identity(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "head_sha256": head}


def _precision(predictor: Predictor) -> str | list[str]:
    """The precision the scores come from (an ensemble: its members'): shards must agree on it."""
    members = getattr(predictor, "members", None)
    return [m.precision for m in members] if members else predictor.precision


def _manifest(predictor: Predictor, in_path: Path, fmt: str, options: ScoreOptions, survey: dict) -> dict:
    return {
        "emoscope": version.__version__,
        "run": str(predictor.run_dir.resolve()),
        "precision": _precision(predictor),
        "device": predictor.device.type,
        "labels": list(predictor.labels),
        "input": _input_identity(in_path),
        "output_format": fmt,
        "options": asdict(options),
        **survey,
    }


def _difference(ours: dict, theirs: dict) -> str | None:
    """The first field (dotted) where two manifests differ, ignoring the shard."""
    for key in sorted(set(ours) | set(theirs)):
        if key == "shard":
            continue
        a, b = ours.get(key), theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b)
            if inner:
                return f"{key}.{inner}"
        elif a != b:
            return key
    return None


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{folder} is not a scoring folder of emoscope predict (no readable {MANIFEST})") from None


def _open_work(work: Path, manifest: dict, overwrite: bool) -> FolderLock:
    """Lock the work folder (one writer per output: a second scorer stops at once, naming the holder), then
    start it, or continue the one a killed run left if it was made for the same input and options; another's
    is refused (or, with --overwrite, started over)."""
    ours = {MANIFEST, LOCK}
    if work.is_dir() and not (work / MANIFEST).is_file() and not overwrite and {p.name for p in work.iterdir()} - ours:
        raise UserError(f"{work} exists and is not a scoring folder; move it away or pass --overwrite")
    lock = _lock(work)
    try:
        if (work / MANIFEST).is_file():
            differs = _difference(manifest, _read_manifest(work))
            if differs is None:
                return lock
            if not overwrite:
                raise UserError(
                    f"{work} holds unfinished work for another input or options ({differs} differs); run the "
                    "same command to continue it, or pass --overwrite to start over"
                )
        for item in work.iterdir():  # everything but the lock we hold
            if item.name != LOCK:
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
        _write_json(work / MANIFEST, manifest)
    except BaseException:
        lock.release()
        raise
    return lock


def _lock(work: Path) -> FolderLock:
    """The work folder's lock, on the folder as it is now: a folder its finished holder removed meanwhile is
    made again, so two scorers never hold locks on two copies of one folder."""
    while True:
        work.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(work, f"{work.name.removesuffix('.partial')} (its lock: {work / LOCK})")
        try:
            lock.acquire()
        except FileNotFoundError:
            continue
        try:
            if os.path.samestat(os.fstat(lock.fd), os.stat(lock.path)):
                return lock
        except FileNotFoundError:
            pass
        lock.release()


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _chunks(rows: Iterator[TextRow], size: int) -> Iterator[list[TextRow]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _schema(labels: Sequence[str], columns: list[list[str]]):
    import pyarrow as pa

    return pa.schema(
        [("text", pa.string()), ("predicted", pa.list_(pa.string()))]
        + [(label, pa.float32()) for label in labels]
        + [(name, pa.type_for_alias(kind)) for name, kind in columns]
    )


def _as_text(value: Any) -> str | None:
    """A carried value in a text column: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _write_chunk(path: Path, predictor: Predictor, rows: list[TextRow], probs: np.ndarray, manifest: dict) -> None:
    """One chunk's output rows, renamed into place when complete: its presence means the chunk is done."""
    fmt, columns = manifest["output_format"], manifest["columns"]
    results = predictor.describe([row.text for row in rows], probs, manifest["options"]["top_k"])
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        data: dict[str, Any] = {"text": [r["text"] for r in results], "predicted": [r["predicted"] for r in results]}
        data.update({label: np.asarray(probs[:, j], dtype=np.float32) for j, label in enumerate(predictor.labels)})
        for name, kind in columns:
            values = [row.columns.get(name) for row in rows]
            data[name] = [_as_text(v) for v in values] if kind == "string" else values
        pq.write_table(pa.table(data, schema=_schema(predictor.labels, columns)), tmp)
    elif fmt == ".csv":
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row, r in zip(rows, results, strict=True):
                writer.writerow(
                    [r["text"], ";".join(r["predicted"])]
                    + [f"{r['probs'][label]:.6f}" for label in predictor.labels]
                    + [_as_text(row.columns.get(name)) or "" for name, _ in columns]
                )
    else:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row, r in zip(rows, results, strict=True):
                record = {
                    "text": r["text"],
                    "predicted": r["predicted"],
                    "top": [{"label": k, "prob": p} for k, p in r["top"]],
                    "probs": r["probs"],
                }
                record.update({name: row.columns.get(name) for name, _ in columns})
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def _assemble(out: Path, chunk_files: list[Path], manifest: dict) -> None:
    """The output from its chunk files in input order, and its metadata, each renamed into place at the end."""
    fmt = manifest["output_format"]
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(tmp, _schema(manifest["labels"], manifest["columns"])) as writer:
            for path in chunk_files:
                writer.write_table(pq.read_table(path))
    else:
        with open(tmp, "wb") as handle:
            if fmt == ".csv":
                header = io.StringIO()
                csv.writer(header).writerow(
                    ["text", "predicted", *manifest["labels"], *(name for name, _ in manifest["columns"])]
                )
                handle.write(header.getvalue().encode("utf-8"))
            for path in chunk_files:
                with open(path, "rb") as chunk:
                    shutil.copyfileobj(chunk, handle)
    os.replace(tmp, out)
    _write_json(meta_path(out), {key: value for key, value in manifest.items() if key != "shard"})


def score_file(
    predictor: Predictor,
    in_path: str | Path,
    out: str | Path,
    options: ScoreOptions = ScoreOptions(),
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Score every text of `in_path` into `out` (.jsonl, .csv or .parquet), chunk by chunk; returns the
    manifest, with `chunks_done_before`: the chunks a killed run had finished. With `shard=(i, n)`, n > 1, it
    scores chunks i, i + n, ... into its work folder only: `merge_shards` joins the shards."""
    in_path, out = Path(in_path), Path(out)
    options.check()
    fmt = _check_output(out, overwrite)
    reader = TextReader(in_path, options.text_column, options.skip_bad_rows, options.header)
    manifest = _manifest(predictor, in_path, fmt, options, _survey(reader, options, predictor.labels))
    _check_scoring(predictor, options)
    # the chunks and the assembled output each take about the input and its probabilities as text
    check_destination(out, 2 * (in_path.stat().st_size + manifest["rows"] * len(predictor.labels) * 12))
    index, count = shard
    manifest["shard"] = [index, count]
    work = work_folder(out, shard)
    with _open_work(work, manifest, overwrite):
        return _score(predictor, reader, options, out, work, manifest, progress)


def _check_scoring(predictor: Predictor, options: ScoreOptions) -> None:
    """Cut a text into windows as the options ask, before anything is written: a --stride the run's windows
    cannot take stops the command here, not after the work folder exists."""
    if options.long_text == "chunk":
        for model in getattr(predictor, "members", None) or [predictor]:
            max_len = model.config.max_len
            encode_windows(model.tokenizer, ["a"], max_len, max_len // 4 if options.stride is None else options.stride)


def _score(
    predictor: Predictor,
    reader: TextReader,
    options: ScoreOptions,
    out: Path,
    work: Path,
    manifest: dict,
    progress: bool,
) -> dict:
    """The chunks not done yet, into the locked work folder; then (one shard of one) the output."""
    from tqdm import tqdm

    fmt, (index, count) = manifest["output_format"], manifest["shard"]
    in_path = reader.path
    mine = range(index, manifest["chunks"], count)
    size, rows = options.chunk_size, manifest["rows"]
    rows_in = {k: min(size, rows - k * size) for k in mine}
    done = {k for k in mine if (work / _chunk_name(k, fmt)).is_file()}
    bar = tqdm(
        total=sum(rows_in.values()),
        initial=sum(rows_in[k] for k in done),
        unit="texts",
        desc=f"scoring {in_path.name}" + (f" (shard {index}/{count})" if count > 1 else ""),
        disable=not progress,
    )
    with bar:
        for k, chunk in enumerate(_chunks(reader.rows(), size)):
            if k % count != index or k in done:
                continue
            probs = predictor.predict_proba(
                [row.text for row in chunk],
                options.batch_size,
                long_text=options.long_text,
                stride=options.stride,
                combine=options.combine,
            )
            _write_chunk(work / _chunk_name(k, fmt), predictor, chunk, probs, manifest)
            bar.update(len(chunk))
    if count == 1:
        _assemble(out, [work / _chunk_name(k, fmt) for k in range(manifest["chunks"])], manifest)
        shutil.rmtree(work)
    return {**manifest, "chunks_done_before": len(done)}


def merge_shards(out: str | Path, shards: Sequence[str | Path], overwrite: bool = False, wait: bool = False) -> dict:
    """Join shard folders (`OUT.shard-I-of-N/`, all N of them) into `out`, the same bytes as a single pass; the
    shard folders are removed once it is in place. `wait`: poll until every shard has finished (torchrun)."""
    out, folders = Path(out), [Path(s) for s in shards]
    fmt = _check_output(out, overwrite)
    if not folders:
        raise UserError("--merge needs the output and the shard folders: --merge OUT SHARD_DIR...")
    check_destination(out, sum(f.stat().st_size for folder in folders if folder.is_dir() for f in folder.iterdir()))
    while True:
        try:
            manifest, chunk_files = _shard_chunks(folders, fmt)
            break
        except _NotFinished:
            if not wait:
                raise
            time.sleep(2)
    _assemble(out, chunk_files, manifest)
    for folder in folders:
        shutil.rmtree(folder)
    return manifest


def _shard_chunks(folders: list[Path], fmt: str) -> tuple[dict, list[Path]]:
    """The shards' common manifest and every chunk file in input order; refuses shards of different inputs or
    options, and names a shard that has not finished."""
    unstarted = next((folder for folder in folders if not (folder / MANIFEST).is_file()), None)
    if unstarted is not None:
        raise _NotFinished(f"{unstarted} is not a shard folder of emoscope predict (no {MANIFEST}): has it started?")
    manifests = [_read_manifest(folder) for folder in folders]
    first = manifests[0]
    if first["output_format"] != fmt:
        raise UserError(f"the shards were written as {first['output_format']}, not {fmt}: name the output so")
    for folder, manifest in zip(folders[1:], manifests[1:], strict=True):
        differs = _difference(first, manifest)
        if differs is not None:
            raise UserError(f"{folder} was scored with another input or options than {folders[0]} ({differs} differs)")
    found: dict[int, Path] = {}
    for folder in folders:
        for k in range(first["chunks"]):
            if (folder / _chunk_name(k, fmt)).is_file():
                found.setdefault(k, folder / _chunk_name(k, fmt))
    missing = next((k for k in range(first["chunks"]) if k not in found), None)
    if missing is not None:
        count = first["shard"][1]
        raise _NotFinished(
            f"chunk {missing} of {first['chunks']} is missing: shard {missing % count}/{count} has not finished "
            "(run it again: it continues where it stopped) or its folder was not named"
        )
    return first, [found[k] for k in range(first["chunks"])]
