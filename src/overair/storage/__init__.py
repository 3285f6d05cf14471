"""Blob storage behind a small protocol; the backend is chosen by URL (``file:///path``, ``memory://``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from overair.storage.base import BlobStore, ObjectNotFound, StoredObject
from overair.storage.filesystem import FilesystemBlobStore
from overair.storage.keys import content_key, digest_of
from overair.storage.memory import MemoryBlobStore
from overair.storage.scratch import Swept, remove_stale, spool


def open_blob_store(url: str) -> BlobStore:
    """Build the backend a URL names.

    >>> type(open_blob_store("memory://")).__name__
    'MemoryBlobStore'
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FilesystemBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "memory":
        return MemoryBlobStore()
    raise ValueError(
        f"unsupported blob store URL {url!r}: use file:///absolute/folder or memory:// (OVERAIR_BLOB_URL)"
    )


__all__ = [
    "BlobStore",
    "FilesystemBlobStore",
    "MemoryBlobStore",
    "ObjectNotFound",
    "StoredObject",
    "Swept",
    "content_key",
    "digest_of",
    "open_blob_store",
    "remove_stale",
    "spool",
]
