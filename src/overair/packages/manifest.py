"""Bundle manifests and the CodePush package hash (protocol notes, section 3.2).

A manifest lists every entry of a bundle archive in central-directory order: its path (``/``
separated, directory entries end with ``/``), the SHA-256 of its uncompressed bytes and its size.
:func:`package_hash` turns a manifest into the ``packageHash`` the reference server computes, byte
for byte: directory entries are hashed (as the SHA-256 of nothing), ``.codepushrelease`` signature
files are left out, the ``"path:hash"`` strings are sorted in UTF-16 code-unit order (JavaScript's
default sort) and the SHA-256 is taken of their compact JSON array.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from overair.packages.errors import InvalidBundle

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The hash recorded for directory entries (and empty files)."""

_SIGNATURE_FILE = ".codepushrelease"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_ignored_path(path: str) -> bool:
    """Tell whether an archive entry is left out of manifests (macOS metadata, as in section 3.2).

    >>> is_ignored_path("__MACOSX/CodePush/._main.jsbundle"), is_ignored_path("CodePush/.DS_Store")
    (True, True)
    >>> is_ignored_path("CodePush/main.jsbundle")
    False
    """
    return path.startswith("__MACOSX/") or path == ".DS_Store" or path.endswith("/.DS_Store")


def is_signature_path(path: str) -> bool:
    """Tell whether a manifest path is a release signature file, which the package hash excludes.

    >>> is_signature_path("CodePush/.codepushrelease"), is_signature_path("a.codepushrelease")
    (True, False)
    """
    return path == _SIGNATURE_FILE or path.endswith("/" + _SIGNATURE_FILE)


@dataclass(frozen=True)
class ManifestEntry:
    """One archive entry: a file, or a directory entry (``path`` ends with ``/``, size 0, empty hash)."""

    path: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"manifest path must be a non-empty string, got {self.path!r}")
        if "\x00" in self.path:
            raise ValueError(f"manifest path {self.path!r} contains a NUL character")
        try:
            self.path.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"manifest path {self.path!r} is not valid Unicode") from None
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"manifest hash for {self.path!r} must be 64 lowercase hex digits")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"manifest size for {self.path!r} must be a non-negative integer")
        if self.is_directory and (self.size != 0 or self.sha256 != EMPTY_SHA256):
            raise ValueError(f"directory entry {self.path!r} must have size 0 and the empty hash")

    @property
    def is_directory(self) -> bool:
        """Whether this is a directory entry (its path ends with ``/``)."""
        return self.path.endswith("/")


def _utf16_key(text: str) -> bytes:
    # Big-endian UTF-16 bytes compare like JavaScript compares strings: by 16-bit code unit.
    return text.encode("utf-16-be", "surrogatepass")


def package_hash(manifest: Iterable[ManifestEntry]) -> str:
    """Compute the CodePush ``packageHash`` of a manifest exactly as the reference server does.

    Later entries with the same path replace earlier ones (the reference builds a map), signature
    files are excluded, and the result is the hex SHA-256 of the compact JSON array of the sorted
    ``"path:sha256"`` strings.
    """
    hashes: dict[str, str] = {}
    for entry in manifest:
        hashes[entry.path] = entry.sha256
    items = [f"{path}:{digest}" for path, digest in hashes.items() if not is_signature_path(path)]
    items.sort(key=_utf16_key)
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_to_json(manifest: Iterable[ManifestEntry]) -> bytes:
    """Serialise a manifest as stable, compact UTF-8 JSON: ``{"files":[{"path","sha256","size"},...]}``.

    Entry order is preserved, so the same manifest always gives the same bytes.
    """
    files = [{"path": entry.path, "sha256": entry.sha256, "size": entry.size} for entry in manifest]
    return json.dumps({"files": files}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _bad_manifest(detail: str) -> InvalidBundle:
    return InvalidBundle(f"the stored bundle manifest is damaged ({detail}) — upload the release again")


def manifest_from_json(data: bytes) -> tuple[ManifestEntry, ...]:
    """Parse what :func:`manifest_to_json` wrote; raises :class:`InvalidBundle` if it is malformed."""
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _bad_manifest(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise _bad_manifest('expected an object with a "files" list')
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(document["files"]):
        if not isinstance(item, dict) or set(item) != {"path", "sha256", "size"}:
            raise _bad_manifest(f'file #{index + 1} must have exactly "path", "sha256" and "size"')
        try:
            entry = ManifestEntry(path=item["path"], sha256=item["sha256"], size=item["size"])
        except ValueError as exc:
            raise _bad_manifest(str(exc)) from None
        if entry.path in seen:
            raise _bad_manifest(f"{entry.path!r} is listed twice")
        seen.add(entry.path)
        entries.append(entry)
    return tuple(entries)
