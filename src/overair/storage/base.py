"""The blob store protocol: a handful of operations every backend provides."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol


class ObjectNotFound(Exception):
    """No object is stored under the key (each backend turns its own 'missing' error into this)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under {key!r}")
        self.key = key


class BlobStore(Protocol):
    """Content-addressed object storage.

    ``put_file`` and ``put_bytes`` return the key the content is stored under (its SHA-256 address); storing
    the same content twice stores it once. Writes are atomic: a reader sees the whole object or nothing.
    """

    def put_file(self, path: Path) -> str:
        """Store the file's bytes; return their key."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its key."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary reader over the object; raises :class:`ObjectNotFound`."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; raises :class:`ObjectNotFound`."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object, when the backend has one (lets servers use sendfile)."""
        ...

    def url_for(self, key: str) -> str | None:
        """A URL devices may download from directly (a CDN or presigned URL), or None: serve it ourselves."""
        ...
