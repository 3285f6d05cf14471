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
from overair.errors import NotFound
from overair.metrics.rules import DEFAULT_THRESHOLD, ReleaseHealth
from overair.packages import ManifestEntry
from overair.releases import rules
from overair.releases.schemas import Distribution, ReleaseOut, RolloutPointOut


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The confirmation step of an action: what it is and what devices will see."""

    title: str
    consequences: list[str]
    button: str
    danger: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What speaks against the action (the release is disabled, failing), shown above the consequences."""
    typed: str = ""
    """The text the person must type to confirm (a release's label); empty: one click confirms."""
    heading: str = "What devices will see"
    """What the consequences are about."""


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def percent(rate: float | None) -> str:
    """A share as the console shows it: ``62.0%``, or ``—`` when there is nothing to show."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


def why_disabled(release: ReleaseOut) -> str:
    """Who disabled the release, when and why, as one sentence ("" while it is enabled)."""
    if not release.disabled:
        return ""
    reason = release.disabled_reason or "disabled"
    when = _when(release.disabled_at)
    return f"{reason[0].upper()}{reason[1:]}{f' on {when}' if when else ''}."


def _risk_warnings(release: ReleaseOut, disabled: bool) -> list[str]:
    warnings = []
    if disabled and release.disabled:
        warnings.append(f"{release.label} is disabled. {why_disabled(release)}")
    failing = rules.failing(release)
    if failing:
        warnings.append(f"{failing}.")
    return warnings


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
    risky = bool(rules.enable_risks(release))
    labels = [r.label for r in history]
    later = history[labels.index(release.label) + 1 :] if release.label in labels else []
    newer = [r for r in later if not r.disabled and rules.compatible(r, release)]
    if newer:
        # devices are offered the newest enabled release for their version: a newer one hides this one
        consequences = [
            f"{who} keep getting {newer[-1].label}, which is newer and enabled; {release.label} comes back "
            f"for them only if every newer release is disabled ({reach} then)."
        ]
    else:
        consequences = [f"{who} start getting {release.label} again at their next update check ({reach})."]
    return Confirmation(
        title=f"Enable {release.label}?",
        consequences=consequences,
        button=f"Enable {release.label}",
        danger=risky,
        fields={"disabled": "false"},
        warnings=_risk_warnings(release, disabled=True) if risky else [],
        typed=release.label if risky else "",
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
    risky = bool(rules.rollback_risks(release))
    return Confirmation(
        title=f"Roll {current.label} back to the content of {release.label}?",
        consequences=consequences,
        button=f"Roll back to {release.label}",
        danger=True,
        warnings=_risk_warnings(release, disabled=True) if risky else [],
        typed=release.label if risky else "",
    )


@dataclass(frozen=True, slots=True)
class MainRollback:
    """The deployment page's main rollback: to ``target`` (never a disabled or failing release), or why
    there is none."""

    target: ReleaseOut | None
    why_none: str = ""


def main_rollback(history: Sequence[ReleaseOut], deployment: str) -> MainRollback:
    """What the deployment's main rollback button offers: :func:`overair.releases.rules.rollback_target`'s
    default, the same release the API and the CLI roll back to without a label."""
    if len(history) < 2:
        return MainRollback(None)
    try:
        target, _ = rules.rollback_target(list(history), deployment)
    except NotFound:
        current = history[-1]
        risky = [
            r for r in history[:-1] if r.package_hash != current.package_hash and rules.rollback_risks(r)
        ]
        if not risky:
            return MainRollback(None, f"Every earlier release has the content {current.label} serves.")
        names = ", ".join(f"{r.label} ({_risk_words(r)})" for r in reversed(risky))
        return MainRollback(
            None,
            f"No earlier release is safe to roll back to: {names}. To roll back to one of them anyway, "
            "open it and confirm by typing its label.",
        )
    return MainRollback(target)


def _risk_words(release: ReleaseOut) -> str:
    words = ["disabled"] if release.disabled else []
    if rules.failing(release):
        words.append(f"failing, {percent(failure_rate(release))}")
    return ", ".join(words)


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


def confirm_revoke(name: str, yours: bool) -> Confirmation:
    """Revoking an access key."""
    consequences = [
        f'Every request with the key "{name}" is refused from then on: CLI logins, CI jobs and scripts that '
        "use it stop working.",
        "Its console sessions end at once.",
    ]
    if yours:
        consequences.append("You are signed in with this key: you are signed out, and need another key.")
    return Confirmation(
        title=f'Revoke the access key "{name}"?',
        consequences=consequences,
        button="Revoke the key",
        danger=True,
        heading="What stops working",
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


# -- the history table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A release as a row of the deployment's history, with its failure rate and what is wrong with it."""

    release: ReleaseOut
    rate: float | None
    """Its failure rate (None before any install attempt)."""
    attempts: int
    failing: bool
    """Above the deployment's threshold (:data:`overair.metrics.rules.DEFAULT_THRESHOLD`)."""
    worse_than: str
    """The label of the release before it when this one fails more often ("" otherwise)."""


def history_rows(history: Sequence[ReleaseOut]) -> list[HistoryRow]:
    """The deployment's releases newest first (the order of every release list in the console), each with
    its failure rate flagged when above the threshold or above the release before it."""
    rows = []
    for index, release in enumerate(history):
        health = ReleaseHealth(installs=release.installs, failures=release.failures)
        previous = history[index - 1] if index else None
        before = ReleaseHealth(installs=previous.installs, failures=previous.failures) if previous else None
        worse = previous is not None and DEFAULT_THRESHOLD.worse(health, before)
        rows.append(
            HistoryRow(
                release=release,
                rate=failure_rate(release),
                attempts=health.attempts,
                failing=DEFAULT_THRESHOLD.failing(health),
                worse_than=previous.label if worse and previous is not None else "",
            )
        )
    return rows[::-1]


# -- charts --------------------------------------------------------------------------------------------

SERIES_COLOURS = {
    "downloads": "#0b5cad",  # blue
    "installs": "#11663a",  # green: installs are good news
    "failures": "#b42318",  # red: failures are the bad news, and only they are red
    "rollbacks": "#b54708",  # orange
    "failure rate (%)": "#b42318",
    "share of devices (%)": "#0b5cad",
}
"""One colour per kind of number, the same in every chart (and the legend's meaning never changes)."""

LABEL_COLOURS = ("#6941c6", "#0e7490", "#374151", "#7a4b00", "#1e40af", "#9333ea", "#155e75", "#78716c")
"""Colours of releases in the active-devices chart: none is the colour of a kind of number (a release is
never drawn in the failures' red, the installs' green or the downloads' blue)."""


@dataclass(frozen=True, slots=True)
class ChartRange:
    """A time range of the hourly charts, and the period each point sums up."""

    hours: int
    bucket_hours: int
    title: str


CHART_RANGES = (
    ChartRange(1, 1, "the last hour"),
    ChartRange(24, 1, "the last 24 hours, per hour"),
    ChartRange(24 * 7, 6, "the last 7 days, per 6 hours"),
    ChartRange(24 * 30, 24, "the last 30 days, per day"),
)
"""The ranges the charts choose from, shortest first."""


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def chart_range(first: dt.datetime | None, now: dt.datetime) -> ChartRange:
    """The shortest range (1 h, 24 h, 7 d, 30 d) that holds every report since ``first`` (the oldest hour
    with data), so that data of the last hour fills the chart instead of its last pixel; 30 days at most.
    Without data: 24 hours."""
    if first is None:
        return CHART_RANGES[1]
    age = (_hour(now) - _hour(first)) // dt.timedelta(hours=1)
    return next((r for r in CHART_RANGES if age < r.hours), CHART_RANGES[-1])


def first_data_hour(points: Sequence[HourlyPointLike]) -> dt.datetime | None:
    """The oldest hour in which anything was reported or any device was active."""
    busy = [p.hour for p in points if p.downloads or p.installs or p.failures or p.rollbacks or p.active]
    return min(busy, default=None)


def _period_text(start: dt.datetime, bucket_hours: int) -> str:
    fmt = "%m-%d" if bucket_hours == 24 else "%m-%d %H:00"
    return start.astimezone(dt.UTC).strftime(fmt)


def _series(name: str, values: list[int], colour: str | None = None) -> dict[str, Any]:
    return {"name": name, "values": values, "color": colour or SERIES_COLOURS.get(name, "#374151")}


def hourly_charts(
    points: Sequence[HourlyPointLike],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    bucket_hours: int = 1,
) -> dict[str, Any]:
    """Chart data from the metrics store's hourly points: active devices per label, downloads and installs,
    failures and rollbacks (summed over labels), for every period of ``bucket_hours`` from ``start`` (or
    the first point) to ``end`` (or the last point). Counts are summed over a period; active devices are
    the most seen in any of its hours."""
    seen = sorted({p.hour for p in points})
    first = min([start, *seen[:1]]) if start is not None else (seen[0] if seen else None)
    last = max([end, *seen[-1:]]) if end is not None else (seen[-1] if seen else None)
    periods: list[dt.datetime] = []
    if first is not None and last is not None:
        # every period of the window, so quiet ones show as zero rather than vanish
        period = first
        while period <= last:
            periods.append(period)
            period += dt.timedelta(hours=bucket_hours)
    labels = sorted({p.label for p in points}, key=lambda lab: (len(lab), lab))
    active = {lab: [0] * len(periods) for lab in labels}
    sums = {name: [0] * len(periods) for name in ("downloads", "installs", "failures", "rollbacks")}
    for p in points:
        assert first is not None
        i = (p.hour - first) // dt.timedelta(hours=bucket_hours)
        active[p.label][i] = max(active[p.label][i], p.active)
        sums["downloads"][i] += p.downloads
        sums["installs"][i] += p.installs
        sums["failures"][i] += p.failures
        sums["rollbacks"][i] += p.rollbacks
    x = [_period_text(h, bucket_hours) for h in periods]
    colours = {lab: LABEL_COLOURS[i % len(LABEL_COLOURS)] for i, lab in enumerate(labels)}
    return {
        "active": {"x": x, "series": [_series(lab, active[lab], colours[lab]) for lab in labels]},
        "traffic": {
            "x": x,
            "series": [_series("downloads", sums["downloads"]), _series("installs", sums["installs"])],
        },
        "trouble": {
            "x": x,
            "series": [_series("failures", sums["failures"]), _series("rollbacks", sums["rollbacks"])],
        },
    }


def range_charts(points: Sequence[HourlyPointLike], now: dt.datetime) -> tuple[ChartRange, dict[str, Any]]:
    """The charts over the range that fits ``points`` (:func:`chart_range`), ending with the period of the
    current hour."""
    window = chart_range(first_data_hour(points), now)
    end = _hour(now)
    # periods start on their own boundaries (midnight UTC for days, 00/06/12/18 for six hours)
    last = end - dt.timedelta(hours=end.hour % window.bucket_hours)
    start = last - dt.timedelta(hours=window.hours - window.bucket_hours)
    inside = [p for p in points if p.hour >= start]
    return window, hourly_charts(inside, start, end, window.bucket_hours)


def totals_chart(history: Sequence[ReleaseOut]) -> dict[str, Any]:
    """Per-release totals from the release counters (downloads, installs, failures, rollbacks)."""
    return {
        "x": [r.label for r in history],
        "series": [
            _series(name, [getattr(r, name) for r in history])
            for name in ("downloads", "installs", "failures", "rollbacks")
        ],
    }


def rate_chart(releases: Sequence[ReleaseOut]) -> dict[str, Any]:
    """The failure rate (in %) of each of ``releases`` (a release and the one before it)."""
    return {
        "x": [r.label for r in releases],
        "series": [
            {
                "name": "failure rate (%)",
                "values": [round((failure_rate(r) or 0.0) * 100, 1) for r in releases],
                "color": SERIES_COLOURS["failure rate (%)"],
            }
        ],
    }


def ramp_chart(
    points: Sequence[RolloutPointOut], share_now: int, checked_at: dt.datetime | None
) -> dict[str, Any]:
    """A guarded rollout's share (in %) over time: one point per rollout event, and one at the policy's last
    check when that came after them (where the share stands now)."""
    shown = [(p.at, p.share) for p in points]
    if shown and checked_at is not None and checked_at > shown[-1][0]:
        shown.append((checked_at, share_now))
    return {
        "x": [moment.astimezone(dt.UTC).strftime("%m-%d %H:%M") for moment, _share in shown],
        # when each point happened (ms since the epoch): the chart places points by time, not evenly
        "t": [round(moment.timestamp() * 1000) for moment, _share in shown],
        "series": [_series("share of devices (%)", [share for _moment, share in shown])],
    }


def has_data(chart: Mapping[str, Any]) -> bool:
    """True when any series of the chart has a non-zero value."""
    return any(any(v for v in s["values"]) for s in chart.get("series", []))
