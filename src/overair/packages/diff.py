"""CodePush diff archives: what changed between two packages, in the format the clients apply.

A diff archive's first entry is ``hotcodepush.json`` = ``{"deletedFiles": [...]}``; then come the new and
changed entries under their names. A client copies its current package folder, deletes ``deletedFiles``,
removes ``hotcodepush.json`` and overlays the rest (codepush-protocol.md §3.3, §3.5).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from overair.packages.manifest import ManifestEntry

DIFF_MANIFEST = "hotcodepush.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DiffPlan:
    """Entries to add or replace, and paths to delete, to turn one package into another."""

    changed: tuple[ManifestEntry, ...]
    deleted: tuple[str, ...]


def plan_diff(old: Iterable[ManifestEntry], new: Iterable[ManifestEntry]) -> DiffPlan | None:
    """What changed from ``old`` to ``new``; None when nothing did."""
    before = {e.path: e.sha256 for e in old}
    after = list(new)
    changed = tuple(e for e in after if before.get(e.path) != e.sha256)
    names = {e.path for e in after}
    deleted = tuple(path for path in before if path not in names)
    if not changed and not deleted:
        return None
    return DiffPlan(changed, deleted)


def write_diff_archive(
    plan: DiffPlan, destination: Path, open_file: Callable[[ManifestEntry], BinaryIO]
) -> None:
    """Write the diff archive; ``open_file`` gives the bytes of each changed entry."""
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        header = zipfile.ZipInfo(DIFF_MANIFEST, _FIXED_TIME)
        header.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(header, json.dumps({"deletedFiles": list(plan.deleted)}, separators=(",", ":")))
        for entry in plan.changed:
            info = zipfile.ZipInfo(entry.path, _FIXED_TIME)
            if entry.is_directory:
                info.external_attr = 0o40755 << 16
                archive.writestr(info, b"")
                continue
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            with open_file(entry) as source, archive.open(info, "w") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)


def apply_diff(current: Path, archive: Path, destination: Path) -> None:
    """The clients' algorithm: copy ``current``, delete ``deletedFiles``, overlay the archive's files.

    ``destination`` must not exist. Names are taken as they are, like the clients do; only use this on
    archives whose entries were checked (``inspect_archive``).
    """
    shutil.copytree(current, destination)
    with zipfile.ZipFile(archive) as zf:
        instructions = json.loads(zf.read(DIFF_MANIFEST)) if DIFF_MANIFEST in zf.namelist() else {}
        for name in instructions.get("deletedFiles", []):
            target = destination / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            for info in zf.infolist():
                if info.filename == DIFF_MANIFEST:
                    continue
                target = destination / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                staged = Path(scratch) / "file"
                with zf.open(info) as source, staged.open("wb") as out:
                    shutil.copyfileobj(source, out)
                os.replace(staged, target)
