"""How ``overair fsck`` tells what it found: lines for people, a JSON document for scripts, an exit code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from overair.maintenance.fsck import Finding, Problem, Report
from overair.maintenance.leftovers import human_size
from overair.storage import BlobStore, ObjectNotFound, StoredObject

EXIT_OK = 0
"""Every release's content is there and intact, and no blob is unreferenced."""
EXIT_DAMAGED = 1
"""Some release's content is missing or damaged (or the check could not run)."""
EXIT_UNREFERENCED = 3
"""Nothing is damaged, but unreferenced blobs take space (2 is taken: a usage error)."""

LISTED = 20
"""Unreferenced blobs named in the text output; the JSON output names them all."""

_WHAT = {
    Problem.MISSING: "MISSING",
    Problem.CORRUPT: "DAMAGED",
    Problem.BAD_KEY: "BAD KEY",
    Problem.BAD_MANIFEST: "UNREADABLE",
    Problem.WRONG_PACKAGE_HASH: "WRONG HASH",
}


def exit_code(report: Report) -> int:
    """What ``overair fsck`` exits with (see the ``EXIT_*`` constants)."""
    if report.damaged:
        return EXIT_DAMAGED
    return EXIT_UNREFERENCED if report.remaining_unreferenced() else EXIT_OK


def _fixes(finding: Finding) -> list[str]:
    """What an operator can do about one finding, as sentences and commands."""
    if finding.problem in (Problem.MISSING, Problem.CORRUPT):
        restore = (
            "Restore the blob from a backup of the blob store (a blob's name is its SHA-256, so any copy "
            "with that name and content is right)"
        )
        steps = [restore + ("." if finding.problem is Problem.MISSING else ", replacing the damaged file.")]
    else:
        steps = [
            "The database and the blob store disagree about this package: restore both from the same "
            "backup, or publish its bundle again as a new release."
        ]
    if finding.releases:
        steps.append("Until then, stop devices downloading the release(s) it breaks:")
        steps += [
            f'  overair release patch-update --project-name "{name.app}" --deployment "{name.deployment}" '
            f"--label {name.label} --disabled true"
            for name in finding.releases
        ]
    return steps


def _file(blobs: BlobStore, key: str) -> str | None:
    """Where the blob lies, for stores on a local disk."""
    try:
        path = blobs.local_path(key)
    except ObjectNotFound:  # a key the store refuses (the database names a non-content key)
        return None
    return None if path is None else str(path)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _names(finding: Finding, limit: int = 10) -> str:
    if not finding.releases:
        return "no release (a package kept after its releases were deleted)"
    names = [str(n) for n in finding.releases[:limit]]
    more = len(finding.releases) - limit
    return ", ".join(names) + (f" and {more:,} more" if more > 0 else "")


def _total(objects: list[StoredObject]) -> str:
    count = len(objects)
    return (
        f"{count:,} unreferenced blob{'s' if count != 1 else ''} ({human_size(sum(o.size for o in objects))})"
    )


def render(report: Report, blobs: BlobStore, grace_hours: float) -> list[str]:
    """The report as lines for a terminal: each problem with the releases it breaks and what to do."""
    lines = [
        f"Checked {report.releases:,} releases, {report.packages:,} packages and {report.blobs_checked:,} "
        f"blobs ({human_size(report.bytes_checked)})."
    ]
    for finding in report.findings:
        lines += ["", f"{_WHAT[finding.problem]} {finding.key}: {finding.detail}."]
        lines.append("  Needed as: " + "; ".join(u.describe() for u in finding.uses[:5]))
        lines.append(f"  Breaks: {_names(finding)}")
        if (path := _file(blobs, finding.key)) is not None:
            lines.append(f"  File: {path}")
        lines += [f"  {step}" for step in _fixes(finding)]
    removal = report.removal
    if removal is not None and removal.removed:
        lines += ["", f"Removed {_total(list(removal.removed))}."]
    remaining = report.remaining_unreferenced()
    if remaining:
        lines += ["", f"{_total(remaining)} that no package, manifest, diff or delta references:"]
        lines += [f"  {o.key}  {human_size(o.size)}, stored {_when(o.modified)}" for o in remaining[:LISTED]]
        if len(remaining) > LISTED:
            lines.append(f"  … and {len(remaining) - LISTED:,} more (--json lists them all)")
        if removal is not None and removal.refused:
            lines.append(
                f"  They were not removed: {removal.refused}. Fix the problems above, then check again."
            )
        elif removal is not None:
            lines.append(
                f"  They were kept as stored in the last {grace_hours:g} hours (a publish may be in flight "
                "on another host); run the check again later to remove them."
            )
        else:
            lines.append(
                "  Remove them with: overair fsck --remove-unreferenced (blobs stored in the last "
                f"{grace_hours:g} hours are kept, as a publish may be in flight)."
            )
    lines.append("")
    if report.damaged:
        broken = sorted({name for f in report.findings for name in f.releases})
        lines.append(
            f"Found {len(report.findings):,} problem{'s' if len(report.findings) != 1 else ''}, "
            f"breaking {len(broken):,} release{'s' if len(broken) != 1 else ''}."
        )
    elif remaining:
        lines.append("Every release's content is intact; the unreferenced blobs only take space.")
    else:
        lines.append("Everything is consistent.")
    return lines


def _stored(o: StoredObject, removed: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": o.key, "size": o.size, "modified": o.modified.isoformat()}
    if removed is not None:
        out["removed"] = removed
    return out


def to_json(report: Report, blobs: BlobStore) -> dict[str, Any]:
    """The report as a JSON document (``overair fsck --json``); its fields are stable for scripts."""
    gone = {o.key for o in report.removal.removed} if report.removal else set()
    removal = report.removal
    return {
        "ok": exit_code(report) == EXIT_OK,
        "exit_code": exit_code(report),
        "checked": {
            "releases": report.releases,
            "packages": report.packages,
            "blobs": report.blobs_checked,
            "bytes": report.bytes_checked,
        },
        "problems": [
            {
                "problem": f.problem.value,
                "key": f.key,
                "detail": f.detail,
                "path": _file(blobs, f.key),
                "uses": [
                    {"role": u.role.value, "package_hash": u.package_hash, "detail": u.detail} for u in f.uses
                ],
                "releases": [
                    {"app": n.app, "deployment": n.deployment, "label": n.label} for n in f.releases
                ],
                "fixes": _fixes(f),
            }
            for f in report.findings
        ],
        "unreferenced": [_stored(o, o.key in gone if removal else None) for o in report.unreferenced],
        "removal": None
        if removal is None
        else {
            "removed": len(removal.removed),
            "removed_bytes": removal.removed_bytes,
            "kept_young": [_stored(o) for o in removal.kept_young],
            "refused": removal.refused or None,
        },
    }
