"""The one place that builds blob keys. Keys are content addresses, so content never changes under a key."""

from __future__ import annotations

import re

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def content_key(sha256_hex: str) -> str:
    """``sha256/ab/<hash>`` for a SHA-256 hex digest."""
    if not _HEX64.match(sha256_hex):
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return f"sha256/{sha256_hex[:2]}/{sha256_hex}"


def digest_of(key: str) -> str:
    """The SHA-256 digest a content key names (inverse of :func:`content_key`)."""
    digest = key.rsplit("/", 1)[-1]
    if not _HEX64.match(digest) or key != content_key(digest):
        raise ValueError(f"not a content key: {key!r}")
    return digest
