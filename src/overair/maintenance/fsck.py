"""``overair fsck``: does the blob store hold, intact, everything the database says it does, and no more?

The database references blobs in five ways: a package's archive and its manifest (``packages``), each
file the manifest lists (stored on its own, for diffs, deltas and overair's own files), CodePush diff
archives (``package_diffs``) and binary deltas (``package_deltas``). Keys are content addresses, so a
blob is intact exactly when its bytes hash to the digest in its key.

The check reads the database first and lists the store afterwards: blobs a publish stores meanwhile are
then either referenced or young, and unreferenced blobs are removed only when older than a grace period
(a publish stores its blobs before its release row, and storing old content again refreshes its time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from overair import packages
from overair.config import Settings
from overair.db import check_reachable, make_engine, make_sessionmaker
from overair.maintenance.leftovers import human_size
from overair.releases.launch_patches import LaunchPatchRow
from overair.releases.models import App, Deployment, Package, PackageDelta, PackageDiff, Release
from overair.storage import BlobStore, ObjectNotFound, StoredObject, content_key, digest_of

_CHUNK = 1024 * 1024

Progress = Callable[[str], None]
"""Where the check reports what it is doing (a line at a time; ``overair fsck`` prints them on stderr)."""


class CannotCheck(Exception):
    """The check cannot start: no database where the settings point, or one of another version."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Role(StrEnum):
    """What a blob is to the package that references it."""

    ARCHIVE = "archive"
    MANIFEST = "manifest"
    FILE = "file"
    DIFF = "diff"
    DELTA = "delta"
    LAUNCH_PATCH = "launch-patch"


@dataclass(frozen=True, slots=True)
class Use:
    """One reason a blob is needed: its role in a package (with the file's path or the diff's base)."""

    role: Role
    package_hash: str
    detail: str = ""

    def describe(self) -> str:
        """``file index.js of package 1a2b3c4d``."""
        package = f"package {self.package_hash[:12]}"
        if self.role is Role.FILE:
            return f"file {self.detail} of {package}"
        if self.role is Role.LAUNCH_PATCH:
            return f"launch patch from asset {self.detail[:12]} to asset {self.package_hash[:12]}"
        if self.role in (Role.DIFF, Role.DELTA):
            kind = "diff archive" if self.role is Role.DIFF else "binary delta"
            return f"{kind} from package {self.detail[:12]} to {package}"
        return f"{self.role.value} of {package}"


@dataclass(frozen=True, slots=True, order=True)
class ReleaseName:
    """A release as people name it."""

    app: str
    deployment: str
    label: str

    def __str__(self) -> str:
        return f"{self.app}/{self.deployment} {self.label}"


class Problem(StrEnum):
    """What can be wrong with a referenced blob."""

    MISSING = "missing"
    """No blob under the key."""
    CORRUPT = "corrupt"
    """The blob's bytes do not hash to its key."""
    BAD_KEY = "bad-key"
    """The database names something that is not a content key."""
    BAD_MANIFEST = "bad-manifest"
    """The manifest is intact but cannot be read as a manifest."""
    WRONG_PACKAGE_HASH = "wrong-package-hash"
    """The manifest's files do not give the package hash the database records."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One inconsistency: which blob, what is wrong, what needs it and which releases it breaks."""

    problem: Problem
    key: str
    detail: str
    uses: tuple[Use, ...]
    releases: tuple[ReleaseName, ...]


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``--remove-unreferenced`` did: removed blobs, and the ones kept as younger than the grace."""

    removed: tuple[StoredObject, ...] = ()
    kept_young: tuple[StoredObject, ...] = ()
    refused: str = ""

    @property
    def removed_bytes(self) -> int:
        """Bytes freed."""
        return sum(o.size for o in self.removed)


@dataclass(slots=True)
class Report:
    """Everything the check found."""

    releases: int = 0
    packages: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    unreferenced: list[StoredObject] = field(default_factory=list)
    removal: Removal | None = None

    @property
    def damaged(self) -> bool:
        """Some release's content is missing or damaged."""
        return bool(self.findings)

    def remaining_unreferenced(self) -> list[StoredObject]:
        """Unreferenced blobs still in the store (all of them, unless some were removed)."""
        gone = {o.key for o in self.removal.removed} if self.removal else set()
        return [o for o in self.unreferenced if o.key not in gone]

    def removal_blocker(self) -> str:
        """Why removing unreferenced blobs would be unsafe now, or an empty string.

        A missing blob may mean the store is not the one this database uses (a wrong blob URL), and a
        manifest that cannot be read hides which files its package needs: in both cases "unreferenced"
        is not known for sure.
        """
        if any(f.problem is Problem.MISSING for f in self.findings):
            return (
                "some referenced blobs are missing, so this blob store may not be the one the database "
                "was used with"
            )
        unsure = (Problem.BAD_KEY, Problem.BAD_MANIFEST)
        if any(f.problem in unsure or Role.MANIFEST in {u.role for u in f.uses} for f in self.findings):
            return "a manifest could not be read, so the files its package needs are unknown"
        return ""


def open_for_check(settings: Settings) -> tuple[Engine, BlobStore]:
    """The database and blob store ``settings`` name, without creating or upgrading anything.

    Raises :class:`CannotCheck` for a missing or foreign database and
    :class:`~overair.db.DatabaseUnavailable` for one that does not answer."""
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path in ("", ":memory:") or not Path(path).is_file():
            raise CannotCheck(
                f"There is no overair database at {path or url}. Point the check at the server's data "
                "folder (OVERAIR_DATA_DIR) or database (OVERAIR_DATABASE_URL)."
            )
    engine = make_engine(url)
    check_reachable(engine)  # DatabaseUnavailable: one line saying which database did not answer
    missing = {"packages", "releases", "package_diffs", "package_deltas"} - set(
        inspect(engine).get_table_names()
    )
    if missing:
        engine.dispose()
        raise CannotCheck(
            f"The database at {engine.url.render_as_string(hide_password=True)} has no "
            f"{', '.join(sorted(missing))} table: it is not an overair database, or the server never "
            "started on it."
        )
    return engine, settings.blob_store()


class _Checker:
    """One run of the check: the reference set with its uses, then the blobs' hashes."""

    def __init__(self, blobs: BlobStore, progress: Progress, every: float) -> None:
        self.blobs = blobs
        self.progress = progress
        self.every = every
        self.report = Report()
        self.uses: dict[str, list[Use]] = defaultdict(list)
        self.releases_of: dict[str, list[ReleaseName]] = defaultdict(list)
        self.verified: set[str] = set()
        self.manifest_keys: set[str] = set()

    def _find(self, problem: Problem, key: str, detail: str) -> None:
        uses = tuple(self.uses[key])
        names = sorted({name for use in uses for name in self.releases_of[use.package_hash]})
        self.report.findings.append(Finding(problem, key, detail, uses, tuple(names)))

    def read_database(self, sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
        """Releases and every key the database names directly; the packages (hash, archive, manifest)."""
        with sessions() as session:
            rows = session.execute(
                select(App.name, Deployment.name, Release.label, Release.package_hash)
                .join(Deployment, Release.deployment_id == Deployment.id)
                .join(App, Deployment.app_id == App.id)
            ).all()
            stored = session.execute(
                select(Package.package_hash, Package.blob_key, Package.manifest_key)
            ).all()
            diffs = session.execute(
                select(PackageDiff.package_hash, PackageDiff.base_hash, PackageDiff.blob_key)
            )
            deltas = session.execute(
                select(PackageDelta.package_hash, PackageDelta.base_hash, PackageDelta.blob_key)
            )
            patches = [  # only offered patches are kept
                (target, base, key)
                for target, base, key in session.execute(
                    select(LaunchPatchRow.target_sha256, LaunchPatchRow.base_sha256, LaunchPatchRow.blob_key)
                )
                if key is not None
            ]
            kinds = ((Role.DIFF, diffs.all()), (Role.DELTA, deltas.all()), (Role.LAUNCH_PATCH, patches))
            for role, found in kinds:
                for target, base, key in found:
                    self.uses[key].append(Use(role, target, base))
        for app, deployment, label, package_hash in rows:
            self.releases_of[package_hash].append(ReleaseName(app, deployment, label))
        for package_hash, archive_key, manifest_key in stored:
            self.uses[archive_key].append(Use(Role.ARCHIVE, package_hash))
            self.uses[manifest_key].append(Use(Role.MANIFEST, package_hash))
        self.report.releases, self.report.packages = len(rows), len(stored)
        return [(package_hash, archive, manifest) for package_hash, archive, manifest in stored]

    def _hash(self, key: str, on_bytes: Callable[[int], None] = lambda _n: None) -> tuple[str, bytes | None]:
        """The blob's SHA-256 (and its bytes when it is small enough to be a manifest)."""
        sha = hashlib.sha256()
        kept: list[bytes] | None = [] if key in self.manifest_keys else None
        with self.blobs.open(key) as stream:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
                self.report.bytes_checked += len(chunk)
                on_bytes(len(chunk))
                if kept is not None:
                    kept.append(chunk)
        self.report.blobs_checked += 1
        return sha.hexdigest(), None if kept is None else b"".join(kept)

    def _verify(self, key: str, on_bytes: Callable[[int], None] = lambda _n: None) -> bytes | None:
        """Hash the blob against its key once; a problem is recorded. The bytes of an intact manifest."""
        if key in self.verified:
            return None
        self.verified.add(key)
        try:
            digest = digest_of(key)
        except ValueError:
            self._find(Problem.BAD_KEY, key, "the database names it, but it is not a content key")
            return None
        try:
            actual, data = self._hash(key, on_bytes)
        except ObjectNotFound:
            self._find(Problem.MISSING, key, "no blob is stored under this key")
            return None
        if actual != digest:
            self._find(Problem.CORRUPT, key, f"its content hashes to {actual}, not to its key")
            return None
        return data

    def read_manifests(self, stored: list[tuple[str, str, str]]) -> None:
        """Check each manifest and add the files it lists to the reference set."""
        self.manifest_keys = {manifest_key for _, _, manifest_key in stored}
        self.progress(f"Reading {len(stored):,} package manifests…")
        for package_hash, _, manifest_key in stored:
            data = self._verify(manifest_key)
            if data is None:
                continue
            try:
                manifest = packages.manifest_from_json(data)
            except packages.InvalidBundle as exc:
                self._find(Problem.BAD_MANIFEST, manifest_key, f"it is not a readable manifest: {exc}")
                continue
            if packages.package_hash(manifest) != package_hash:
                self._find(
                    Problem.WRONG_PACKAGE_HASH,
                    manifest_key,
                    f"its files give package hash {packages.package_hash(manifest)}, not {package_hash}",
                )
            for entry in manifest:
                if not entry.is_directory:
                    self.uses[content_key(entry.sha256)].append(Use(Role.FILE, package_hash, entry.path))

    def hash_blobs(self, listed: dict[str, StoredObject]) -> None:
        """Hash every referenced blob once, reporting progress at most every ``every`` seconds."""
        todo = [key for key in self.uses if key not in self.verified]
        total = sum(listed[k].size for k in todo if k in listed)
        self.progress(f"Hashing {len(todo):,} blobs ({human_size(total)})…")
        done_bytes, last = 0, time.monotonic()

        def count(n: int) -> None:
            nonlocal done_bytes, last
            done_bytes += n
            if time.monotonic() - last >= self.every:
                last = time.monotonic()
                share = done_bytes / total if total else 1.0
                self.progress(
                    f"  {self.report.blobs_checked:,} blobs hashed, {human_size(done_bytes)} of "
                    f"{human_size(total)} ({share:.0%})"
                )

        for key in todo:
            self._verify(key, count)


def check(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    progress: Progress = lambda _line: None,
    progress_every: float = 5.0,
) -> Report:
    """Check every release's content and find the blobs nothing references (see the module docstring).

    ``progress`` gets a line at each step and, while hashing, at most every ``progress_every`` seconds.
    """
    checker = _Checker(blobs, progress, progress_every)
    progress("Reading the database…")
    stored = checker.read_database(sessions)
    checker.read_manifests(stored)
    progress("Listing the blob store…")
    listed = {o.key: o for o in blobs.list_objects()}
    checker.hash_blobs(listed)
    report = checker.report
    report.unreferenced = sorted((o for k, o in listed.items() if k not in checker.uses), key=lambda o: o.key)
    report.findings.sort(key=lambda f: (f.releases == (), f.releases, f.key))
    return report


def remove_unreferenced(
    blobs: BlobStore, report: Report, grace: dt.timedelta, now: dt.datetime | None = None
) -> Removal:
    """Remove the report's unreferenced blobs older than ``grace``; record what was done in the report.

    Each blob's time is read again just before it is removed, so one a publish has stored again since the
    listing is kept. Nothing is removed when :meth:`Report.removal_blocker` says it is unsafe.
    """
    blocker = report.removal_blocker()
    if blocker:
        report.removal = Removal(refused=blocker)
        return report.removal
    cutoff = (now or dt.datetime.now(dt.UTC)) - grace
    removed, kept = [], []
    for listed in report.unreferenced:
        try:
            current = blobs.stat(listed.key)
        except ObjectNotFound:
            removed.append(listed)
            continue
        if current.modified >= cutoff:
            kept.append(current)
            continue
        blobs.delete(listed.key)
        removed.append(current)
    report.removal = Removal(tuple(removed), tuple(kept))
    return report.removal


def check_settings(
    settings: Settings, progress: Progress = lambda _line: None, progress_every: float = 5.0
) -> tuple[Report, BlobStore]:
    """Open what ``settings`` name, check it and close the database again."""
    engine, blobs = open_for_check(settings)
    try:
        return check(make_sessionmaker(engine), blobs, progress, progress_every), blobs
    finally:
        engine.dispose()
