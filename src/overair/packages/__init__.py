"""The bundle format: validating uploaded archives, the CodePush package hash, manifests, zipping, deltas.

Standard library only, plus ``cryptography`` in ``signing``, ``hdiffpatch`` in ``delta`` and ``bsdiff4`` in
``bsdiff`` (Expo launch-asset patches); nothing here imports the rest of overair.
"""

from __future__ import annotations

from overair.packages.archive import Limits, PackageInfo, extract_archive, inspect_archive, zip_directory
from overair.packages.delta import PLAIN_VERSION as PLAIN_DELTA_FORMAT
from overair.packages.delta import (
    Delta,
    InvalidDelta,
    apply_delta,
    build_delta,
    build_delta_between,
    delta_format,
    read_delta,
    tree_manifest,
    verify_tree,
)
from overair.packages.descriptor import (
    DESCRIPTOR_FILE,
    Descriptor,
    FullReleaseReason,
    full_release_reasons,
    parse_descriptor,
)
from overair.packages.diff import DIFF_MANIFEST, DiffPlan, apply_diff, plan_diff, write_diff_archive
from overair.packages.edit import rewrite_archive, top_folder
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
from overair.packages.model import MODEL_FILE, Entity, destructive_changes, parse_model

__all__ = [
    "DESCRIPTOR_FILE",
    "DIFF_MANIFEST",
    "EMPTY_SHA256",
    "MODEL_FILE",
    "PLAIN_DELTA_FORMAT",
    "Delta",
    "Descriptor",
    "DiffPlan",
    "Entity",
    "FullReleaseReason",
    "InvalidBundle",
    "InvalidDelta",
    "Limits",
    "ManifestEntry",
    "NotAZipArchive",
    "PackageInfo",
    "apply_delta",
    "apply_diff",
    "build_delta",
    "build_delta_between",
    "delta_format",
    "destructive_changes",
    "extract_archive",
    "full_release_reasons",
    "inspect_archive",
    "is_ignored_path",
    "is_signature_path",
    "manifest_from_json",
    "manifest_to_json",
    "package_hash",
    "parse_descriptor",
    "parse_model",
    "plan_diff",
    "read_delta",
    "rewrite_archive",
    "top_folder",
    "tree_manifest",
    "verify_tree",
    "write_diff_archive",
    "zip_directory",
]
