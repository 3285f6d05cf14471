"""bsdiff patches between Expo launch assets: built in the background, stored by content, offered if worth it.

An ``expo-updates`` client that runs one update and downloads another may ask for the new launch asset (the
JavaScript bundle) as a patch against the one it runs (``A-IM: bsdiff``, see docs/design.md). This module
is everything beneath the protocol adapter's answer to that request:

- :meth:`LaunchPatches.patch_for` (the adapter's one call): the patch from the running launch asset to the
  target one, or None (not built yet, which queues it; or not worth it; or unusable), never waiting;
- :meth:`LaunchPatches.schedule`: at publish time, queue the patches to a new launch asset from earlier ones;
- the job :data:`PATCH_JOB`, once per pair across hosts (the ``jobs`` table's unique key), that builds a
  BSDIFF40 patch (:mod:`overair.packages.bsdiff`), verifies it as the client will apply it, and records the
  outcome in ``launch_patches``.

Launch assets are identified by the SHA-256 (hex) of their bytes and stored at
:func:`overair.storage.content_key` of it, like every other file overair keeps. Patches are content-addressed
blobs too. Every pair is recorded once, whatever its outcome, so it is never built again; only a verified
patch at most :data:`MAX_RATIO` of the gzip-compressed target is stored and offered.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import BigInteger, Float, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from overair.db import Base, UTCDateTime, dialect_insert, utcnow
from overair.jobs import OnDemand, Worker
from overair.packages.bsdiff import InvalidPatch, build_patch, verify_patch
from overair.packages.expo import ExpoContent
from overair.releases.models import App, Deployment, Package, Release
from overair.releases.schemas import ReleaseOut
from overair.storage import BlobStore, ObjectNotFound, content_key

log = logging.getLogger("overair")

PATCH_JOB = "expo.launch-patch"
"""Job: build the patch between two launch assets (key: ``target:base`` SHA-256 hex digests)."""
MAX_RATIO = 0.5
"""A patch is offered only when it is at most half the gzip-compressed launch asset it replaces."""
MAX_ASSET_BYTES = 64 * 1024 * 1024
"""Launch assets larger than this are not diffed (bsdiff needs about nine times the old file in memory)."""
MAX_QUEUE = 64
"""On-demand requests waiting to be queued, at most; further ones are dropped (the next device asks again)."""
BASES_AT_PUBLISH = 3
"""Publishing queues patches from the launch assets of this many releases before it (the ones devices run)."""
_UPDATE_MEMO = 4096

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Differ = Callable[[bytes, bytes], bytes]


class Outcome(StrEnum):
    """What building one pair gave; only :attr:`OFFERED` rows have a patch to serve."""

    OFFERED = "offered"
    """Verified and small enough: stored and offered."""
    NOT_SMALLER = "not-smaller"
    """Verified, but over :data:`MAX_RATIO` of the compressed target: the full asset is cheaper."""
    INVALID = "invalid"
    """The patch failed verification (the client would refuse it or get other bytes): never offered."""
    TOO_LARGE = "too-large"
    """An asset is over :data:`MAX_ASSET_BYTES`: not diffed."""


class LaunchPatchRow(Base):
    """The outcome of building the bsdiff patch from launch asset ``base_sha256`` to ``target_sha256``."""

    __tablename__ = "launch_patches"

    target_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    blob_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The patch's blob; only for :attr:`Outcome.OFFERED` (others are not kept)."""
    size: Mapped[int] = mapped_column(BigInteger)
    """The patch's size in bytes (0 when none was built)."""
    full_size: Mapped[int] = mapped_column(BigInteger)
    """The gzip-compressed target's size: the download the patch replaces."""
    detail: Mapped[str] = mapped_column(Text, default="")
    build_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True, slots=True)
class LaunchPatch:
    """A verified BSDIFF40 patch a device on ``base_sha256`` may download instead of ``target_sha256``."""

    base_sha256: str
    target_sha256: str
    blob_key: str
    size: int


def worth_offering(patch_size: int, full_size: int, max_ratio: float = MAX_RATIO) -> bool:
    """Whether a patch of ``patch_size`` bytes is worth sending instead of a ``full_size`` download.

    >>> worth_offering(40, 100), worth_offering(60, 100), worth_offering(0, 0)
    (True, False, False)
    """
    return 0 < patch_size <= full_size * max_ratio


def gzip_size(data: bytes) -> int:
    """The size of ``data`` gzip-compressed at the default level (what a full download costs)."""
    return len(gzip.compress(data, compresslevel=6, mtime=0))


class LaunchPatches:
    """Builds, records and looks up launch-asset patches (see the module's documentation)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        jobs: Worker,
        *,
        max_ratio: float = MAX_RATIO,
        max_asset_bytes: int = MAX_ASSET_BYTES,
        differ: Differ = build_patch,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._jobs = jobs
        self._max_ratio = max_ratio
        self._max_asset_bytes = max_asset_bytes
        self._differ = differ
        self._asked = OnDemand(jobs, PATCH_JOB, max_queue)
        self._launch_by_update: dict[str, str | None] = {}
        jobs.handle(PATCH_JOB, lambda payload: self._run(str(payload["base"]), str(payload["target"])))

    # -- the adapter's call -------------------------------------------------------------------------

    def patch_for(self, base_sha256: str, target_sha256: str) -> LaunchPatch | None:
        """The patch from the launch asset a device runs to the one it downloads; None: send the full one.

        Both are SHA-256 hex digests of the assets' bytes. None when they are equal or malformed, when the
        patch is not built yet (it is then queued for the next device; this call never waits), when it
        saves too little, or when it failed verification.
        """
        if base_sha256 == target_sha256 or not (_HEX64.match(base_sha256) and _HEX64.match(target_sha256)):
            return None
        with self._sessions() as session:
            row = session.get(LaunchPatchRow, (target_sha256, base_sha256))
        if row is None:
            self.request(base_sha256, target_sha256)
            return None
        if row.outcome != Outcome.OFFERED or row.blob_key is None:
            return None
        if not worth_offering(row.size, row.full_size, self._max_ratio):
            return None
        return LaunchPatch(base_sha256, target_sha256, row.blob_key, row.size)

    def for_update(self, current_update_id: str, target_sha256: str) -> LaunchPatch | None:
        """The patch for a device that runs the Expo update ``current_update_id`` (its
        ``Expo-Current-Update-ID``) and downloads the launch asset ``target_sha256``; None as
        :meth:`patch_for`, and when no release has that update id (an embedded update, say)."""
        base = self._launch_of(current_update_id.lower())
        return None if base is None else self.patch_for(base, target_sha256)

    def _launch_of(self, update_id: str) -> str | None:
        # an update id names one manifest for good, so its launch asset never changes: remembered
        if update_id in self._launch_by_update:
            return self._launch_by_update[update_id]
        with self._sessions() as session:
            content = session.scalar(
                select(Package.expo)
                .join(Release, Release.package_hash == Package.package_hash)
                .where(Release.update_id == update_id)
                .limit(1)
            )
        launch = ExpoContent.from_json(content).launch.sha256 if content else None
        if len(self._launch_by_update) >= _UPDATE_MEMO:
            self._launch_by_update.clear()
        self._launch_by_update[update_id] = launch
        return launch

    # -- scheduling ---------------------------------------------------------------------------------

    def on_published(self, session: Session, app_name: str, release: ReleaseOut) -> None:
        """Publish listener (``ReleaseService.on_published``): for a new Expo release, queue the patches to
        its launch asset from those of the :data:`BASES_AT_PUBLISH` releases before it on its deployment
        for the same runtime version and platform, in the publishing transaction."""
        if release.runtime_version is None:
            return
        rows = session.execute(
            select(Release.label, Release.platform, Package.expo)
            .join(Package, Release.package_hash == Package.package_hash)
            .join(Deployment, Release.deployment_id == Deployment.id)
            .join(App, Deployment.app_id == App.id)
            .where(
                App.name == app_name,
                Deployment.name == release.deployment,
                Release.runtime_version == release.runtime_version,
                Package.expo.is_not(None),
            )
            .order_by(Release.seq.desc())
        ).all()
        launches = {
            label: ExpoContent.from_json(expo).launch.sha256
            for label, platform, expo in rows
            if expo and (platform is None or release.platform is None or platform == release.platform)
        }
        target = launches.pop(release.label, None)
        if target is not None:
            self.schedule(target, list(launches.values())[:BASES_AT_PUBLISH], session=session)

    def schedule(
        self, target_sha256: str, base_sha256s: Iterable[str], *, session: Session | None = None
    ) -> int:
        """Queue the patches to a new launch asset from earlier ones (e.g. the launch assets of the last
        releases of the same channel, runtime version and platform); with ``session``, in its transaction.
        How many jobs were queued (pairs queued or built before are not queued again)."""
        queued = 0
        for base in dict.fromkeys(base_sha256s):
            if base != target_sha256 and _HEX64.match(base) and _HEX64.match(target_sha256):
                payload = {"target": target_sha256, "base": base}
                queued += self._jobs.enqueue(PATCH_JOB, f"{target_sha256}:{base}", payload, session=session)
        return queued

    def request(self, base_sha256: str, target_sha256: str) -> bool:
        """Ask for one patch a device could use; False when it was asked for lately or too many requests
        wait. Never waits, never touches the database: the worker queues the job."""
        return self._asked.ask(
            f"{target_sha256}:{base_sha256}", {"target": target_sha256, "base": base_sha256}
        )

    def _run(self, base: str, target: str) -> None:
        self.build(base, target)

    # -- building -----------------------------------------------------------------------------------

    def _read(self, sha256: str) -> bytes | None:
        try:
            with self._blobs.open(content_key(sha256)) as stream:
                return stream.read()
        except ObjectNotFound:
            return None

    def build(self, base_sha256: str, target_sha256: str) -> Outcome | None:
        """Build, verify and record the patch between two launch assets; its outcome, or None when an asset
        is not stored (nothing is recorded then). A pair recorded already is not built again; when two hosts
        build one at once, the first row stands."""
        with self._sessions() as session:
            row = session.get(LaunchPatchRow, (target_sha256, base_sha256))
            if row is not None:
                return Outcome(row.outcome)
        old, new = self._read(base_sha256), self._read(target_sha256)
        if old is None or new is None:
            log.info("launch patch %s→%s: an asset is not stored", base_sha256[:12], target_sha256[:12])
            return None
        full_size = gzip_size(new)
        if max(len(old), len(new)) > self._max_asset_bytes:
            return self._record(base_sha256, target_sha256, Outcome.TOO_LARGE, None, 0, full_size, 0.0)
        started = time.perf_counter()
        patch = self._differ(old, new)
        try:
            verify_patch(old, patch, target_sha256)
        except InvalidPatch as exc:
            elapsed = time.perf_counter() - started
            log.warning(
                "launch patch %s→%s failed verification: %s", base_sha256[:12], target_sha256[:12], exc
            )
            return self._record(
                base_sha256, target_sha256, Outcome.INVALID, None, len(patch), full_size, elapsed, exc.message
            )
        elapsed = time.perf_counter() - started
        if not worth_offering(len(patch), full_size, self._max_ratio):
            return self._record(
                base_sha256, target_sha256, Outcome.NOT_SMALLER, None, len(patch), full_size, elapsed
            )
        blob_key = self._blobs.put_bytes(patch)
        return self._record(
            base_sha256, target_sha256, Outcome.OFFERED, blob_key, len(patch), full_size, elapsed
        )

    def _record(
        self,
        base: str,
        target: str,
        outcome: Outcome,
        blob_key: str | None,
        size: int,
        full_size: int,
        elapsed: float,
        detail: str = "",
    ) -> Outcome:
        with self._sessions() as session, session.begin():
            session.execute(
                dialect_insert(session)(LaunchPatchRow)
                .values(
                    target_sha256=target,
                    base_sha256=base,
                    outcome=outcome.value,
                    blob_key=blob_key,
                    size=size,
                    full_size=full_size,
                    detail=detail,
                    build_seconds=elapsed,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing()  # another host recorded the same pair: its row stands
            )
        log.info(
            "launch patch %s→%s: %s, %d bytes (full download %d) in %.2fs",
            base[:12],
            target[:12],
            outcome.value,
            size,
            full_size,
            elapsed,
        )
        return outcome
