"""The bundle format: validating uploaded archives, the CodePush package hash, manifests, zipping.

Standard library only; nothing here imports the rest of overair.
"""

from __future__ import annotations

from overair.packages.archive import Limits, PackageInfo, extract_archive, inspect_archive, zip_directory
from overair.packages.errors import InvalidBundle, NotAZipArchive
from overair.packages.manifest import (
    EMPTY_SHA256,
    ManifestEntry,
    is_ignored_path,
    is_signature_path,
    manifest_from_json,
    manifest_to_json,
    package_hash,
)

__all__ = [
    "EMPTY_SHA256",
    "InvalidBundle",
    "Limits",
    "ManifestEntry",
    "NotAZipArchive",
    "PackageInfo",
    "extract_archive",
    "inspect_archive",
    "is_ignored_path",
    "is_signature_path",
    "manifest_from_json",
    "manifest_to_json",
    "package_hash",
    "zip_directory",
]
