"""The release service: every operation on apps, deployments and releases, and the data devices need.

Each public method runs in one database transaction and raises domain errors only. After a change that
can alter what devices are offered, the deployment's ``generation`` is raised in the same transaction and
the registered listeners are told the deployment key, so update-check caches drop what they hold.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from overair import packages
from overair.db import utcnow
from overair.errors import Invalid
from overair.releases import deltas, signing
from overair.releases import repository as repo
from overair.releases.background import BackgroundJobs
from overair.releases.deltas import DeltaOffer
from overair.releases.errors import (
    DestructiveModelChange,
    FullReleaseRequired,
    IdenticalRelease,
    InvalidRelease,
    NameTaken,
    ReleaseNotFound,
    RolloutInProgress,
)
from overair.releases.models import App, Binary, Deployment, Package, PackageDelta, PackageDiff, Release
from overair.releases.schemas import (
    AppCreate,
    AppOut,
    BinaryOut,
    BinaryRegister,
    DeploymentCreate,
    DeploymentOut,
    DiffOut,
    Distribution,
    NextRelease,
    Platform,
    PromoteRequest,
    PublishOptions,
    ReleaseOut,
    ReleasePatch,
    SignedRelease,
    SigningKeyAdd,
    SigningKeyOut,
)
from overair.selection import Release as Candidate
from overair.selection import semver
from overair.storage import BlobStore, content_key

log = logging.getLogger("overair")

DEFAULT_DEPLOYMENTS = ("Production", "Staging")
DIFF_BASES = 10


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """What the update check needs of a deployment, loaded in one go and cached by the device routes."""

    generation: int
    store_only: bool
    releases: tuple[Candidate, ...]
    deltas: Mapping[tuple[str, str], DeltaOffer | None] = field(default_factory=dict)
    """(target hash, base hash) → binary delta to offer; None: built but saves too little."""
    delta_bases: frozenset[str] = frozenset()
    """Bases a device may get a delta built from on request (the last 50 releases' content)."""


def new_deployment_key() -> str:
    """An unguessable deployment key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def semver_key(version: str) -> tuple[int, ...]:
    """A sort key for exact versions (major, minor, patch)."""
    core = version.split("-", 1)[0].split("+", 1)[0]
    return tuple(int(p) if p.isdigit() else 0 for p in core.split("."))


def _check_target(target: str) -> str:
    target = target.strip()
    if semver.valid_range(target) is None:
        raise InvalidRelease(
            f'"{target}" is not a valid target version: use an exact version like 1.0.0 or an npm-style '
            'range like "^1.2.0", "1.2.x", ">=1.0.0 <2.0.0" or "*"'
        )
    return target


def _same_target(a: str, b: str) -> bool:
    return a == b or semver.valid_range(a) == semver.valid_range(b)


def _matching_targets(a: str, b: str) -> bool:
    """The reference's isMatchingAppVersion: equal ranges, or an exact version the other admits."""
    exact_a, exact_b = semver.valid(a), semver.valid(b)
    if exact_a is not None:
        return semver.satisfies(exact_a, b)
    if exact_b is not None:
        return semver.satisfies(exact_b, a)
    return semver.valid_range(a) == semver.valid_range(b)


def _binary_name(binary: Binary) -> str:
    return binary.version + (f" build {binary.build_number}" if binary.build_number is not None else "")


def _binary_out(binary: Binary) -> BinaryOut:
    return BinaryOut(
        version=binary.version,
        build_number=binary.build_number,
        descriptor=json.loads(binary.descriptor),
        registered_by=binary.registered_by,
        registered_at=binary.registered_at,
    )


def special_file(manifest: Sequence[packages.ManifestEntry], name: str) -> packages.ManifestEntry | None:
    """overair's own file ``name`` in a package: at its root, or in its single top folder (``CodePush/``)."""
    candidates = [
        e for e in manifest if e.path == name or (e.path.count("/") == 1 and e.path.endswith("/" + name))
    ]
    return min(candidates, key=lambda e: len(e.path)) if candidates else None


def _archive_file(archive: Path, info: packages.PackageInfo, name: str) -> bytes | None:
    entry = special_file(info.manifest, name)
    if entry is None:
        return None
    with zipfile.ZipFile(archive) as zf:
        return zf.read(entry.path)


def _release_out(release: Release, deployment: Deployment) -> ReleaseOut:
    return ReleaseOut(
        label=release.label,
        deployment=deployment.name,
        package_hash=release.package_hash,
        size=release.package.size,
        file_count=release.package.file_count,
        target_version=release.target_version,
        build_number=release.build_number,
        rollout=release.rollout,
        mandatory=release.mandatory,
        disabled=release.disabled,
        sync_before_update=release.sync_before_update,
        description=release.description,
        released_by=release.released_by,
        released_at=release.released_at,
        method=release.method,
        origin_label=release.origin_label,
        origin_deployment=release.origin_deployment,
        downloads=release.downloads,
        installs=release.installs,
        failures=release.failures,
        rollbacks=release.rollbacks,
        sequence=release.sequence,
        signed_manifest=release.signed_manifest,
        signature=release.signature,
        signing_key_id=release.signing_key_id,
    )


def _deployment_out(session: Session, deployment: Deployment) -> DeploymentOut:
    latest = session.scalar(
        select(Release.label)
        .where(Release.deployment_id == deployment.id)
        .order_by(Release.seq.desc())
        .limit(1)
    )
    return DeploymentOut(
        name=deployment.name, key=deployment.key, created_at=deployment.created_at, latest_label=latest
    )


def _app_out(session: Session, app: App) -> AppOut:
    return AppOut(
        name=app.name,
        platforms=[Platform(p) for p in app.platforms.split(",") if p],
        distribution=Distribution(app.distribution),
        created_at=app.created_at,
        deployments=[_deployment_out(session, d) for d in app.deployments],
    )


def _unfinished_rollout_message(deployment: Deployment, release: Release) -> str:
    return (
        f"{deployment.name} already has a rollout in progress: {release.label} reaches {release.rollout}% "
        "of devices. Finish it with: overair release patch-update --label "
        f"{release.label} --rollout-percentage 100, or stop it with --disabled true, then publish again."
    )


class ReleaseService:
    """Apps, deployments and releases over a database and a blob store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        limits: packages.Limits | None = None,
        delta_min_saving: float = deltas.DEFAULT_MIN_SAVING,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._limits = limits or packages.Limits()
        self._delta_min_saving = delta_min_saving
        self._deltas = deltas.DeltaBuilder(sessions, blobs, self._limits, self._delta_built)
        self._listeners: list[Callable[[str], None]] = []
        self._background = BackgroundJobs("overair-diffs")

    # -- plumbing -----------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(deployment_key)`` after every committed change that may alter device answers."""
        self._listeners.append(listener)

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Session, set[str]]]:
        changed: set[str] = set()
        with self._sessions() as session:
            try:
                with session.begin():
                    yield session, changed
            except IntegrityError as exc:
                raise NameTaken(
                    "Another change to the same object happened at the same moment; run the command again."
                ) from exc
        for key in changed:
            for listener in self._listeners:
                listener(key)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the background work scheduled so far (diff archives, binary deltas) is done."""
        self._background.drain(timeout)
        self._deltas.drain(timeout)

    def close(self) -> None:
        """Finish background work and stop its threads."""
        self._background.close()
        self._deltas.close()

    def _schedule_diffs(self, release_id: int) -> None:
        self._deltas.after_release(release_id)
        self._background.submit(lambda: self._build_diffs_safely(release_id))

    @staticmethod
    def _touch(deployment: Deployment, changed: set[str]) -> None:
        deployment.generation += 1
        changed.add(deployment.key)

    # -- apps ---------------------------------------------------------------------------------------

    def create_app(self, spec: AppCreate, deployments: Sequence[str] = DEFAULT_DEPLOYMENTS) -> AppOut:
        """Create an app with the given deployments (Production and Staging by default; may be none)."""
        with self._transaction() as (session, _):
            if session.scalar(select(App.id).where(App.name == spec.name)) is not None:
                raise NameTaken(f'An app named "{spec.name}" already exists; pick another name.')
            app = App(
                name=spec.name,
                platforms=",".join(sorted({p.value for p in spec.platforms})),
                distribution=spec.distribution.value,
            )
            app.deployments = [Deployment(name=n, key=new_deployment_key()) for n in deployments]
            session.add(app)
            session.flush()
            return _app_out(session, app)

    def list_apps(self) -> list[AppOut]:
        """Every app, by name."""
        with self._sessions() as session:
            apps = session.scalars(select(App).order_by(App.name)).all()
            return [_app_out(session, a) for a in apps]

    def get_app(self, name: str) -> AppOut:
        """One app."""
        with self._sessions() as session:
            return _app_out(session, repo.get_app(session, name))

    def remove_app(self, name: str) -> None:
        """Delete an app, its deployments and releases (stored content stays for other apps)."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, name)
            changed.update(d.key for d in app.deployments)
            session.delete(app)

    def set_distribution(self, name: str, distribution: Distribution) -> AppOut:
        """Switch an app between hybrid (OTA allowed) and store-only."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, name)
            app.distribution = distribution.value
            for deployment in app.deployments:
                self._touch(deployment, changed)
            return _app_out(session, app)

    # -- deployments --------------------------------------------------------------------------------

    def list_deployments(self, app_name: str) -> list[DeploymentOut]:
        """The app's deployments with their keys."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            return [_deployment_out(session, d) for d in app.deployments]

    def add_deployment(self, app_name: str, spec: DeploymentCreate) -> DeploymentOut:
        """Add a deployment, with a new key or the one given."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            if any(d.name.lower() == spec.name.lower() for d in app.deployments):
                raise NameTaken(f'App "{app.name}" already has a deployment named "{spec.name}".')
            key = spec.key or new_deployment_key()
            if session.scalar(select(Deployment.id).where(Deployment.key == key)) is not None:
                raise NameTaken("That deployment key is already in use by another deployment.")
            deployment = Deployment(name=spec.name, key=key)
            app.deployments.append(deployment)
            session.flush()
            changed.add(key)
            return _deployment_out(session, deployment)

    def rename_deployment(self, app_name: str, name: str, new_name: str) -> DeploymentOut:
        """Rename a deployment; devices keep using its key."""
        with self._transaction() as (session, _):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, name)
            if any(d.name.lower() == new_name.lower() and d is not deployment for d in app.deployments):
                raise NameTaken(f'App "{app.name}" already has a deployment named "{new_name}".')
            deployment.name = new_name
            return _deployment_out(session, deployment)

    def remove_deployment(self, app_name: str, name: str) -> None:
        """Delete a deployment and its releases; devices using its key get 'unknown deployment key'."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, name)
            changed.add(deployment.key)
            app.deployments.remove(deployment)
            session.delete(deployment)

    # -- store binaries -----------------------------------------------------------------------------

    def register_binary(self, app_name: str, spec: BinaryRegister, registered_by: str) -> BinaryOut:
        """Record what a store binary contains; registering the same version and build again updates it."""
        version = semver.valid(spec.version)
        if version is None:
            raise InvalidRelease(
                f'"{spec.version}" is not a binary version: give the exact version, like 1.0.0'
            )
        try:
            descriptor = packages.parse_descriptor(spec.descriptor)
        except packages.InvalidBundle as exc:
            raise InvalidRelease(f"Invalid descriptor: {exc.message}") from exc
        with self._transaction() as (session, _):
            app = repo.get_app(session, app_name)
            same_build = (
                Binary.build_number.is_(None)
                if spec.build_number is None
                else Binary.build_number == spec.build_number
            )
            binary = session.scalar(
                select(Binary).where(Binary.app_id == app.id, Binary.version == version, same_build)
            )
            if binary is None:
                binary = Binary(app_id=app.id, version=version, build_number=spec.build_number)
                session.add(binary)
            binary.descriptor = json.dumps(descriptor.to_json(), sort_keys=True)
            binary.registered_by = registered_by
            binary.registered_at = utcnow()
            session.flush()
            return _binary_out(binary)

    def list_binaries(self, app_name: str) -> list[BinaryOut]:
        """The app's registered binaries, by version."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            binaries = session.scalars(select(Binary).where(Binary.app_id == app.id)).all()
            ordered = sorted(binaries, key=lambda b: (semver_key(b.version), b.build_number or 0))
            return [_binary_out(b) for b in ordered]

    def _stored_file(self, package: Package, name: str) -> bytes | None:
        """overair's own file ``name`` of stored content (read from its per-file blobs)."""
        entry = special_file(self._load_manifest(package.manifest_key), name)
        if entry is None:
            return None
        with self._blobs.open(content_key(entry.sha256)) as stream:
            return stream.read()

    def _stored_descriptor(self, package: Package) -> packages.Descriptor | None:
        raw = self._stored_file(package, packages.DESCRIPTOR_FILE)
        return None if raw is None else packages.parse_descriptor(raw)

    def _model_breaks(self, running: Package, coming: Package) -> bool:
        """Whether devices running ``running`` would lose data under ``coming``'s model (e.g. a rollback)."""
        old, new = (
            self._stored_file(running, packages.MODEL_FILE),
            self._stored_file(coming, packages.MODEL_FILE),
        )
        if old is None or new is None:
            return False
        return bool(packages.destructive_changes(packages.parse_model(old), packages.parse_model(new)))

    def _check_model(
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
            if not _matching_targets(release.target_version, target):
                continue
            raw = self._stored_file(release.package, packages.MODEL_FILE)
            if raw is None:
                return False
            changes = packages.destructive_changes(packages.parse_model(raw), model)
            if not changes:
                return False
            if not options.allow_destructive_model_change:
                raise DestructiveModelChange(
                    f"This bundle changes the offline data model destructively against {release.label}: "
                    + "; ".join(changes)
                    + ". Devices with unsynced records could lose them. If the change is intended, push "
                    "with --allow-destructive-model-change: devices then install it only after syncing."
                )
            return True
        return False

    @staticmethod
    def _check_binaries(
        session: Session, app: App, target: str, build_number: int | None, bundle: packages.Descriptor | None
    ) -> list[str]:
        """Refuse a bundle any targeted binary cannot run; the warnings for checks that could not be made."""
        binaries = session.scalars(select(Binary).where(Binary.app_id == app.id)).all()
        if not binaries:
            return [
                f"{app.name} has no registered store binary, so this bundle was not checked against one: "
                "register binaries with `overair binary register` to catch updates that need a store release."
            ]
        targeted = [
            b
            for b in binaries
            if semver.satisfies(b.version, target)
            and (build_number is None or b.build_number == build_number)
        ]
        if not targeted:
            known = ", ".join(sorted({_binary_name(b) for b in binaries}))
            build = f" build {build_number}" if build_number is not None else ""
            raise FullReleaseRequired(
                f"No registered store binary of {app.name} matches {target}{build} (registered: {known}). "
                "The initial release of a version goes through the stores: publish it there, register it "
                "with `overair binary register`, then push updates to it."
            )
        if bundle is None:
            return [
                "The bundle has no overair.json, so it was not checked against "
                + ", ".join(_binary_name(b) for b in targeted)
                + ": push with --project-dir to describe it."
            ]
        reasons = [
            reason
            for binary in targeted
            for reason in packages.full_release_reasons(
                packages.parse_descriptor(binary.descriptor), bundle, _binary_name(binary)
            )
        ]
        if reasons:
            raise FullReleaseRequired(
                "This update needs a store release: " + "; ".join(r.message for r in reasons) + "."
            )
        return []

    # -- signing keys ---------------------------------------------------------------------------------

    def add_signing_key(self, app_name: str, spec: SigningKeyAdd, added_by: str) -> SigningKeyOut:
        """Trust a publisher's public key for the app: from now on its releases must be signed."""
        with self._transaction() as (session, _):
            return signing.add_key(
                session, repo.get_app(session, app_name), spec.public_key, spec.name, added_by
            )

    def list_signing_keys(self, app_name: str) -> list[SigningKeyOut]:
        """The app's publisher keys, active and retired."""
        with self._sessions() as session:
            return signing.list_keys(session, repo.get_app(session, app_name))

    def retire_signing_key(self, app_name: str, key_id: str) -> SigningKeyOut:
        """Stop accepting releases signed with a key."""
        with self._transaction() as (session, _):
            return signing.retire_key(session, repo.get_app(session, app_name), key_id)

    def next_release(self, app_name: str, deployment_name: str) -> NextRelease:
        """The label and sequence number the deployment's next release gets (what a publisher signs)."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = repo.releases_of(session, deployment)
            seq = (history[-1].seq if history else 0) + 1
            return NextRelease(label=f"v{seq}", sequence=app.release_sequence + 1)

    # -- releases -----------------------------------------------------------------------------------

    def history(self, app_name: str, deployment_name: str) -> list[ReleaseOut]:
        """Every release of the deployment, oldest first, with its metrics."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            return [_release_out(r, deployment) for r in repo.releases_of(session, deployment)]

    def manifest(self, app_name: str, deployment_name: str, label: str) -> list[packages.ManifestEntry]:
        """The per-file manifest of a release."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            release = repo.get_release(session, deployment, label)
            key = release.package.manifest_key
        with self._blobs.open(key) as stream:
            return list(packages.manifest_from_json(stream.read()))

    def diffs(self, app_name: str, deployment_name: str, label: str) -> list[DiffOut]:
        """The smaller downloads built to a release's content: CodePush diff archives and overair binary
        deltas, each with the deployment's labels it starts from (deltas: whether devices are offered it)."""
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            release = repo.get_release(session, deployment, label)
            labels: dict[str, list[str]] = {}
            for older in repo.releases_of(session, deployment):
                labels.setdefault(older.package_hash, []).append(older.label)
            target = release.package_hash
            found = [
                DiffOut(
                    kind="codepush-diff",
                    base_hash=d.base_hash,
                    base_labels=labels.get(d.base_hash, []),
                    size=d.size,
                    offered=True,
                )
                for d in session.scalars(
                    select(PackageDiff)
                    .where(PackageDiff.package_hash == target)
                    .order_by(PackageDiff.created_at, PackageDiff.base_hash)
                )
            ]
            offers = deltas.load_offers(session, [release], self._delta_min_saving)
            found += [
                DiffOut(
                    kind="delta",
                    base_hash=d.base_hash,
                    base_labels=labels.get(d.base_hash, []),
                    size=d.size,
                    offered=offers.get((target, d.base_hash)) is not None,
                )
                for d in session.scalars(
                    select(PackageDelta)
                    .where(PackageDelta.package_hash == target)
                    .order_by(PackageDelta.created_at, PackageDelta.base_hash)
                )
            ]
            return found

    def _store_package(self, archive: Path, info: packages.PackageInfo) -> tuple[str, str]:
        """Store a checked archive, its manifest and each of its files, content-addressed."""
        blob_key = self._blobs.put_file(archive)
        manifest_key = self._blobs.put_bytes(packages.manifest_to_json(info.manifest))
        with tempfile.TemporaryDirectory(prefix="overair-files-") as folder:
            root = Path(folder) / "bundle"
            packages.extract_archive(archive, root, info.manifest, limits=self._limits)
            for entry in info.manifest:
                if not entry.is_directory:
                    self._blobs.put_file(root / entry.path)
        return blob_key, manifest_key

    @staticmethod
    def _ensure_package(
        session: Session, info: packages.PackageInfo, blob_key: str, manifest_key: str
    ) -> None:
        if session.get(Package, info.package_hash) is None:
            session.add(
                Package(
                    package_hash=info.package_hash,
                    blob_key=blob_key,
                    manifest_key=manifest_key,
                    size=info.archive_size,
                    total_size=info.total_size,
                    file_count=sum(1 for e in info.manifest if not e.path.endswith("/")),
                )
            )
            session.flush()

    @staticmethod
    def _check_can_release(session: Session, deployment: Deployment) -> list[Release]:
        history = repo.releases_of(session, deployment)
        if history and history[-1].rollout < 100 and not history[-1].disabled:
            raise RolloutInProgress(_unfinished_rollout_message(deployment, history[-1]))
        return history

    @staticmethod
    def _check_not_identical(
        history: Sequence[Release], package_hash: str, target: str, build_number: int | None
    ) -> None:
        exact = semver.valid(target) is not None
        for release in reversed(history):
            if release.build_number != build_number:
                continue
            same = semver.satisfies(target, release.target_version) if exact else None
            if same is None:
                same = _same_target(release.target_version, target)
            if same:
                if release.package_hash == package_hash:
                    raise IdenticalRelease(
                        f"This bundle is identical to {release.label}, the current release for "
                        f"{target}: nothing to publish. Change the bundle, or change {release.label} "
                        "with: overair release patch-update"
                    )
                return

    def _append(
        self,
        session: Session,
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
            manifest=lambda: self._load_manifest(package.manifest_key),
            signed=signed,
        )
        if history and history[-1].rollout < 100:
            history[-1].rollout = 100  # at most one unfinished rollout per deployment: close the previous
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
        session.add(release)
        session.flush()
        session.refresh(release)
        return release

    def publish(
        self, app_name: str, deployment_name: str, archive: Path, options: PublishOptions, released_by: str
    ) -> ReleaseOut:
        """Publish a zip archive as the deployment's next release (``v1``, ``v2``, ...)."""
        target = _check_target(options.target_version)
        with self._sessions() as session:  # fail fast on names before reading a large archive
            app = repo.get_app(session, app_name)
            repo.get_deployment(session, app, deployment_name)
        info = packages.inspect_archive(archive, self._limits)
        raw_descriptor = _archive_file(archive, info, packages.DESCRIPTOR_FILE)
        descriptor = None if raw_descriptor is None else packages.parse_descriptor(raw_descriptor)
        raw_model = _archive_file(archive, info, packages.MODEL_FILE)
        model = None if raw_model is None else packages.parse_model(raw_model)
        with self._sessions() as session:  # and on the rules, before storing anything
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = self._check_can_release(session, deployment)
            self._check_not_identical(history, info.package_hash, target, options.build_number)
            warnings = self._check_binaries(session, app, target, options.build_number, descriptor)
            sync_first = self._check_model(history, target, options, model)
        if any(e.is_directory for e in info.manifest):
            warnings.append(
                "The archive has folder entries: CodePush clients hash files only, so they cannot verify "
                "this release's hash (signed releases fail, and no diff packages are built for it). Zip "
                "files only, as `overair release push-update --bundle FOLDER` does."
            )
        blob_key, manifest_key = self._store_package(archive, info)
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = self._check_can_release(session, deployment)
            self._check_not_identical(history, info.package_hash, target, options.build_number)
            self._ensure_package(session, info, blob_key, manifest_key)
            release = self._append(
                session,
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
                released_by=released_by,
                method="upload",
                sync_before_update=sync_first,
            )
            self._touch(deployment, changed)
            result = _release_out(release, deployment).model_copy(update={"warnings": warnings})
        self._schedule_diffs(release.id)
        return result

    @staticmethod
    def _pick_for_patch(session: Session, deployment: Deployment, patch: ReleasePatch) -> Release:
        if patch.label:
            return repo.get_release(session, deployment, patch.label)
        history = repo.releases_of(session, deployment)
        if not history:
            raise ReleaseNotFound(f'Deployment "{deployment.name}" has no release yet: push one first.')
        if patch.match_target_version is None:
            return history[-1]
        for release in reversed(history):
            if _same_target(release.target_version, patch.match_target_version.strip()) and (
                patch.match_build_number is None or release.build_number == patch.match_build_number
            ):
                return release
        build = f" build {patch.match_build_number}" if patch.match_build_number is not None else ""
        raise ReleaseNotFound(
            f'No release of "{deployment.name}" targets {patch.match_target_version}{build}. '
            "See the releases with: overair release list, and pass --label to pick one."
        )

    def patch(self, app_name: str, deployment_name: str, patch: ReleasePatch) -> ReleaseOut:
        """Change a pushed release's rollout, mandatory flag, disabled flag, description or targeting."""
        changes = patch.model_dump(
            exclude={"label", "match_target_version", "match_build_number", "clear_build_number"},
            exclude_none=True,
        )
        if not changes and not patch.clear_build_number:
            raise InvalidRelease(
                "Nothing to change: give at least one of rollout percentage, mandatory, disabled, "
                "description, target version or build number."
            )
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            release = self._pick_for_patch(session, deployment, patch)
            retargets = patch.target_version is not None or patch.build_number is not None
            if release.signature is not None and (retargets or patch.clear_build_number):
                raise InvalidRelease(
                    f"{release.label} is signed for {release.target_version}: its target is part of what was "
                    "signed, so it cannot be patched. Publish or promote it again with the new target, "
                    "signed with --signing-key."
                )
            if patch.rollout is not None and patch.rollout != release.rollout:
                if release.rollout == 100:
                    raise RolloutInProgress(
                        f"{release.label} already reaches every device (100%): a finished rollout cannot "
                        "shrink. To stop it, patch it with --disabled true or roll back."
                    )
                if patch.rollout < release.rollout:
                    raise RolloutInProgress(
                        f"The rollout of {release.label} can only grow (now {release.rollout}%, asked "
                        f"{patch.rollout}%): devices that have it would lose it. To stop it, use "
                        "--disabled true or roll back."
                    )
                release.rollout = patch.rollout
            if patch.mandatory is not None:
                release.mandatory = patch.mandatory
            if patch.disabled is not None:
                release.disabled = patch.disabled
            if patch.description is not None:
                release.description = patch.description
            if patch.target_version is not None:
                release.target_version = _check_target(patch.target_version)
            if patch.build_number is not None:
                release.build_number = patch.build_number
            elif patch.clear_build_number:
                release.build_number = None
            self._touch(deployment, changed)
            return _release_out(release, deployment)

    def promote(self, app_name: str, request: PromoteRequest, released_by: str) -> ReleaseOut:
        """Publish a release of one deployment (its newest, or ``label``) to another."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            source = repo.get_deployment(session, app, request.source)
            destination = repo.get_deployment(session, app, request.destination)
            if source.id == destination.id:
                raise InvalidRelease("Promote needs two different deployments (--from and --to).")
            if request.label:
                original = repo.get_release(session, source, request.label)
            else:
                source_history = repo.releases_of(session, source)
                if not source_history:
                    raise ReleaseNotFound(f'"{source.name}" has no release to promote: push one to it first.')
                original = source_history[-1]
            if original.disabled and request.disabled is not False:
                raise InvalidRelease(
                    f"{original.label} of {source.name} is disabled: name another --label, or enable it "
                    "first with: overair release patch-update --label "
                    f"{original.label} --deployment {source.name} --disabled false"
                )
            target = _check_target(request.target_version or original.target_version)
            history = self._check_can_release(session, destination)
            self._check_not_identical(history, original.package_hash, target, original.build_number)
            warnings = self._check_binaries(
                session, app, target, original.build_number, self._stored_descriptor(original.package)
            )
            release = self._append(
                session,
                destination,
                history,
                request.signed,
                package_hash=original.package_hash,
                target_version=target,
                build_number=original.build_number,
                rollout=request.rollout or 100,
                mandatory=original.mandatory if request.mandatory is None else request.mandatory,
                disabled=bool(request.disabled),
                description=original.description if request.description is None else request.description,
                released_by=released_by,
                method="promote",
                sync_before_update=original.sync_before_update,
                origin_label=original.label,
                origin_deployment=source.name,
            )
            self._touch(destination, changed)
            result = _release_out(release, destination).model_copy(update={"warnings": warnings})
        self._schedule_diffs(release.id)
        return result

    def rollback(
        self,
        app_name: str,
        deployment_name: str,
        label: str | None,
        released_by: str,
        signed: SignedRelease | None = None,
    ) -> ReleaseOut:
        """Republish the content of the previous release (or ``label``) as a new label.

        Devices that installed the newest release see a newer label with the older content and move back;
        devices that never left the older content already have it and download nothing.
        """
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = repo.releases_of(session, deployment)
            if not history:
                raise ReleaseNotFound(f'"{deployment.name}" has no release to roll back.')
            current = history[-1]
            if label is None:
                if len(history) < 2:
                    raise ReleaseNotFound(
                        f"{current.label} is the only release of {deployment.name}: there is nothing to roll "
                        "back to. Disable it instead with: overair release patch-update --disabled true"
                    )
                goal = history[-2]
            else:
                goal = repo.get_release(session, deployment, label)
            warnings = self._check_binaries(
                session, app, goal.target_version, goal.build_number, self._stored_descriptor(goal.package)
            )
            if goal.package_hash == current.package_hash:
                raise IdenticalRelease(
                    f"{current.label} already has the content of {goal.label}: nothing to roll back."
                )
            if current.rollout < 100:
                # closing the rollout below would send the release being rolled back to every device the
                # moment the rollback itself is disabled
                current.disabled = True
            release = self._append(
                session,
                deployment,
                history,
                signed,
                package_hash=goal.package_hash,
                target_version=goal.target_version,
                build_number=goal.build_number,
                rollout=100,
                mandatory=goal.mandatory,
                disabled=False,
                description=goal.description,
                released_by=released_by,
                method="rollback",
                sync_before_update=self._model_breaks(current.package, goal.package),
                origin_label=goal.label,
                origin_deployment=deployment.name,
            )
            self._touch(deployment, changed)
            result = _release_out(release, deployment).model_copy(update={"warnings": warnings})
        self._schedule_diffs(release.id)
        return result

    # -- diff archives (background) -----------------------------------------------------------------

    def _build_diffs_safely(self, release_id: int) -> None:
        try:
            self.build_diffs(release_id)
        except Exception:  # background work must never take the server down
            log.exception("building diff archives for release %s failed", release_id)

    def _load_manifest(self, key: str) -> tuple[packages.ManifestEntry, ...]:
        with self._blobs.open(key) as stream:
            return packages.manifest_from_json(stream.read())

    def build_diffs(self, release_id: int) -> int:
        """Build CodePush diff archives to a release from up to 10 older releases with a matching target.

        Runs in the background after publish, promote and rollback; returns how many archives it made.
        """
        with self._sessions() as session:
            release = session.get(Release, release_id)
            if release is None:
                return 0
            deployment = session.get(Deployment, release.deployment_id)
            assert deployment is not None
            bases: dict[str, str] = {}
            for older in reversed([r for r in repo.releases_of(session, deployment) if r.seq < release.seq]):
                if len(bases) >= DIFF_BASES:
                    break
                if older.package_hash != release.package_hash and _matching_targets(
                    older.target_version, release.target_version
                ):
                    bases.setdefault(older.package_hash, older.package.manifest_key)
            done = set(
                session.scalars(
                    select(PackageDiff.base_hash).where(PackageDiff.package_hash == release.package_hash)
                )
            )
            target_hash, target_manifest_key, key = (
                release.package_hash,
                release.package.manifest_key,
                deployment.key,
            )
        todo = {h: k for h, k in bases.items() if h not in done}
        if not todo:
            return 0
        new_manifest = self._load_manifest(target_manifest_key)
        if any(e.is_directory for e in new_manifest):
            # Clients verify a diff by hashing the files they end up with; a package whose hash counts
            # folder entries (as the reference server's does) can never verify, so it gets no diffs.
            return 0
        made = []
        for base_hash, manifest_key in todo.items():
            old_manifest = self._load_manifest(manifest_key)
            if any(e.is_directory for e in old_manifest):
                continue
            plan = packages.plan_diff(old_manifest, new_manifest)
            if plan is None:
                continue
            with tempfile.TemporaryDirectory(prefix="overair-diff-") as folder:
                archive = Path(folder) / "diff.zip"
                packages.write_diff_archive(
                    plan, archive, lambda entry: self._blobs.open(content_key(entry.sha256))
                )
                made.append(
                    PackageDiff(
                        package_hash=target_hash,
                        base_hash=base_hash,
                        blob_key=self._blobs.put_file(archive),
                        size=archive.stat().st_size,
                    )
                )
        if made:
            with self._transaction() as (session, changed):
                for diff in made:
                    session.merge(diff)
                deployment_row = repo.deployment_by_key(session, key)
                if deployment_row is not None:
                    self._touch(deployment_row, changed)
        return len(made)

    # -- binary deltas (background; overair.releases.deltas) ------------------------------------------

    def request_delta(self, base_hash: str, target_hash: str) -> bool:
        """Queue a delta a device on ``base_hash`` could use next time; never waits (see deltas.py)."""
        return self._deltas.request(base_hash, target_hash)

    def _delta_built(self, target_hash: str) -> None:
        with self._transaction() as (session, changed):
            for deployment in deltas.deployments_with(session, target_hash):
                self._touch(deployment, changed)

    # -- devices ------------------------------------------------------------------------------------

    def device_snapshot(self, deployment_key: str) -> DeviceSnapshot | None:
        """Everything the update check needs of a deployment, or None for an unknown key."""
        with self._sessions() as session:
            deployment = repo.deployment_by_key(session, deployment_key)
            if deployment is None:
                return None
            history = repo.releases_of(session, deployment)
            diffs: dict[str, list[tuple[str, str, int]]] = {}
            hashes = {r.package_hash for r in history}
            if hashes:
                for diff in session.scalars(select(PackageDiff).where(PackageDiff.package_hash.in_(hashes))):
                    diffs.setdefault(diff.package_hash, []).append((diff.base_hash, diff.blob_key, diff.size))
            releases = tuple(
                Candidate(
                    label=r.label,
                    package_hash=r.package_hash,
                    target=r.target_version,
                    build_number=r.build_number,
                    rollout=r.rollout,
                    mandatory=r.mandatory,
                    disabled=r.disabled,
                    sync_before_update=r.sync_before_update,
                    size=r.package.size,
                    description=r.description,
                    blob_key=r.package.blob_key,
                    manifest_key=r.package.manifest_key,
                    diffs=tuple(diffs.get(r.package_hash, ())),
                    sequence=r.sequence,
                    signed_manifest=r.signed_manifest,
                    signature=r.signature,
                    signing_key_id=r.signing_key_id,
                )
                for r in history
            )
            return DeviceSnapshot(
                generation=deployment.generation,
                store_only=deployment.app.distribution == Distribution.STORE_ONLY.value,
                releases=releases,
                deltas=deltas.load_offers(session, history, self._delta_min_saving),
                delta_bases=deltas.bases_on_request(history),
            )

    def generation(self, deployment_key: str) -> int | None:
        """The deployment's change counter (None: unknown key); cheap, for cache revalidation."""
        with self._sessions() as session:
            return session.scalar(select(Deployment.generation).where(Deployment.key == deployment_key))

    # -- operations the CodePush management dialect needs ---------------------------------------------

    def rename_app(self, name: str, new_name: str) -> AppOut:
        """Rename an app; its deployments and their keys stay."""
        try:
            new_name = AppCreate(name=new_name).name
        except ValidationError as exc:
            raise Invalid(
                f'"{new_name}" is not a valid app name: use 1-100 letters, digits, spaces, ".", "_" or "-", '
                "starting with a letter or digit."
            ) from exc
        with self._transaction() as (session, _):
            app = repo.get_app(session, name)
            if new_name != app.name and session.scalar(select(App.id).where(App.name == new_name)):
                raise NameTaken(f'An app named "{new_name}" already exists; pick another name.')
            app.name = new_name
            session.flush()
            return _app_out(session, app)

    def clear_history(self, app_name: str, deployment_name: str) -> None:
        """Delete every release of a deployment; labels start again at v1, the key and stored content stay."""
        with self._transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            session.execute(delete(Release).where(Release.deployment_id == deployment.id))
            self._touch(deployment, changed)
