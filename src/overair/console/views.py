"""The console's pure logic: what an action will do to devices, file changes between releases, chart data.

Nothing here touches HTTP or the database, so each rule is tested on its own
(tests/unit/test_console_views.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from overair.console.metrics import HourlyPointLike
from overair.metrics.rules import ReleaseHealth
from overair.packages import ManifestEntry
from overair.releases.schemas import Distribution, ReleaseOut


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The confirmation step of an action: what it is and what devices will see."""

    title: str
    consequences: list[str]
    button: str
    danger: bool = False
    fields: dict[str, str] = field(default_factory=dict)


def _devices_on(release: ReleaseOut) -> str:
    build = f" (build {release.build_number})" if release.build_number is not None else ""
    return f"Devices on {release.target_version}{build}"


def next_label(history: Sequence[ReleaseOut]) -> str:
    """The label the next release of a deployment gets (labels are v1, v2, … in order)."""
    numbers = [int(r.label[1:]) for r in history if r.label[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"


def confirm_rollout(release: ReleaseOut, rollout: int) -> Confirmation:
    """Raising a release's rollout from its current percentage to ``rollout``."""
    who = _devices_on(release)
    consequences = [
        f"{who} outside the first {release.rollout}% but within the first {rollout}% will start getting "
        f"{release.label} at their next update check.",
        f"Devices that already have {release.label} keep it; a rollout can only grow, never shrink.",
    ]
    if rollout == 100:
        consequences[0] = (
            f"{who} outside the first {release.rollout}% will start getting {release.label}: "
            "the rollout is then complete and every device on that version gets it."
        )
    if release.disabled:
        consequences.insert(
            0, f"{release.label} is disabled: no device gets it until you enable it; then {rollout}% do."
        )
    return Confirmation(
        title=f"Roll {release.label} out to {rollout}% of devices?",
        consequences=consequences,
        button=f"Roll out to {rollout}%",
        fields={"rollout": str(rollout)},
    )


def confirm_mandatory(release: ReleaseOut, mandatory: bool) -> Confirmation:
    """Making a release mandatory or optional."""
    who = _devices_on(release)
    if mandatory:
        consequences = [
            f"{who} that are offered {release.label} must install it: apps show it as a required update "
            "and install it right away.",
            "Devices further behind must install it too, even when they skip over it to a newer release.",
        ]
    else:
        consequences = [
            f"{who} that are offered {release.label} may install it when the app's own install mode says "
            "so; it is no longer a required update.",
        ]
    verb = "mandatory" if mandatory else "optional"
    return Confirmation(
        title=f"Make {release.label} {verb}?",
        consequences=consequences,
        button=f"Make {verb}",
        fields={"mandatory": "true" if mandatory else "false"},
    )


def confirm_disabled(release: ReleaseOut, disabled: bool, history: Sequence[ReleaseOut]) -> Confirmation:
    """Disabling or enabling a release."""
    who = _devices_on(release)
    if disabled:
        older = [r for r in history if r.label != release.label and not r.disabled]
        fallback = (
            f"Devices that have not installed it are offered the newest enabled release for their version"
            f"{f' (such as {older[-1].label})' if older else ''} instead."
        )
        consequences = [
            f"No device is offered {release.label} any more.",
            fallback,
            f"Devices already running {release.label} keep it. To move them back, roll back instead.",
        ]
        return Confirmation(
            title=f"Disable {release.label}?",
            consequences=consequences,
            button=f"Disable {release.label}",
            danger=True,
            fields={"disabled": "true"},
        )
    reach = "every device" if release.rollout == 100 else f"the first {release.rollout}% of devices"
    return Confirmation(
        title=f"Enable {release.label}?",
        consequences=[f"{who} start getting {release.label} again at their next update check ({reach})."],
        button=f"Enable {release.label}",
        fields={"disabled": "false"},
    )


def confirm_rollback(release: ReleaseOut, history: Sequence[ReleaseOut]) -> Confirmation:
    """Republishing ``release``'s content as a new label (rolling the deployment back to it)."""
    current = history[-1]
    new = next_label(history)
    consequences = [
        f"A new release {new} with the content of {release.label} is published for "
        f"{release.target_version} to 100% of devices.",
        f"Devices running {current.label} go back to the content of {release.label} at their next update "
        "check; devices that still run that content download nothing.",
    ]
    if current.rollout < 100 and not current.disabled:
        consequences.append(
            f"{current.label} (rolling out to {current.rollout}%) is disabled, so it is offered to no one."
        )
    return Confirmation(
        title=f"Roll {current.label} back to the content of {release.label}?",
        consequences=consequences,
        button=f"Roll back to {release.label}",
        danger=True,
    )


def confirm_promote(
    release: ReleaseOut, destination: str, destination_history: Sequence[ReleaseOut]
) -> Confirmation:
    """Publishing ``release`` to another deployment."""
    new = next_label(destination_history)
    return Confirmation(
        title=f"Promote {release.label} of {release.deployment} to {destination}?",
        consequences=[
            f"{destination} gets a new release {new} with the content of {release.label}, for "
            f"{release.target_version}, mandatory: {'yes' if release.mandatory else 'no'}.",
            f"{_devices_on(release)} that use the {destination} deployment key start getting {new} "
            "at their next update check (100% of them).",
        ],
        button=f"Promote to {destination}",
        fields={"destination": destination},
    )


def confirm_distribution(app: str, mode: Distribution) -> Confirmation:
    """Switching an app between hybrid and store-only."""
    if mode is Distribution.STORE_ONLY:
        return Confirmation(
            title=f"Switch {app} to store-only?",
            consequences=[
                f"Devices of every deployment of {app} stop getting over-the-air updates at their next "
                "update check; they are pointed to the app store instead.",
                "Releases stay stored: switching back to hybrid offers them again.",
            ],
            button="Switch to store-only",
            danger=True,
            fields={"mode": mode.value},
        )
    return Confirmation(
        title=f"Switch {app} to hybrid?",
        consequences=[
            f"Devices of every deployment of {app} start getting over-the-air updates again at their next "
            "update check, within each release's rollout."
        ],
        button="Switch to hybrid",
        fields={"mode": mode.value},
    )


# -- release detail ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file added, removed or changed between two releases (sizes in bytes; None where it is absent)."""

    path: str
    change: str  # "added", "removed" or "changed"
    old_size: int | None
    new_size: int | None


def compare_manifests(old: Iterable[ManifestEntry], new: Iterable[ManifestEntry]) -> list[FileChange]:
    """The files that differ between two manifests, by path (folder entries are left out)."""
    before = {e.path: e for e in old if not e.is_directory}
    after = {e.path: e for e in new if not e.is_directory}
    changes = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None and b is not None:
            changes.append(FileChange(path, "added", None, b.size))
        elif b is None and a is not None:
            changes.append(FileChange(path, "removed", a.size, None))
        elif a is not None and b is not None and a.sha256 != b.sha256:
            changes.append(FileChange(path, "changed", a.size, b.size))
    return changes


def failure_rate(release: ReleaseOut) -> float | None:
    """The release's failure rate, by the one definition (:func:`overair.metrics.rules.failure_rate`:
    failures / (installs + failures), rollbacks not added); None before any install attempt, shown as "—".

    Counted from the release's report counters, the same counters the metrics API and ``/metrics`` read.
    """
    health = ReleaseHealth(installs=release.installs, failures=release.failures)
    return health.failure_rate if health.measured else None


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """Whether a release's content is signed, as the console shows it."""

    signed: bool
    text: str


def signature_status(release: ReleaseOut) -> SignatureStatus:
    """The one place that reads a release's signature for the console: signed by which publisher key."""
    if release.signature:
        key = f" with publisher key {release.signing_key_id}" if release.signing_key_id else ""
        return SignatureStatus(True, f"signed{key} (sequence {release.sequence})")
    return SignatureStatus(False, "unsigned")


def human_size(size: int | None) -> str:
    """Bytes for people: 950 B, 12.3 KB, 4.1 MB."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# -- charts --------------------------------------------------------------------------------------------


def _hour_text(hour: dt.datetime) -> str:
    return hour.astimezone(dt.UTC).strftime("%m-%d %H:00")


def hourly_charts(
    points: Sequence[HourlyPointLike], start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, Any]:
    """Chart data from the metrics store's hourly points: active devices per label, downloads and installs,
    failures and rollbacks (summed over labels), for every hour from ``start`` (or the first point) to
    ``end`` (or the last point)."""
    seen = sorted({p.hour for p in points})
    first = min([start, *seen[:1]]) if start is not None else (seen[0] if seen else None)
    last = max([end, *seen[-1:]]) if end is not None else (seen[-1] if seen else None)
    hours = []
    if first is not None and last is not None:
        # every hour of the window, so quiet hours show as zero rather than vanish
        hour = first
        while hour <= last:
            hours.append(hour)
            hour += dt.timedelta(hours=1)
    labels = sorted({p.label for p in points}, key=lambda lab: (len(lab), lab))
    index = {h: i for i, h in enumerate(hours)}
    active = {lab: [0] * len(hours) for lab in labels}
    sums = {name: [0] * len(hours) for name in ("downloads", "installs", "failures", "rollbacks")}
    for p in points:
        i = index[p.hour]
        active[p.label][i] = p.active
        sums["downloads"][i] += p.downloads
        sums["installs"][i] += p.installs
        sums["failures"][i] += p.failures
        sums["rollbacks"][i] += p.rollbacks
    x = [_hour_text(h) for h in hours]
    return {
        "active": {"x": x, "series": [{"name": lab, "values": active[lab]} for lab in labels]},
        "traffic": {
            "x": x,
            "series": [
                {"name": "downloads", "values": sums["downloads"]},
                {"name": "installs", "values": sums["installs"]},
            ],
        },
        "trouble": {
            "x": x,
            "series": [
                {"name": "failures", "values": sums["failures"]},
                {"name": "rollbacks", "values": sums["rollbacks"]},
            ],
        },
    }


def totals_chart(history: Sequence[ReleaseOut]) -> dict[str, Any]:
    """Per-release totals from the release counters (downloads, installs, failures, rollbacks)."""
    return {
        "x": [r.label for r in history],
        "series": [
            {"name": name, "values": [getattr(r, name) for r in history]}
            for name in ("downloads", "installs", "failures", "rollbacks")
        ],
    }


def has_data(chart: Mapping[str, Any]) -> bool:
    """True when any series of the chart has a non-zero value."""
    return any(any(v for v in s["values"]) for s in chart.get("series", []))
