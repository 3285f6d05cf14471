"""The release domain's rules, each written once, pure (facts in, verdict out) and table-tested.

The services load the facts (a deployment's history, a release's counters) and act on the verdict; the
console's confirmation pages ask the same functions what an action would do. Nothing here touches the
database, the blob store or a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from overair.errors import Fix
from overair.releases.errors import IdenticalRelease, InvalidRelease, ReleaseNotFound, RolloutInProgress
from overair.selection import semver

BASES = 10
"""Smaller downloads (CodePush diffs, binary deltas) are built ahead from this many earlier releases."""


class ReleaseFacts(Protocol):
    """What the rules need to know of a release (a stored ``Release`` row has all of it)."""

    @property
    def label(self) -> str: ...
    @property
    def package_hash(self) -> str: ...
    @property
    def target_version(self) -> str: ...
    @property
    def build_number(self) -> int | None: ...
    @property
    def rollout(self) -> int: ...
    @property
    def disabled(self) -> bool: ...


R = TypeVar("R", bound=ReleaseFacts)


# -- deployment keys ------------------------------------------------------------------------------------

DEPLOYMENT_KEY = re.compile(r"[A-Za-z0-9_-]{10,100}")
"""What a deployment key may be: 10-100 letters, digits, ``_`` or ``-``. CodePush clients send no other
(the reference server's ``isValidKeyField``), and every key CodePush or App Center generated fits; keys
overair makes are 43 characters."""


def check_deployment_key(key: str) -> str:
    """``key`` if it can be a deployment key (:data:`DEPLOYMENT_KEY`), else :class:`InvalidRelease`."""
    if DEPLOYMENT_KEY.fullmatch(key) is None:
        shown = key if len(key) <= 120 else key[:117] + "..."
        raise InvalidRelease(
            f'"{shown}" cannot be a deployment key: use 10-100 letters, digits, "_" or "-" (what CodePush '
            "clients accept; keys CodePush or App Center made fit).",
            subject={"deployment_key": shown},
        )
    return key


# -- targets ------------------------------------------------------------------------------------------


def check_target(target: str) -> str:
    """The target version range, trimmed, or :class:`InvalidRelease` saying what a valid one looks like."""
    target = target.strip()
    if semver.valid_range(target) is None:
        raise InvalidRelease(
            f'"{target}" is not a valid target version: use an exact version like 1.0.0 or an npm-style '
            'range like "^1.2.0", "1.2.x", ">=1.0.0 <2.0.0" or "*"',
            subject={"target_version": target},
        )
    return target


def same_target(a: str, b: str) -> bool:
    """Whether two targets are the same range (written alike or not: ``1.x`` and ``1.x.x``)."""
    return a == b or semver.valid_range(a) == semver.valid_range(b)


def matching_targets(a: str, b: str) -> bool:
    """The reference's isMatchingAppVersion: equal ranges, or an exact version the other admits."""
    exact_a, exact_b = semver.valid(a), semver.valid(b)
    if exact_a is not None:
        return semver.satisfies(exact_a, b)
    if exact_b is not None:
        return semver.satisfies(exact_b, a)
    return semver.valid_range(a) == semver.valid_range(b)


def compatible(a: ReleaseFacts, b: ReleaseFacts) -> bool:
    """Whether devices running one release may be offered the other: worth a diff or a delta between them.

    The build numbers are equal (or either release has none), and the targets match
    (:func:`matching_targets`). Releases whose targets overlap in some other way (``^1.2.0`` and ``1.x``)
    get nothing built ahead; a device on one of them still gets a delta built on request.
    """
    if a.build_number is not None and b.build_number is not None and a.build_number != b.build_number:
        return False
    return matching_targets(a.target_version, b.target_version)


def download_bases(history: Sequence[R], release: R, limit: int = BASES) -> list[str]:
    """Content hashes to build smaller downloads (CodePush diffs, binary deltas) to ``release`` from.

    The newest first: the content of up to ``limit`` releases published before it in ``history`` (oldest
    first, ``release`` among them) that differ from it and run on the same binaries (:func:`compatible`).
    """
    position = next(i for i, r in enumerate(history) if r is release)
    bases: list[str] = []
    for older in reversed(history[:position]):
        if len(bases) >= limit:
            break
        fresh = older.package_hash != release.package_hash and older.package_hash not in bases
        if fresh and compatible(older, release):
            bases.append(older.package_hash)
    return bases


# -- publishing ---------------------------------------------------------------------------------------


def unfinished_rollout(history: Sequence[R]) -> R | None:
    """The deployment's newest release when its rollout is still under way (enabled, below 100%)."""
    if history and history[-1].rollout < 100 and not history[-1].disabled:
        return history[-1]
    return None


def check_can_release(history: Sequence[ReleaseFacts], deployment: str) -> None:
    """A deployment takes a new release only when no rollout is under way (at most one at a time)."""
    running = unfinished_rollout(history)
    if running is not None:
        raise RolloutInProgress(
            f"{deployment} already has a rollout in progress: {running.label} reaches {running.rollout}% "
            "of devices. Finish it or stop it, then publish again.",
            subject={"deployment": deployment, "release": running.label},
            fixes=[
                Fix("finish-rollout", {"label": running.label, "deployment": deployment}),
                Fix("disable-release", {"label": running.label, "deployment": deployment}),
            ],
        )


def current_for_target(history: Sequence[R], target: str, build_number: int | None) -> R | None:
    """The newest release for the same binaries as ``target`` and ``build_number``: the one devices of
    that target are offered now (an exact target falls inside a release's range; ranges compare equal)."""
    exact = semver.valid(target) is not None
    for release in reversed(history):
        if release.build_number != build_number:
            continue
        same = semver.satisfies(target, release.target_version) if exact else None
        if same is None:
            same = same_target(release.target_version, target)
        if same:
            return release
    return None


def check_not_identical(
    history: Sequence[ReleaseFacts], package_hash: str, target: str, build_number: int | None
) -> None:
    """Refuse content that is already the current release for the same target: nothing would change."""
    current = current_for_target(history, target, build_number)
    if current is not None and current.package_hash == package_hash:
        raise IdenticalRelease(
            f"This bundle is identical to {current.label}, the current release for {target}: nothing to "
            f"publish. Change the bundle, or change {current.label} itself.",
            subject={"release": current.label},
            fixes=[Fix("change-release", {"label": current.label})],
        )


# -- changing a release -------------------------------------------------------------------------------


def check_rollout_change(release: ReleaseFacts, asked: int) -> None:
    """A rollout may only grow: devices that have the release would otherwise lose it."""
    if asked == release.rollout:
        return
    if release.rollout == 100:
        raise RolloutInProgress(
            f"{release.label} already reaches every device (100%): a finished rollout cannot shrink. To "
            "stop it, disable it or roll back.",
            subject={"release": release.label},
            fixes=[Fix("disable-release", {"label": release.label}), Fix("roll-back")],
        )
    if asked < release.rollout:
        raise RolloutInProgress(
            f"The rollout of {release.label} can only grow (now {release.rollout}%, asked {asked}%): "
            "devices that have it would lose it. To stop it, disable it or roll back.",
            subject={"release": release.label},
            fixes=[Fix("disable-release", {"label": release.label}), Fix("roll-back")],
        )


# -- rollback -----------------------------------------------------------------------------------------


def rollback_target(history: Sequence[R], deployment: str, chosen: R | None = None) -> tuple[R, list[str]]:
    """The release whose content a rollback republishes, and what the caller should be told about it.

    By default the newest earlier release that is enabled and has other content than the current one:
    a disabled release is never picked by default (it was disabled for a reason). A release named by the
    caller (``chosen``) is taken as asked, but a disabled one comes with a warning saying so.
    """
    if not history:
        raise ReleaseNotFound(
            f'"{deployment}" has no release to roll back.', subject={"deployment": deployment}
        )
    current = history[-1]
    if chosen is None:
        earlier = [r for r in history[:-1] if r.package_hash != current.package_hash]
        if not earlier:
            raise ReleaseNotFound(
                f"{current.label} is the only content of {deployment}: there is nothing to roll back to. "
                "Disable it instead.",
                subject={"deployment": deployment, "release": current.label},
                fixes=[Fix("disable-release", {"label": current.label, "deployment": deployment})],
            )
        enabled = [r for r in earlier if not r.disabled]
        if not enabled:
            raise ReleaseNotFound(
                f"Every earlier release of {deployment} is disabled: name the one to roll back to, or "
                f"disable {current.label} instead.",
                subject={"deployment": deployment, "release": current.label},
                fixes=[
                    Fix("list-releases", {"deployment": deployment}),
                    Fix("disable-release", {"label": current.label, "deployment": deployment}),
                ],
            )
        return enabled[-1], []
    if chosen.package_hash == current.package_hash:
        raise IdenticalRelease(
            f"{current.label} already has the content of {chosen.label}: nothing to roll back.",
            subject={"deployment": deployment, "release": chosen.label},
        )
    warnings = []
    if chosen.disabled:
        warnings.append(
            f"{chosen.label} was disabled; its content now goes to every device again as the new release."
        )
    return chosen, warnings
