"""Release content in the blob store: storing a checked archive, and reading overair's own files back.

A package is stored three ways, all content-addressed: the archive itself (what CodePush clients
download), its per-file manifest, and each file on its own (what diffs and deltas are built from, and
what the checks below read).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from overair import packages
from overair.errors import Fix
from overair.packages.expo import ExpoContent
from overair.releases import rules
from overair.releases.errors import DestructiveModelChange
from overair.releases.models import Package, Release
from overair.releases.schemas import PublishOptions
from overair.storage import BlobStore, content_key


def special_file(manifest: Sequence[packages.ManifestEntry], name: str) -> packages.ManifestEntry | None:
    """overair's own file ``name`` in a package: at its root, or in its single top folder (``CodePush/``)."""
    candidates = [
        e for e in manifest if e.path == name or (e.path.count("/") == 1 and e.path.endswith("/" + name))
    ]
    return min(candidates, key=lambda e: len(e.path)) if candidates else None


def archive_file(archive: Path, info: packages.PackageInfo, name: str) -> bytes | None:
    """overair's own file ``name`` read from an archive that was checked as ``info``."""
    entry = special_file(info.manifest, name)
    if entry is None:
        return None
    with zipfile.ZipFile(archive) as zf:
        return zf.read(entry.path)


class ContentStore:
    """Packages in the blob store, and the checks that read their descriptor and data model."""

    def __init__(self, blobs: BlobStore, limits: packages.Limits, scratch: Path | None = None) -> None:
        self.blobs = blobs
        self.limits = limits
        # the server's own temporary folder (the data folder's tmp/), where a start-up sweep finds what a
        # killed process left; None: the system's (for tools and tests that build a store by hand)
        self.scratch = scratch

    def store(self, archive: Path, info: packages.PackageInfo) -> tuple[str, str]:
        """Store a checked archive, its manifest and each of its files; (archive key, manifest key)."""
        blob_key = self.blobs.put_file(archive)
        manifest_key = self.blobs.put_bytes(packages.manifest_to_json(info.manifest))
        with tempfile.TemporaryDirectory(prefix="overair-files-", dir=self.scratch) as folder:
            root = Path(folder) / "bundle"
            packages.extract_archive(archive, root, info.manifest, limits=self.limits)
            for entry in info.manifest:
                if not entry.is_directory:
                    self.blobs.put_file(root / entry.path)
        return blob_key, manifest_key

    @staticmethod
    def ensure_row(
        session: Session,
        info: packages.PackageInfo,
        blob_key: str,
        manifest_key: str,
        expo: ExpoContent | None = None,
    ) -> None:
        """Record the stored package once (content is shared by every release that has it); ``expo``: its
        Expo content description, when it is published as an Expo update."""
        stored = session.get(Package, info.package_hash)
        described = None if expo is None else expo.to_json()
        if stored is not None and described is not None and stored.expo is None:
            stored.expo = described
        if stored is None:
            session.add(
                Package(
                    package_hash=info.package_hash,
                    blob_key=blob_key,
                    manifest_key=manifest_key,
                    size=info.archive_size,
                    total_size=info.total_size,
                    file_count=sum(1 for e in info.manifest if not e.path.endswith("/")),
                    expo=described,
                )
            )
            session.flush()

    def manifest(self, key: str) -> tuple[packages.ManifestEntry, ...]:
        """The per-file manifest stored under ``key``."""
        with self.blobs.open(key) as stream:
            return packages.manifest_from_json(stream.read())

    def file(self, package: Package, name: str) -> bytes | None:
        """overair's own file ``name`` of stored content (read from its per-file blobs)."""
        entry = special_file(self.manifest(package.manifest_key), name)
        if entry is None:
            return None
        with self.blobs.open(content_key(entry.sha256)) as stream:
            return stream.read()

    def descriptor(self, package: Package) -> packages.Descriptor | None:
        """The bundle's ``overair.json``, if it has one."""
        raw = self.file(package, packages.DESCRIPTOR_FILE)
        return None if raw is None else packages.parse_descriptor(raw)

    def model_breaks(self, running: Package, coming: Package) -> bool:
        """Whether devices running ``running`` would lose data under ``coming``'s model (e.g. a rollback)."""
        old, new = self.file(running, packages.MODEL_FILE), self.file(coming, packages.MODEL_FILE)
        if old is None or new is None:
            return False
        return bool(packages.destructive_changes(packages.parse_model(old), packages.parse_model(new)))

    def check_model(
        self,
        history: Sequence[Release],
        target: str,
        options: PublishOptions,
        model: dict[str, packages.Entity] | None,
    ) -> bool:
        """Refuse a destructive data-model change unless allowed; True: devices must sync before updating.

        The new model is compared with the one devices of the same binaries run now: the newest enabled
        release with a matching target (and build number).
        """
        if model is None:
            return False
        for release in reversed(history):
            if release.disabled or release.build_number != options.build_number:
                continue
            if not rules.matching_targets(release.target_version, target):
                continue
            raw = self.file(release.package, packages.MODEL_FILE)
            if raw is None:
                return False
            changes = packages.destructive_changes(packages.parse_model(raw), model)
            if not changes:
                return False
            if not options.allow_destructive_model_change:
                raise DestructiveModelChange(
                    f"This bundle changes the offline data model destructively against {release.label}: "
                    + "; ".join(changes)
                    + ". Devices with unsynced records could lose them.",
                    subject={"release": release.label},
                    fixes=[Fix("allow-destructive-model-change")],
                )
            return True
        return False
