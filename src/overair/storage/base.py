"""The blob store protocol: a handful of operations every backend provides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from overair.storage.scratch import Swept


class ObjectNotFound(Exception):
    """No object is stored under the key (each backend turns its own 'missing' error into this)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under {key!r}")
        self.key = key


class StorageUnavailable(Exception):
    """The object store cannot be used right now (unreachable, refusing the credentials, no such bucket).

    ``message`` is one line naming the store and what to check; servers answer 503 while it lasts.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as a listing sees it: its key, its size and when it was last stored (UTC)."""

    key: str
    size: int
    modified: dt.datetime


class BlobStore(Protocol):
    """Content-addressed object storage.

    ``put_file`` and ``put_bytes`` return the key the content is stored under (its SHA-256 address); storing
    the same content twice stores it once, and refreshes the object's ``modified`` time (so a sweep of
    unreferenced objects never takes content a publish in flight has just stored again). Writes are
    atomic: a reader sees the whole object or nothing. Every operation may raise
    :class:`StorageUnavailable` when the store is remote and cannot be reached.
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

    def presigned_url(self, key: str, signed_at: dt.datetime, expires_seconds: int) -> str | None:
        """A URL anyone may GET the object from, valid from ``signed_at`` for ``expires_seconds``; None when
        the backend cannot presign (overair then serves the object itself)."""
        ...

    def stat(self, key: str) -> StoredObject:
        """The object's size and modification time; raises :class:`ObjectNotFound`."""
        ...

    def list_objects(self) -> Iterator[StoredObject]:
        """Every object in the store, in no particular order (temporary files of writes excluded).

        Meant for maintenance (``overair fsck``), not for request paths: it walks the whole store.
        """
        ...

    def sweep_temporary(self, max_age_seconds: float) -> Swept:
        """Remove the backend's own leftovers of interrupted writes older than ``max_age_seconds``.

        A process killed while writing leaves its partial object behind; a write in progress elsewhere is
        younger than the age and kept. Backends without such leftovers remove nothing.
        """
        ...
