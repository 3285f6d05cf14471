"""Blob storage behind a small protocol; the backend is chosen by URL (``file:///path``, ``memory://``,
``s3://bucket/prefix``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from overair.storage.base import BlobStore, ObjectNotFound, StorageUnavailable, StoredObject
from overair.storage.filesystem import FilesystemBlobStore
from overair.storage.keys import content_key, digest_of
from overair.storage.memory import MemoryBlobStore
from overair.storage.options import S3Options
from overair.storage.scratch import Swept, remove_stale, spool


def open_blob_store(url: str, s3: S3Options | None = None) -> BlobStore:
    """Build the backend a URL names (``s3`` says where and as whom to reach an ``s3://`` bucket).

    >>> type(open_blob_store("memory://")).__name__
    'MemoryBlobStore'
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FilesystemBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "memory":
        return MemoryBlobStore()
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"blob store URL {url!r} names no bucket: write it like s3://bucket/prefix")
        from overair.storage.s3 import S3BlobStore  # boto3 loads only when a bucket is used

        return S3BlobStore(parsed.netloc, unquote(parsed.path), s3 or S3Options())
    raise ValueError(
        f"unsupported blob store URL {url!r}: use file:///absolute/folder, memory:// or s3://bucket/prefix "
        "(OVERAIR_BLOB_URL)"
    )


__all__ = [
    "BlobStore",
    "FilesystemBlobStore",
    "MemoryBlobStore",
    "ObjectNotFound",
    "S3Options",
    "StorageUnavailable",
    "StoredObject",
    "Swept",
    "content_key",
    "digest_of",
    "open_blob_store",
    "remove_stale",
    "spool",
]
