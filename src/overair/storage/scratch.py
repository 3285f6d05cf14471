"""Temporary files a process leaves behind when it is killed, and removing them safely afterwards.

overair writes every temporary file into a folder of its own (the data folder's ``tmp/``, the blob
store's ``tmp/``), so a sweep finds exactly overair's leftovers and nothing of another program's. A
sweep removes only entries older than a given age: a file another worker is writing right now has a
fresh modification time and is kept.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SPOOL_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep removed: top-level entries (files or folders) and the bytes they held."""

    entries: int = 0
    bytes: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.entries + other.entries, self.bytes + other.bytes)

    def __bool__(self) -> bool:
        return self.entries > 0


def _newest_and_size(path: Path) -> tuple[float, int]:
    """The newest modification time in ``path`` (a file, or a folder and everything in it) and its bytes."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        return info.st_mtime, info.st_size
    newest, size = info.st_mtime, 0
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            try:
                entry = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            newest = max(newest, entry.st_mtime)
            if not stat.S_ISDIR(entry.st_mode):
                size += entry.st_size
    return newest, size


def remove_stale(folder: Path, max_age_seconds: float, *, now: float | None = None) -> Swept:
    """Remove each entry of ``folder`` in which nothing was modified for ``max_age_seconds``.

    A folder counts by the newest file inside it, so an extraction still being written is kept. Entries
    that vanish meanwhile (another worker swept them) or cannot be removed are skipped, never raised: a
    sweep runs at start-up and must not stop a server from starting. A missing ``folder`` sweeps nothing.
    """
    cutoff = (time.time() if now is None else now) - max_age_seconds
    removed = Swept()
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        try:
            newest, size = _newest_and_size(entry)
            if newest >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed += Swept(1, size)
    return removed


class AsyncReadable(Protocol):
    """An uploaded file being received (Starlette's ``UploadFile`` is one)."""

    async def seek(self, offset: int) -> None:
        """Go to ``offset``."""

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes; empty at the end."""


async def spool(
    upload: AsyncReadable, folder: Path | None, prefix: str, limit: int, too_large: Callable[[], Exception]
) -> Path:
    """Copy ``upload`` into a new temporary file in ``folder`` (overair's own, which a sweep cleans after
    a crash) and return its path; the caller removes it when done.

    Past ``limit`` bytes the copy stops with ``too_large()``; on that or any other failure the partial
    file is removed before the error goes on.
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".zip", dir=folder)
    path = Path(name)
    try:
        with open(fd, "wb") as out:
            await upload.seek(0)
            copied = 0
            while chunk := await upload.read(_SPOOL_CHUNK):
                copied += len(chunk)
                if copied > limit:
                    raise too_large()
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
