"""Blob store in a local folder: ``<root>/sha256/ab/<hash>``."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from overair.storage.base import ObjectNotFound, StoredObject
from overair.storage.keys import content_key
from overair.storage.scratch import Swept, remove_stale

_CHUNK = 1024 * 1024


class FilesystemBlobStore:
    """Stores each object once under its SHA-256; writes go to a temporary file, are fsynced and renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        if ".." in key.split("/") or key.startswith("/"):
            raise ObjectNotFound(key)
        return self.root / key

    @staticmethod
    def _refresh(target: Path) -> bool:
        """Mark an object stored again (its time is what protects it from a sweep); False: it is gone."""
        try:
            os.utime(target)
        except FileNotFoundError:
            return False
        return True

    def _commit(self, tmp_path: Path, digest: str) -> str:
        key = content_key(digest)
        target = self._path(key)
        if self._refresh(target):
            tmp_path.unlink(missing_ok=True)
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, target)
        # the rename itself must survive a power loss, or a committed release could point at nothing
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    def put_file(self, path: Path) -> str:
        """Copy ``path`` into the store (hashing while copying)."""
        sha = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix="overair-blob-", dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(Path(tmp), sha.hexdigest())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``."""
        digest = hashlib.sha256(data).hexdigest()
        if self._refresh(self._path(content_key(digest))):
            return content_key(digest)
        fd, tmp = tempfile.mkstemp(prefix="overair-blob-", dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(Path(tmp), digest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        """Open the object for reading."""
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def size(self, key: str) -> int:
        """The object's size."""
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def stat(self, key: str) -> StoredObject:
        """The object's size and modification time."""
        try:
            info = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        return StoredObject(key, info.st_size, dt.datetime.fromtimestamp(info.st_mtime, dt.UTC))

    def list_objects(self) -> Iterator[StoredObject]:
        """Every file under ``sha256/``; files that vanish during the walk are skipped."""
        top = self.root / "sha256"
        if not top.is_dir():
            return
        with os.scandir(top) as prefixes:
            for prefix in prefixes:
                if not prefix.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(prefix.path) as objects:
                    for entry in objects:
                        try:
                            if not entry.is_file(follow_symlinks=False):
                                continue
                            info = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        modified = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
                        yield StoredObject(f"sha256/{prefix.name}/{entry.name}", info.st_size, modified)

    def sweep_temporary(self, max_age_seconds: float) -> Swept:
        """Remove partial writes in ``<root>/tmp`` (a killed process leaves them) older than the age."""
        return remove_stale(self.root / "tmp", max_age_seconds)

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        try:
            return self._path(key).is_file()
        except ObjectNotFound:
            return False

    def delete(self, key: str) -> None:
        """Remove the object."""
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        """The file itself."""
        path = self._path(key)
        return path if path.is_file() else None

    def presigned_url(self, key: str, signed_at: dt.datetime, expires_seconds: int) -> str | None:
        """Served by overair itself: no presigned URLs."""
        return None
