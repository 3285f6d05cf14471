"""The engine's file layer: every write is durable (fsync) and goes through one object.

Routing every file-system step through :class:`FileSystem` keeps the durability rules in one place and
lets tests inject a crash at any step (a subclass that raises from :meth:`FileSystem.step`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


class SyncedFile:
    """A file opened for writing whose ``close()`` flushes and fsyncs before closing."""

    def __init__(self, fs: FileSystem, path: Path, raw: BinaryIO) -> None:
        self._fs = fs
        self._path = path
        self._raw = raw

    def write(self, data: bytes) -> int:
        """Write ``data`` (one file-system step)."""
        self._fs.step("write", self._path)
        return self._raw.write(data)

    def close(self) -> None:
        """Flush, fsync and close (one step); the file is closed even if the step fails."""
        if self._raw.closed:
            return
        try:
            self._fs.step("fsync", self._path)
            self._raw.flush()
            os.fsync(self._raw.fileno())
        finally:
            self._raw.close()

    def tell(self) -> int:
        """The current position."""
        return self._raw.tell()

    def __enter__(self) -> SyncedFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._raw.close()


class FileSystem:
    """Durable file operations. Subclass and override :meth:`step` to observe or fail steps."""

    def step(self, operation: str, path: Path) -> None:
        """Called before every step; does nothing here."""

    def make_dir(self, path: Path) -> None:
        """Create a folder and its parents."""
        self.step("mkdir", path)
        path.mkdir(parents=True, exist_ok=True)

    def create(self, path: Path) -> SyncedFile:
        """Create a new file (fails if it exists)."""
        self.step("create", path)
        return SyncedFile(self, path, path.open("xb"))

    def append(self, path: Path) -> SyncedFile:
        """Open a file for appending (created if missing)."""
        self.step("append", path)
        return SyncedFile(self, path, path.open("ab"))

    def replace(self, source: Path, target: Path) -> None:
        """Atomically rename ``source`` over ``target`` and make the rename durable."""
        self.step("rename", target)
        os.replace(source, target)
        self.sync_dir(target.parent)

    def sync_dir(self, path: Path) -> None:
        """fsync a folder so that renames and new entries in it survive a power loss."""
        self.step("fsync-dir", path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_tree(self, root: Path) -> None:
        """fsync every folder below ``root`` (files were fsynced as they were closed)."""
        for folder, _dirs, _files in os.walk(root):
            self.sync_dir(Path(folder))

    def remove(self, path: Path) -> None:
        """Delete a file if present."""
        self.step("remove", path)
        path.unlink(missing_ok=True)

    def remove_tree(self, path: Path) -> None:
        """Delete a folder and everything in it, if present."""
        self.step("rmtree", path)
        shutil.rmtree(path, ignore_errors=True)

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data``: written to a temporary file, fsynced, renamed, folder fsynced."""
        tmp = path.with_name(path.name + ".tmp")
        self.remove(tmp)
        with self.create(tmp) as out:
            out.write(data)
        self.replace(tmp, path)
