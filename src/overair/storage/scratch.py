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
import time
from dataclasses import dataclass
from pathlib import Path


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
