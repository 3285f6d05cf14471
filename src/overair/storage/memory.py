"""Blob store in memory, for tests and throw-away servers."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO

from overair.storage.base import ObjectNotFound
from overair.storage.keys import content_key


class MemoryBlobStore:
    """Keeps objects in a dict; same contract as every other backend."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}

    def put_file(self, path: Path) -> str:
        """Read the file into memory."""
        return self.put_bytes(path.read_bytes())

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``."""
        key = content_key(hashlib.sha256(data).hexdigest())
        self._objects.setdefault(key, bytes(data))
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

    def local_path(self, key: str) -> Path | None:
        """Never on disk."""
        return None

    def url_for(self, key: str) -> str | None:
        """Served by overair itself."""
        return None
