"""Blob store in memory, for tests and throw-away servers."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from overair.storage.base import ObjectNotFound, StoredObject
from overair.storage.keys import content_key
from overair.storage.scratch import Swept


class MemoryBlobStore:
    """Keeps objects in a dict; same contract as every other backend."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._modified: dict[str, dt.datetime] = {}

    def put_file(self, path: Path) -> str:
        """Read the file into memory."""
        return self.put_bytes(path.read_bytes())

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``."""
        key = content_key(hashlib.sha256(data).hexdigest())
        self._objects.setdefault(key, bytes(data))
        self._modified[key] = dt.datetime.now(dt.UTC)
        return key

    def open(self, key: str) -> BinaryIO:
        """A reader over the stored bytes."""
        try:
            return io.BytesIO(self._objects[key])
        except KeyError:
            raise ObjectNotFound(key) from None

    def size(self, key: str) -> int:
        """The object's size."""
        try:
            return len(self._objects[key])
        except KeyError:
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return key in self._objects

    def delete(self, key: str) -> None:
        """Remove the object."""
        self._objects.pop(key, None)
        self._modified.pop(key, None)

    def stat(self, key: str) -> StoredObject:
        """The object's size and when it was last stored."""
        try:
            return StoredObject(key, len(self._objects[key]), self._modified[key])
        except KeyError:
            raise ObjectNotFound(key) from None

    def list_objects(self) -> Iterator[StoredObject]:
        """Every object (a snapshot: storing meanwhile does not disturb the listing)."""
        objects, modified = dict(self._objects), dict(self._modified)
        for key, data in objects.items():
            yield StoredObject(key, len(data), modified[key])

    def sweep_temporary(self, max_age_seconds: float) -> Swept:
        """Nothing is ever half-written here."""
        return Swept()

    def local_path(self, key: str) -> Path | None:
        """Never on disk."""
        return None

    def presigned_url(self, key: str, signed_at: dt.datetime, expires_seconds: int) -> str | None:
        """Served by overair itself: no presigned URLs."""
        return None
