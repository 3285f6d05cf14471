"""Releases: publish, patch, promote and roll back, and read a deployment's history.

Each public method runs in one database transaction and raises domain errors only. The rules each
operation applies live in :mod:`overair.releases.rules`; stored content in
:mod:`overair.releases.content`; the smaller downloads built after a release in
:mod:`overair.releases.diffs`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair import packages
from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal
from overair.db import Clock, utcnow
from overair.errors import Fix
from overair.packages import expo
from overair.releases import deltas, ramp_store, rules, signing
from overair.releases import repository as repo
from overair.releases.binaries import check_binaries
from overair.releases.content import ContentStore, archive_file
from overair.releases.diffs import SmallerDownloads
from overair.releases.errors import InvalidRelease, ReleaseNotFound
from overair.releases.models import Deployment, Package, PackageDelta, PackageDiff, Release
from overair.releases.outputs import release_out
from overair.releases.schemas import (
    DiffOut,
    PromoteRequest,
    PublishOptions,
    ReleaseOut,
    ReleasePatch,
    SignedRelease,
)
from overair.releases.unit import Changes, touch
from overair.rollouts import RolloutPolicy


def _history_before(
    session: Session,
    deployment: Deployment,
    package_hash: str,
    target: str,
    build_number: int | None,
    policy: rules.Policy,
    options: PublishOptions | None = None,
) -> list[Release]:
    """The deployment's releases, once the rules allow a new one with this content and targeting
    (``options`` of a publish: one that ends the unfinished rollout is not stopped by it, and an Expo
    update is stopped only by an unfinished rollout of its own platform)."""
    history = repo.releases_of(session, deployment)
    if options is None or options.end_rollout is None:
        platform = options.expo.platform if options is not None and options.expo is not None else None
        rivals = [r for r in history if platform is None or r.platform in (None, platform)]
        rules.check_can_release(rivals, deployment.name)
    policy.not_identical(history, package_hash, target, build_number)
    return history


def _republished(original: Release, origin: Deployment, **fields: Any) -> dict[str, Any]:
    """The fields of a new release with ``original``'s content and settings (a promotion or rollback): the
    same package, target and build, mandatory flag, description and sync rule, and where it came from;
    ``fields`` set the rest and override any of these."""
    return {
        "package_hash": original.package_hash,
        "target_version": original.target_version,
        "build_number": original.build_number,
        "mandatory": original.mandatory,
        "description": original.description,
        "sync_before_update": original.sync_before_update,
        "origin_label": original.label,
        "origin_deployment": origin.name,
        "platform": original.platform,
        "runtime_version": original.runtime_version,
        "update_id": _new_update_id(original.runtime_version is not None),
        **fields,
    }


def _expo_content(
    archive: Path, info: packages.PackageInfo, options: PublishOptions
) -> expo.ExpoContent | None:
    """An Expo update's content description (checked against the archive), or None for other releases."""
    if options.expo is None:
        return None
    raw = archive_file(archive, info, expo.EXPO_FILE)
    expo.check_runtime_version(options.expo.runtime_version)
    if raw is None:
        raise InvalidRelease(
            f"An Expo update's archive must hold {expo.EXPO_FILE} (which file is the launch asset): publish "
            "the export with the CLI's push-expo."
        )
    return expo.read_content(raw, info.manifest)


def _expo_fields(options: PublishOptions, content: expo.ExpoContent | None) -> dict[str, Any]:
    """The platform, runtime version, update id and publisher's signatures of an Expo release being
    published (None for others)."""
    target = options.expo
    if target is None or content is None:
        return {"platform": None, "runtime_version": None, "update_id": None}
    fields = {"platform": target.platform, "runtime_version": target.runtime_version}
    if target.signed_manifest is None or target.signature is None:
        return {**fields, "update_id": _new_update_id(True)}
    try:
        raw = base64.b64decode(target.signed_manifest, validate=True)
    except ValueError as exc:
        raise InvalidRelease("The signed manifest is not base64: publish again with push-expo.") from exc
    update_id, created_at = expo.check_signed_manifest(raw, content, target.runtime_version)
    if target.embedded_directive is not None:
        try:
            directive = base64.b64decode(target.embedded_directive, validate=True)
        except ValueError as exc:
            raise InvalidRelease("The signed rollBackToEmbedded is not base64: publish again.") from exc
        expo.check_embedded_directive(directive, created_at)
    signed = target.model_dump(exclude={"platform", "runtime_version"})
    return {**fields, "update_id": update_id, "expo_signed": json.dumps({**signed, "created_at": created_at})}


def _new_update_id(expo_release: bool) -> str | None:
    """An Expo release's update id: new for every release, whatever content it republishes (a client
    loads only a manifest it has not run, spec §6.2); None for other releases."""
    return str(uuid.uuid4()) if expo_release else None


def _same_platform(history: list[Release], chosen: Release | None) -> list[Release]:
    """The releases a rollback chooses among: those of the platform of the release it undoes (all of
    them when releases are for every platform): devices of one platform move back together."""
    platform = (chosen or history[-1]).platform if history else None
    return history if platform is None else [r for r in history if r.platform == platform]


def _release_to_patch(session: Session, deployment: Deployment, patch: ReleasePatch) -> Release:
    """The release a patch names: by label, else the newest (for ``match_target_version``, if given)."""
    if patch.label:
        return repo.get_release(session, deployment, patch.label)
    history = repo.releases_of(session, deployment)
    if not history:
        raise ReleaseNotFound(
            f'Deployment "{deployment.name}" has no release yet: push one first.',
            subject={"deployment": deployment.name},
        )
    if patch.match_target_version is None:
        return history[-1]
    for release in reversed(history):
        if rules.same_target(release.target_version, patch.match_target_version.strip()) and (
            patch.match_build_number is None or release.build_number == patch.match_build_number
        ):
            return release
    build = f" build {patch.match_build_number}" if patch.match_build_number is not None else ""
    raise ReleaseNotFound(
        f'No release of "{deployment.name}" targets {patch.match_target_version}{build}.',
        subject={"deployment": deployment.name},
        fixes=[Fix("list-releases", {"deployment": deployment.name}), Fix("pick-label")],
    )


def _release_policy(options: PublishOptions) -> RolloutPolicy | None:
    """The publish's own rollout policy (checked before anything is stored)."""
    return None if options.rollout_policy is None else RolloutPolicy.from_json(options.rollout_policy)


def _check_ending(options: PublishOptions) -> None:
    if options.end_rollout is not None and not options.end_rollout_reason.strip():
        raise InvalidRelease(
            "Ending the running rollout needs a reason: it is recorded with who ended it.",
            fixes=[Fix("give-end-rollout-reason")],
        )


def disable_release(release: Release, actor: str, reason: str) -> None:
    """Disable ``release``, recording who did it, when and why (what a later enable or rollback shows)."""
    release.disabled = True
    release.disabled_by = actor
    release.disabled_at = utcnow()
    release.disabled_reason = reason


def enable_release(release: Release) -> None:
    """Enable ``release`` again, forgetting who disabled it."""
    release.disabled = False
    release.disabled_by = ""
    release.disabled_at = None
    release.disabled_reason = ""


_AUDITED = (
    "target_version",
    "build_number",
    "rollout",
    "mandatory",
    "disabled",
    "description",
    "package_hash",
)


def _audited(release: Release, **extra: Any) -> dict[str, Any]:
    """What the audit log records of a release (with ``extra``: where a republished one came from)."""
    return {"label": release.label, **{name: getattr(release, name) for name in _AUDITED}, **extra}


class _Where(TypedDict):
    app: str
    deployment: str
    label: str


def _subject(release: Release, deployment: Deployment) -> _Where:
    """Where a release event is: app, deployment and label."""
    return {"app": deployment.app.name, "deployment": deployment.name, "label": release.label}


def _end_running(
    changes: Changes,
    session: Session,
    actor: Principal,
    history: list[Release],
    options: PublishOptions,
    now: dt.datetime,
) -> None:
    """End the deployment's unfinished rollout for this publish, as ``options.end_rollout`` says."""
    running = rules.unfinished_rollout(history)
    if running is None or options.end_rollout is None:
        return
    reason = options.end_rollout_reason.strip()
    if options.end_rollout == "disable":
        disable_release(running, actor.name, f"rollout ended by {actor.name} to publish over it: {reason}")
    act = f"end-for-publish ({options.end_rollout})"
    ramp_store.end(changes, session, running, act, actor.name, now, reason)
    changes.audit.record(
        session,
        actor,
        AuditAction.ROLLOUT_END,
        **_subject(running, running.deployment),
        after={"act": act, "reason": reason, "rollout": running.rollout, "disabled": running.disabled},
    )


def _start_ramp(
    changes: Changes,
    session: Session,
    actor: Principal,
    release: Release,
    own: RolloutPolicy | None,
    now: dt.datetime,
) -> None:
    """Put a new release on its ramp under its own policy, else the deployment's (if either)."""
    policy = own or ramp_store.deployment_policy(session, release.deployment_id)
    if policy is not None and not release.disabled:
        ramp_store.start(changes, session, release, policy, actor.name, now)


def _diffs_of(
    session: Session, deployment: Deployment, release: Release, delta_min_saving: float
) -> list[DiffOut]:
    """The CodePush diff archives and binary deltas built to ``release``'s content, each with the
    deployment's labels it starts from (deltas: whether devices are offered it)."""
    labels: dict[str, list[str]] = {}
    for older in repo.releases_of(session, deployment):
        labels.setdefault(older.package_hash, []).append(older.label)
    target = release.package_hash
    offers = deltas.load_offers(session, [release], delta_min_saving)

    def out(kind: str, built: PackageDiff | PackageDelta, offered: bool) -> DiffOut:
        base = built.base_hash
        return DiffOut(
            kind=kind,
            base_hash=base,
            base_labels=labels.get(base, []),
            size=built.size,
            offered=offered,
        )

    diff_rows = session.scalars(
        select(PackageDiff)
        .where(PackageDiff.package_hash == target)
        .order_by(PackageDiff.created_at, PackageDiff.base_hash)
    )
    delta_rows = session.scalars(
        select(PackageDelta)
        .where(PackageDelta.package_hash == target)
        .order_by(PackageDelta.created_at, PackageDelta.base_hash)
    )
    return [out("codepush-diff", d, True) for d in diff_rows] + [
        out("delta", d, offers.get((target, d.base_hash)) is not None) for d in delta_rows
    ]


PublishListener = Callable[[Session, str, ReleaseOut], object]
"""Told of each release made (published, promoted or rolled back to): the transaction's session, the app's
name and the release. It runs in that transaction, so what it records exists only if the release does."""


class ReleaseService:
    """The releases of every deployment, over the database and the blob store."""

    def __init__(
        self,
        changes: Changes,
        content: ContentStore,
        downloads: SmallerDownloads,
        delta_min_saving: float = deltas.DEFAULT_MIN_SAVING,
        clock: Clock = utcnow,
    ) -> None:
        self._changes = changes
        self._clock = clock
        self._content = content
        self._downloads = downloads
        self._delta_min_saving = delta_min_saving
        self._published: list[PublishListener] = []

    def on_published(self, listener: PublishListener) -> None:
        """Call ``listener`` in the transaction of every new release (see :data:`PublishListener`)."""
        self._published.append(listener)

    def _announce(self, session: Session, app_name: str, release: ReleaseOut) -> None:
        for listener in self._published:
            listener(session, app_name, release)

    # -- reading ------------------------------------------------------------------------------------

    def history(self, actor: Principal, app_name: str, deployment_name: str) -> list[ReleaseOut]:
        """Every release of the deployment, oldest first, with its metrics."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = repo.releases_of(session, deployment)
            return ramp_store.with_rollouts(session, history, [release_out(r, deployment) for r in history])

    def manifest(
        self, actor: Principal, app_name: str, deployment_name: str, label: str
    ) -> list[packages.ManifestEntry]:
        """The per-file manifest of a release."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            key = repo.get_release(session, deployment, label).package.manifest_key
        return list(self._content.manifest(key))

    def diffs(self, actor: Principal, app_name: str, deployment_name: str, label: str) -> list[DiffOut]:
        """The smaller downloads built to a release's content: CodePush diff archives and overair binary
        deltas, each with the deployment's labels it starts from (deltas: whether devices are offered it)."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            release = repo.get_release(session, deployment, label)
            return _diffs_of(session, deployment, release, self._delta_min_saving)

    # -- publishing ---------------------------------------------------------------------------------

    def _append(
        self,
        session: Session,
        changed: set[str],
        deployment: Deployment,
        history: list[Release],
        signed: SignedRelease | None,
        **fields: Any,
    ) -> Release:
        seq = (history[-1].seq if history else 0) + 1
        package = session.get(Package, fields["package_hash"])
        assert package is not None  # stored by the caller in this transaction
        signature = signing.check_release(
            session,
            deployment.app,
            deployment,
            label=f"v{seq}",
            target_version=fields["target_version"],
            build_number=fields["build_number"],
            package=package,
            manifest=lambda: self._content.manifest(package.manifest_key),
            signed=signed,
        )
        # an earlier release keeps its rollout: a disabled one enabled again reaches the share it had
        release = Release(
            deployment_id=deployment.id,
            seq=seq,
            label=f"v{seq}",
            sequence=signature.sequence,
            signed_manifest=signature.signed_manifest,
            signature=signature.signature,
            signing_key_id=signature.signing_key_id,
            **fields,
        )
        if release.disabled:
            disable_release(release, fields["released_by"], f"published disabled by {fields['released_by']}")
        session.add(release)
        session.flush()
        session.refresh(release)
        touch(session, deployment, changed)
        return release

    def _released(
        self, session: Session, release: Release, deployment: Deployment, warnings: list[str]
    ) -> ReleaseOut:
        session.flush()
        out = release_out(release, deployment).model_copy(update={"warnings": warnings})
        return ramp_store.with_rollouts(session, [release], [out])[0]

    def publish(
        self,
        actor: Principal,
        app_name: str,
        deployment_name: str,
        archive: Path,
        options: PublishOptions,
        policy: rules.Policy = rules.OVERAIR,
    ) -> ReleaseOut:
        """Publish a zip archive as the deployment's next release (``v1``, ``v2``, ...); ``policy``: which
        identical-content rule applies."""
        actor.require(Action.PUBLISH, app=app_name, deployment=deployment_name)
        target = rules.check_target(options.target_version)
        own_policy = _release_policy(options)
        _check_ending(options)
        with self._changes.sessions() as session:  # fail fast on names before reading a large archive
            repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
        info = packages.inspect_archive(archive, self._content.limits)
        raw_descriptor = archive_file(archive, info, packages.DESCRIPTOR_FILE)
        descriptor = None if raw_descriptor is None else packages.parse_descriptor(raw_descriptor)
        raw_model = archive_file(archive, info, packages.MODEL_FILE)
        model = None if raw_model is None else packages.parse_model(raw_model)
        expo_content = _expo_content(archive, info, options)
        with self._changes.sessions() as session:  # and on the rules, before storing anything
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = _history_before(
                session, deployment, info.package_hash, target, options.build_number, policy, options
            )
            warnings = check_binaries(session, app, target, options.build_number, descriptor)
            sync_first = self._content.check_model(history, target, options, model)
        if any(e.is_directory for e in info.manifest):
            warnings.append(
                "The archive has folder entries: CodePush clients hash files only, so they cannot verify "
                "this release's hash (signed releases fail, and no diff packages are built for it). Zip "
                "files only."
            )
        blob_key, manifest_key = self._content.store(archive, info)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = _history_before(
                session, deployment, info.package_hash, target, options.build_number, policy, options
            )
            _end_running(self._changes, session, actor, history, options, self._clock())
            self._content.ensure_row(session, info, blob_key, manifest_key, expo_content)
            release = self._append(
                session,
                changed,
                deployment,
                history,
                options.signed,
                package_hash=info.package_hash,
                target_version=target,
                build_number=options.build_number,
                rollout=options.rollout,
                mandatory=options.mandatory,
                disabled=options.disabled,
                description=options.description,
                released_by=actor.name,
                method="upload",
                sync_before_update=sync_first,
                **_expo_fields(options, expo_content),
            )
            where, after = _subject(release, deployment), _audited(release)
            self._changes.audit.record(session, actor, AuditAction.RELEASE_PUBLISH, **where, after=after)
            _start_ramp(self._changes, session, actor, release, own_policy, self._clock())
            result = self._released(session, release, deployment, warnings)
            self._downloads.after_release(release.id, session)  # queued if committed
            self._announce(session, app.name, result)
        return result

    # -- changing releases --------------------------------------------------------------------------

    def patch(
        self,
        actor: Principal,
        app_name: str,
        deployment_name: str,
        patch: ReleasePatch,
        policy: rules.Policy = rules.OVERAIR,
    ) -> ReleaseOut:
        """Change a pushed release's rollout, mandatory flag, disabled flag, description or targeting.

        Every change is checked before any is made: a refused one leaves the release as it was.
        ``policy``: which rollout rule applies.
        """
        actor.require(Action.CHANGE_RELEASES, app=app_name, deployment=deployment_name)
        changes = patch.model_dump(
            exclude={"label", "match_target_version", "match_build_number", "clear_build_number", "confirm"},
            exclude_none=True,
        )
        if not changes and not patch.clear_build_number:
            raise InvalidRelease(
                "Nothing to change: give at least one of rollout percentage, mandatory, disabled, "
                "description, target version or build number."
            )
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            release = _release_to_patch(session, deployment, patch)
            retargets = patch.target_version is not None or patch.build_number is not None
            if release.signature is not None and (retargets or patch.clear_build_number):
                raise InvalidRelease(
                    f"{release.label} is signed for {release.target_version}: its target is part of what was "
                    "signed, so it cannot be patched. Publish or promote it again with the new target, "
                    "signed.",
                    subject={"deployment": deployment.name, "release": release.label},
                    fixes=[Fix("republish-signed")],
                )
            # every change is checked before any is made
            if patch.rollout is not None:
                policy.rollout_change(release, patch.rollout)
            target = None if patch.target_version is None else rules.check_target(patch.target_version)
            enabling = patch.disabled is False and release.disabled
            if enabling and policy.confirm_risks:
                rules.check_confirmed(
                    release,
                    rules.enable_risks(release),
                    patch.confirm,
                    f"Enabling {release.label}",
                    deployment.name,
                )
            before = _audited(release)
            if patch.rollout is not None:
                release.rollout = patch.rollout
            if patch.mandatory is not None:
                release.mandatory = patch.mandatory
            if patch.disabled and not release.disabled:
                disable_release(release, actor.name, f"disabled by {actor.name}")
            elif enabling:
                enable_release(release)
            if patch.description is not None:
                release.description = patch.description
            if target is not None:
                release.target_version = target
            if patch.build_number is not None:
                release.build_number = patch.build_number
            elif patch.clear_build_number:
                release.build_number = None
            touch(session, deployment, changed)
            where, after = _subject(release, deployment), _audited(release)
            self._changes.audit.record(
                session, actor, AuditAction.RELEASE_PATCH, **where, before=before, after=after
            )
            return self._released(session, release, deployment, [])

    def promote(
        self, actor: Principal, app_name: str, request: PromoteRequest, policy: rules.Policy = rules.OVERAIR
    ) -> ReleaseOut:
        """Publish a release of one deployment (its newest, or ``label``) to another; ``policy``: which
        identical-content rule applies."""
        actor.require(Action.READ, app=app_name, deployment=request.source)
        actor.require(Action.PUBLISH, app=app_name, deployment=request.destination)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            source = repo.get_deployment(session, app, request.source)
            destination = repo.get_deployment(session, app, request.destination)
            if source.id == destination.id:
                raise InvalidRelease(
                    "Promote needs two different deployments.", fixes=[Fix("choose-two-deployments")]
                )
            if request.label:
                original = repo.get_release(session, source, request.label)
            else:
                source_history = repo.releases_of(session, source)
                if not source_history:
                    raise ReleaseNotFound(
                        f'"{source.name}" has no release to promote: push one to it first.',
                        subject={"deployment": source.name},
                    )
                original = source_history[-1]
            if original.disabled and request.disabled is not False:
                raise InvalidRelease(
                    f"{original.label} of {source.name} is disabled: promote another release, or enable "
                    "it first.",
                    subject={"deployment": source.name, "release": original.label},
                    fixes=[Fix("enable-release", {"label": original.label, "deployment": source.name})],
                )
            target = rules.check_target(request.target_version or original.target_version)
            history = _history_before(
                session, destination, original.package_hash, target, original.build_number, policy
            )
            warnings = check_binaries(
                session, app, target, original.build_number, self._content.descriptor(original.package)
            )
            release = self._append(
                session,
                changed,
                destination,
                history,
                request.signed,
                **_republished(
                    original,
                    source,
                    method="promote",
                    released_by=actor.name,
                    target_version=target,
                    rollout=request.rollout or 100,
                    disabled=bool(request.disabled),
                    **request.model_dump(include={"mandatory", "description"}, exclude_none=True),
                ),
            )
            origin = {"from_deployment": source.name, "from_label": original.label}
            where, after = _subject(release, destination), _audited(release, **origin)
            self._changes.audit.record(session, actor, AuditAction.RELEASE_PROMOTE, **where, after=after)
            if request.rollout is None:
                _start_ramp(self._changes, session, actor, release, None, self._clock())
            result = self._released(session, release, destination, warnings)
            self._downloads.after_release(release.id, session)  # queued if committed
            self._announce(session, app.name, result)
        return result

    def rollback(
        self,
        actor: Principal,
        app_name: str,
        deployment_name: str,
        label: str | None,
        signed: SignedRelease | None = None,
        target_version: str | None = None,
        policy: rules.Policy = rules.OVERAIR,
        confirm: str | None = None,
    ) -> ReleaseOut:
        """Republish the content of an earlier release as a new label: which, and for which target, is
        ``policy.rollback``'s plan (overair's: :func:`rules.rollback_plan`, which never leaves a device of
        the newest release on it; ``target_version`` republishes for another target).

        Devices that installed the newest release see a newer label with the older content and move back;
        devices that never left the older content already have it and download nothing. A release named by
        ``label`` that is disabled or failing is taken only when ``confirm`` repeats its label.
        """
        actor.require(Action.PUBLISH, app=app_name, deployment=deployment_name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = repo.releases_of(session, deployment)
            chosen = repo.get_release(session, deployment, label) if label is not None and history else None
            plan = policy.rollback(_same_platform(history, chosen), deployment.name, chosen, target_version)
            goal, current = plan.goal, _same_platform(history, chosen)[-1]
            if chosen is not None and policy.confirm_risks:
                rules.check_confirmed(
                    goal,
                    rules.rollback_risks(goal),
                    confirm,
                    f"Rolling back to {goal.label}",
                    deployment.name,
                )
            warnings = check_binaries(
                session, app, plan.target_version, plan.build_number, self._content.descriptor(goal.package)
            )
            if current.rollout < 100 and not current.disabled:
                # the release rolled back from stops where it is: disabled, at the share it had
                disable_release(
                    current,
                    actor.name,
                    f"disabled when {actor.name} rolled {deployment.name} back to the content of "
                    f"{goal.label} (as v{current.seq + 1})",
                )
            release = self._append(
                session,
                changed,
                deployment,
                history,
                signed,
                **_republished(
                    goal,
                    deployment,
                    method="rollback",
                    released_by=actor.name,
                    target_version=plan.target_version,
                    build_number=plan.build_number,
                    rollout=100,
                    disabled=plan.disabled,
                    sync_before_update=self._content.model_breaks(current.package, goal.package),
                ),
            )
            undone = {
                "from_label": current.label,
                "content_of": goal.label,
                "from_label_disabled": current.disabled,
            }
            where, after = _subject(release, deployment), _audited(release, **undone)
            self._changes.audit.record(session, actor, AuditAction.RELEASE_ROLLBACK, **where, after=after)
            result = self._released(session, release, deployment, [*plan.warnings, *warnings])
            self._downloads.after_release(release.id, session)  # queued if committed
            self._announce(session, app.name, result)
        return result
