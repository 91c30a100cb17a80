"""Checks every command runs before it writes anything: where the output goes, and the lock that keeps one
writer per output. Torch-free."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from emoscope.core.errors import UserError

LOCK = ".lock"  # in a work folder: held (fcntl.flock) by the one process writing there


def check_destination(path: str | Path, need_bytes: int = 0) -> None:
    """Refuse a destination that cannot be written, or whose disk has less than `need_bytes` free, before
    anything is created: the nearest existing folder must take a file (an unnamed temporary one, gone when
    closed, since permissions alone do not show a read-only file system)."""
    path = Path(path)
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        if existing != path.absolute():
            raise UserError(f"{path} cannot be written: {existing} is a file, not a folder")
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(f"{path} cannot be written: {existing} is not writable ({exc.strerror or exc})") from None
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise UserError(
            f"not enough disk space for {path}: {free >> 20} MiB free in {existing}, about {need_bytes >> 20} MiB "
            "needed"
        )


class FolderLock:
    """An exclusive OS lock on `folder/.lock` for as long as it is held: the kernel drops it when the holder
    exits, however it ends (SIGKILL included), so a lock is never stale. A second holder is refused at once,
    naming the pid that holds it."""

    def __init__(self, folder: Path, what: str):
        self.path, self.what = Path(folder) / LOCK, what
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            raise UserError(
                f"{self.path.parent} is in use: process {holder} is writing {self.what}; wait for it to finish, "
                "or stop it and run the same command again to continue its work"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self if self.fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
