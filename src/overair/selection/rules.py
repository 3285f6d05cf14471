"""The update decision: one pure function from a deployment's releases and a device's question.

The rules follow the CodePush reference server (``api/script/utils/acquisition.ts``) so that every protocol
overair speaks gives the same answer for the same data, extended with build numbers, per-device exclusions
(releases that failed on the device) and store-only apps.
"""

from __future__ import annotations

from collections.abc import Sequence

from overair.selection import semver
from overair.selection.rollout import in_rollout
from overair.selection.types import (
    CurrentMatch,
    Decision,
    DecisionKind,
    DeviceQuery,
    Plan,
    Release,
    RolloutHash,
)


def _targets(release: Release, query: DeviceQuery) -> bool:
    if release.platform is not None and query.platform and release.platform != query.platform:
        return False
    if query.runtime_version is not None or release.runtime_version is not None:
        return release.runtime_version == query.runtime_version
    if query.any_binary:
        return True
    if release.build_number is not None and release.build_number != query.build_number:
        return False
    return semver.satisfies(query.app_version, release.target)


def _ident(release: Release, query: DeviceQuery) -> str:
    """How the device names a release: its update id (Expo) or its label."""
    return release.update_id if query.current_match is CurrentMatch.UPDATE_ID else release.label


def _is_current(release: Release, query: DeviceQuery) -> bool:
    """Whether the device runs ``release`` now (used to stop the newest-first scan)."""
    if query.current_match is CurrentMatch.UPDATE_ID:
        return bool(query.label) and release.update_id == query.label
    if query.current_match is CurrentMatch.LABEL_ELSE_HASH:
        if query.label:
            return release.label == query.label
        return release.package_hash == query.package_hash
    return (bool(query.label) and release.label == query.label) or (
        bool(query.package_hash) and release.package_hash == query.package_hash
    )


def _already_has(release: Release, query: DeviceQuery) -> bool:
    """Whether the device already has the content of ``release`` (same package, maybe another label)."""
    if query.current_match is CurrentMatch.UPDATE_ID:
        return _is_current(release, query)
    if query.package_hash:
        return release.package_hash == query.package_hash
    return (
        query.current_match is CurrentMatch.LABEL_OR_HASH
        and bool(query.label)
        and release.label == query.label
    )


def _store_version_newer(query: DeviceQuery, latest: Release) -> tuple[bool, bool]:
    """(binary newer than every version ``latest`` targets, newer store binary being served)."""
    if query.runtime_version is not None:
        return False, False  # runtime versions are not ordered
    newer_binary = semver.gtr(query.app_version, latest.target)
    if newer_binary:
        return True, False
    if not semver.satisfies(query.app_version, latest.target):
        return False, True
    store_newer = (
        latest.build_number is not None
        and query.build_number is not None
        and query.build_number < latest.build_number
    )
    return False, store_newer


def _decide(
    releases: Sequence[Release], query: DeviceQuery, ignore_unfinished: bool
) -> tuple[Decision, Release | None]:
    if not releases:
        return Decision(DecisionKind.RUN_EMBEDDED), None
    found = False
    latest_enabled: Release | None = None
    latest_satisfying: Release | None = None
    make_mandatory = False
    runs_newest = False  # the device runs a release newer than every one it could be offered
    for release in reversed(releases):
        if not found and _is_current(release, query):
            found, runs_newest = True, latest_satisfying is None
        if (
            release.disabled
            or _ident(release, query) in query.excluded_labels
            or (ignore_unfinished and release.rollout_unfinished)
        ):
            continue
        latest_enabled = latest_enabled or release
        if not _targets(release, query):
            continue
        latest_satisfying = latest_satisfying or release
        if found:
            break  # everything older than what the device runs does not matter
        if release.mandatory:
            make_mandatory = True  # a mandatory release newer than the device's bundle was skipped
            break
    if latest_enabled is None:
        return Decision(DecisionKind.RUN_EMBEDDED), None
    newer_binary, store_newer = _store_version_newer(query, latest_enabled)
    hint = latest_enabled.target if (newer_binary or store_newer) else ""
    if query.store_only or latest_satisfying is None:
        kind = DecisionKind.STORE_UPDATE_REQUIRED if store_newer else DecisionKind.RUN_EMBEDDED
        return Decision(kind, latest_target=hint, store_version_newer=store_newer), None
    if _already_has(latest_satisfying, query) or (query.newer_only and runs_newest):
        return Decision(DecisionKind.NO_UPDATE, latest_target=hint, store_version_newer=store_newer), None
    decision = Decision(
        DecisionKind.UPDATE,
        release=latest_satisfying,
        mandatory=make_mandatory or latest_satisfying.mandatory,
    )
    return decision, latest_satisfying


def plan_update(releases: Sequence[Release], query: DeviceQuery) -> Plan:
    """Decide for every device that shares ``query`` except for its client id.

    ``releases`` are the deployment's releases, oldest first. The result does not depend on
    ``query.client_id``; pair it with :func:`choose` to answer one device.
    """
    decision, offered = _decide(releases, query, ignore_unfinished=False)
    if offered is None or not offered.rollout_unfinished:
        return Plan(decision)
    outside, _ = _decide(releases, query, ignore_unfinished=True)
    return Plan(outside, decision, offered.rollout, offered.label or offered.package_hash)


def takes_rollout(plan: Plan, client_id: str, method: RolloutHash = RolloutHash.NATIVE) -> bool:
    """Whether the device ``client_id`` gets ``plan.rollout_decision``.

    A device that sends no client id cannot be placed in a bucket, so it stays outside every unfinished
    rollout (otherwise all such devices would share one bucket: all in, or all out).
    """
    return (
        plan.rollout_decision is not None
        and bool(client_id)
        and in_rollout(client_id, plan.rollout_percentage, plan.rollout_tag, method)
    )


def choose(plan: Plan, query: DeviceQuery) -> Decision:
    """Apply the device's rollout bucket to a plan."""
    if takes_rollout(plan, query.client_id, query.rollout_hash):
        assert plan.rollout_decision is not None
        return plan.rollout_decision
    return plan.decision


def select_update(releases: Sequence[Release], query: DeviceQuery) -> Decision:
    """The update decision for one device.

    >>> v1 = Release(label="v1", package_hash="h1", target="1.0.0")
    >>> select_update([v1], DeviceQuery(app_version="1.0.0")).kind
    <DecisionKind.UPDATE: 'update'>
    """
    return choose(plan_update(releases, query), query)
