"""The release domain's rules, each written once, pure (facts in, verdict out) and table-tested.

The services load the facts (a deployment's history, a release's counters) and act on the verdict; the
console's confirmation pages ask the same functions what an action would do. Nothing here touches the
database, the blob store or a request.

Where the CodePush reference server's rule differs from overair's, both variants are here and a
:class:`Policy` names the ones a surface applies: overair's own surfaces use :data:`OVERAIR`, the CodePush
management dialects the reference's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from overair.errors import Fix
from overair.metrics.rules import DEFAULT_THRESHOLD, FailureThreshold, ReleaseHealth
from overair.releases.errors import (
    ConfirmationRequired,
    CrossVersionRollback,
    IdenticalRelease,
    InvalidRelease,
    ReleaseNotFound,
    RolloutInProgress,
)
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
    @property
    def disabled_reason(self) -> str: ...
    @property
    def installs(self) -> int: ...
    @property
    def failures(self) -> int: ...


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


def reaches_devices_of(target: str, build_number: int | None, release: ReleaseFacts) -> bool:
    """Whether a release for ``target`` (and ``build_number``) is offered to every binary ``release`` is.

    The build numbers agree (``build_number`` is None or ``release``'s), and the targets are the same range
    however written, or ``release`` targets one exact version that ``target`` admits. Ranges that happen
    to contain one another in other ways are not recognised (the answer is then False).
    """
    if build_number is not None and build_number != release.build_number:
        return False
    exact = semver.valid(release.target_version)
    if exact is not None:
        return semver.satisfies(exact, target)
    return same_target(target, release.target_version)


def _binaries(target: str, build_number: int | None) -> str:
    return target if build_number is None else f"{target} build {build_number}"


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
                Fix("end-rollout-on-publish", {"label": running.label, "deployment": deployment}),
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
        raise _identical(current, target)


def check_not_identical_to_last(
    history: Sequence[ReleaseFacts], package_hash: str, target: str, build_number: int | None
) -> None:
    """The reference server's identical-content rule (its ``getLastPackageHashWithSameAppVersion``).

    An exact version is compared with the newest release whose range admits it; a range with the latest
    release only, and only when that one has the same range. Disabled releases count; build numbers do
    not (the reference has none: ``build_number`` is in the signature to match :func:`check_not_identical`).
    """
    if not history:
        return
    last: ReleaseFacts | None
    if semver.valid(target) is not None:
        last = next((r for r in reversed(history) if semver.satisfies(target, r.target_version)), None)
    else:
        latest = history[-1]
        last = latest if semver.valid_range(latest.target_version) == semver.valid_range(target) else None
    if last is not None and last.package_hash == package_hash:
        raise _identical(last, target)


def _identical(current: ReleaseFacts, target: str) -> IdenticalRelease:
    return IdenticalRelease(
        f"This bundle is identical to {current.label}, the current release for {target}: nothing to "
        f"publish. Change the bundle, or change {current.label} itself.",
        subject={"release": current.label},
        fixes=[Fix("change-release", {"label": current.label})],
    )


# -- changing a release -------------------------------------------------------------------------------


def check_rollout_raised(release: ReleaseFacts, asked: int) -> None:
    """The reference server's rollout rule: a rollout value given must raise an unfinished rollout.

    Stricter than :func:`check_rollout_change`: the current value is refused too, and a finished rollout
    takes no value at all (not even 100).
    """
    if release.rollout < 100 and asked > release.rollout:
        return
    if asked == release.rollout:
        state = "every device (100%)" if asked == 100 else f"{asked}% of devices"
        raise RolloutInProgress(
            f"{release.label} already reaches {state}: a new rollout value must be higher than the current "
            "one, and a finished rollout takes none.",
            subject={"release": release.label},
            fixes=[Fix("disable-release", {"label": release.label}), Fix("roll-back")],
        )
    check_rollout_change(release, asked)


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


# -- releases that failed -----------------------------------------------------------------------------


def health(release: ReleaseFacts) -> ReleaseHealth:
    """The release's install attempts and failures (the failure rate's inputs)."""
    return ReleaseHealth(installs=release.installs, failures=release.failures)


def failing(release: ReleaseFacts, threshold: FailureThreshold = DEFAULT_THRESHOLD) -> str | None:
    """Why the release counts as failing (its failure rate above the deployment's threshold), or None."""
    counted = health(release)
    if not threshold.failing(counted):
        return None
    return (
        f"{release.label} is failing: {counted.failure_rate:.1%} of its {counted.attempts} install attempts "
        f"failed, above the {threshold.rate:.0%} threshold"
    )


def _disabled(release: ReleaseFacts) -> str:
    why = f" ({release.disabled_reason})" if release.disabled_reason else ""
    return f"{release.label} is disabled{why}"


def rollback_risks(release: ReleaseFacts) -> list[str]:
    """Why republishing ``release``'s content needs a deliberate confirmation: it is disabled, failing, or
    both (empty: nothing against it)."""
    risks = [_disabled(release)] if release.disabled else []
    why_failing = failing(release)
    return [*risks, why_failing] if why_failing else risks


def enable_risks(release: ReleaseFacts) -> list[str]:
    """Why enabling ``release`` again needs a deliberate confirmation: it was disabled and is failing."""
    why_failing = failing(release) if release.disabled else None
    return [_disabled(release), why_failing] if why_failing else []


def check_confirmed(
    release: ReleaseFacts, risks: Sequence[str], confirm: str | None, doing: str, deployment: str
) -> None:
    """Refuse ``doing`` (an action on ``release`` with these ``risks``) unless ``confirm`` repeats the
    release's label: a disabled or failing release never goes back to devices by a single click."""
    if risks and (confirm or "").strip() != release.label:
        raise ConfirmationRequired(
            f"{doing} sends content that may hurt devices: {'; '.join(risks)}. To do it anyway, confirm with "
            f"the label {release.label}.",
            subject={"deployment": deployment, "release": release.label},
            fixes=[Fix("confirm-release", {"label": release.label, "deployment": deployment})],
        )


# -- rollback -----------------------------------------------------------------------------------------


def rollback_target(history: Sequence[R], deployment: str, chosen: R | None = None) -> tuple[R, list[str]]:
    """The release whose content a rollback republishes, and what the caller should be told about it.

    By default the newest earlier release that is enabled, not failing (:func:`failing`), has other content
    than the current one and reaches every device of the current one (:func:`reaches_devices_of`; if none
    does, the newest safe one): a disabled or failing release is never picked by default. A release named
    by the caller (``chosen``) is taken as asked, with a warning for each risk (:func:`rollback_risks`);
    the service also asks for a confirmation then (:func:`check_confirmed`).
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
        safe = [r for r in earlier if not rollback_risks(r)]
        if not safe:
            raise ReleaseNotFound(
                f"Every earlier release of {deployment} is disabled or failing: name the one to roll back "
                f"to (and confirm it), or disable {current.label} instead.",
                subject={"deployment": deployment, "release": current.label},
                fixes=[
                    Fix("list-releases", {"deployment": deployment}),
                    Fix("disable-release", {"label": current.label, "deployment": deployment}),
                ],
            )
        # first the releases for the devices of the current one; failing that, the rollback plan says why
        # the newest safe one cannot simply come back
        same_binaries = [r for r in safe if reaches_devices_of(r.target_version, r.build_number, current)]
        return (same_binaries or safe)[-1], []
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
    why_failing = failing(chosen)
    if why_failing:
        warnings.append(f"{why_failing}; its content now goes to every device again as the new release.")
    return chosen, warnings


@dataclass(frozen=True, slots=True)
class RollbackPlan(Generic[R]):
    """What a rollback publishes: ``goal``'s content as a new release for ``target_version`` and
    ``build_number``, enabled or not, and what the caller should be told."""

    goal: R
    target_version: str
    build_number: int | None
    disabled: bool
    warnings: list[str] = field(default_factory=list)


def rollback_plan(
    history: Sequence[R], deployment: str, chosen: R | None = None, target_version: str | None = None
) -> RollbackPlan[R]:
    """overair's rollback: :func:`rollback_target`'s content, republished enabled for its own target, or
    for ``target_version`` when the caller gives one (with the goal's build number either way).

    The new release must reach every device of the current one (:func:`reaches_devices_of`): otherwise
    devices outside its target would keep the release being rolled back. Such a rollback is refused, and
    the refusal says how to reach them: republish the content for the current release's target (the caller
    vouches that it runs on those binaries) or publish a replacement. Content never crosses build numbers.
    """
    goal, warnings = rollback_target(history, deployment, chosen)
    current = history[-1]
    target = goal.target_version if target_version is None else check_target(target_version)
    if not reaches_devices_of(target, goal.build_number, current):
        raise _left_behind(current, goal, target, deployment)
    return RollbackPlan(goal, target, goal.build_number, False, warnings)


def _left_behind(
    current: ReleaseFacts, goal: ReleaseFacts, target: str, deployment: str
) -> CrossVersionRollback:
    wanted = current.target_version
    message = (
        f"Rolling back to {goal.label} would leave devices on {current.label}: {current.label} targets "
        f"{_binaries(wanted, current.build_number)}, and {goal.label}'s content would come back for "
        f"{_binaries(target, goal.build_number)}, which does not reach all of them."
    )
    fixes = []
    if goal.build_number is None or goal.build_number == current.build_number:
        message += (
            f" Republish {goal.label}'s content for {wanted} (every device of {current.label}) if it runs on "
            f"those binaries, or publish a replacement for {wanted}."
        )
        fixes.append(
            Fix(
                "roll-back-for-target",
                {"label": goal.label, "target_version": wanted, "deployment": deployment},
            )
        )
    else:
        message += f" Content never moves to another build number: publish a replacement for {wanted}."
    replacement = {"target_version": wanted, "deployment": deployment}
    if current.build_number is not None:
        replacement["build_number"] = str(current.build_number)
    fixes.append(Fix("publish-replacement", replacement))
    return CrossVersionRollback(
        message, subject={"deployment": deployment, "release": current.label}, fixes=fixes
    )


def reference_rollback_plan(
    history: Sequence[R], deployment: str, chosen: R | None = None, target_version: str | None = None
) -> RollbackPlan[R]:
    """The reference server's rollback: the release before the latest (or ``chosen``), whatever its state,
    copied as it is (a disabled one stays disabled), and only for the same app version, compared as written.

    ``target_version``, when given, must be that app version too. overair adds one refusal the reference
    does not make: content identical to the current release's (nothing would change).
    """
    if not history:
        raise ReleaseNotFound(
            f'"{deployment}" has no release to roll back.', subject={"deployment": deployment}
        )
    current = history[-1]
    if chosen is None and len(history) < 2:
        raise ReleaseNotFound(
            f"{current.label} is the only release of {deployment}: there is nothing to roll back to.",
            subject={"deployment": deployment, "release": current.label},
        )
    goal = history[-2] if chosen is None else chosen
    if goal.label == current.label:
        raise IdenticalRelease(
            f"{current.label} is already the latest release of {deployment}: nothing to roll back.",
            subject={"deployment": deployment, "release": current.label},
        )
    target = goal.target_version if target_version is None else target_version.strip()
    if target != current.target_version:
        raise CrossVersionRollback(
            f"{goal.label} targets {goal.target_version} and {current.label} targets "
            f"{current.target_version}: a rollback keeps the app version, or devices outside "
            f"{goal.target_version} would keep {current.label}. Publish a replacement for "
            f"{current.target_version} instead.",
            subject={"deployment": deployment, "release": current.label},
            fixes=[Fix("publish-replacement", {"target_version": current.target_version})],
        )
    if goal.package_hash == current.package_hash:
        raise IdenticalRelease(
            f"{current.label} already has the content of {goal.label}: nothing to roll back.",
            subject={"deployment": deployment, "release": goal.label},
        )
    return RollbackPlan(goal, target, goal.build_number, goal.disabled)


# -- which variant a surface applies -------------------------------------------------------------------

IdenticalCheck = Callable[[Sequence[ReleaseFacts], str, str, "int | None"], None]
"""``(history, package_hash, target, build_number)``: raises :class:`IdenticalRelease`."""
RolloutCheck = Callable[[ReleaseFacts, int], None]
"""``(release, asked)``: raises :class:`RolloutInProgress`."""


class RollbackRule(Protocol):
    """``(history, deployment, chosen, target_version)``: the :class:`RollbackPlan`, or a refusal."""

    def __call__(
        self,
        history: Sequence[R],
        deployment: str,
        chosen: R | None = None,
        target_version: str | None = None,
    ) -> RollbackPlan[R]: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """The variant of each rule a surface applies where the CodePush reference server's differs from
    overair's. The defaults are overair's (:data:`OVERAIR`); the CodePush management dialects name the
    reference's (``overair.protocols.codepush_management.handlers.REFERENCE``)."""

    not_identical: IdenticalCheck = check_not_identical
    rollout_change: RolloutCheck = check_rollout_change
    rollback: RollbackRule = rollback_plan
    confirm_risks: bool = True
    """Whether sending a disabled or failing release back to devices needs its label repeated
    (:func:`check_confirmed`); the reference has no such confirmation."""


OVERAIR = Policy()
"""overair's own rules: the management API, the CLI and the console."""
