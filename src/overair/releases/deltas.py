"""Binary deltas for the native protocol: built in the background, stored by content, offered when worth it.

When a release is published (uploaded, promoted or rolled back), a job (:mod:`overair.jobs`) builds a delta
to its content from the content of each of the 10 previous releases of the same deployment that run on the
same binaries (see :func:`overair.releases.rules.download_bases`). A device on an older base (any of the
deployment's last 50 releases) gets the full package at once, and its (base, target) pair is remembered in
memory (bounded, deduplicated; asking never waits) until the worker queues it as a job, so that the next
device on that base is offered a delta.

Deltas are stored as content-addressed blobs and recorded in ``package_deltas`` keyed by (target, base)
content hashes, so a promotion or rollback to the same content reuses them. When one is built, every
deployment with a release of the target content has its ``generation`` raised, which drops the cached
update-check answers; a delta is then offered only if it is smaller than the full download by the
configured margin (``OVERAIR_DELTA_MIN_SAVING``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from overair import packages
from overair.db import dialect_insert, utcnow
from overair.jobs import OnDemand, Worker
from overair.releases import repository as repo
from overair.releases import rules
from overair.releases.models import Deployment, Package, PackageDelta, Release
from overair.storage import BlobStore, content_key

log = logging.getLogger("overair")

ON_DEMAND_DEPTH = 50
"""A device on the content of one of the deployment's last 50 releases gets a delta built on request."""
MAX_QUEUE = 64
"""On-demand requests waiting to be queued, at most; further ones are dropped (the next device asks again)."""
DEFAULT_MIN_SAVING = 0.2


@dataclass(frozen=True, slots=True)
class DeltaOffer:
    """A built delta a device may download instead of the full package."""

    blob_key: str
    size: int


@dataclass(frozen=True, slots=True)
class DeltaOffers:
    """The deltas worth offering for one (target, base) pair: ``plain`` (format 1, which every engine
    reads) and ``transformed`` (format 2, Hermes bytecode transformed; engines that read it prefer it).
    At least one is set."""

    plain: DeltaOffer | None
    transformed: DeltaOffer | None = None


def load_offers(
    session: Session, history: Iterable[Release], min_saving: float
) -> dict[tuple[str, str], DeltaOffers | None]:
    """(target hash, base hash) → the deltas to offer, or None: built, but none saves enough."""
    sizes = {r.package_hash: r.package.size for r in history}
    if not sizes:
        return {}
    offers: dict[tuple[str, str], DeltaOffers | None] = {}
    rows = session.execute(
        select(
            PackageDelta.package_hash,
            PackageDelta.base_hash,
            PackageDelta.blob_key,
            PackageDelta.size,
            PackageDelta.transformed_blob_key,
            PackageDelta.transformed_size,
        ).where(PackageDelta.package_hash.in_(sizes))
    )
    for target, base, blob_key, size, transformed_key, transformed_size in rows:
        limit = sizes[target] * (1.0 - min_saving)
        plain = DeltaOffer(blob_key, size) if size <= limit else None
        transformed = None
        if transformed_key is not None and transformed_size is not None and transformed_size <= limit:
            transformed = DeltaOffer(transformed_key, transformed_size)
        offers[(target, base)] = (
            None if plain is None and transformed is None else DeltaOffers(plain, transformed)
        )
    return offers


RELEASE_JOB = "deltas.release"
"""Job: build the deltas to a new release from its previous compatible ones (key: the release id)."""
PAIR_JOB = "deltas.pair"
"""Job: build one delta a device asked for (key: ``target:base`` content hashes)."""


class DeltaBuilder:
    """Builds deltas as jobs of the shared queue; ``on_built(target_hash)`` runs after each batch is
    stored."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        limits: packages.Limits,
        on_built: Callable[[str], None],
        jobs: Worker,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._limits = limits
        self._on_built = on_built
        self._jobs = jobs
        self._asked = OnDemand(jobs, PAIR_JOB, max_queue)
        jobs.handle(RELEASE_JOB, lambda payload: self._run_release(int(payload["release_id"])))
        jobs.handle(PAIR_JOB, lambda payload: self._run_pair(payload["base"], payload["target"]))

    # -- scheduling ---------------------------------------------------------------------------------

    def after_release(self, release_id: int, session: Session) -> None:
        """Queue the deltas to a new release from the previous compatible ones, in the transaction of
        ``session`` that makes the release (never waits for them)."""
        self._jobs.enqueue(RELEASE_JOB, str(release_id), {"release_id": release_id}, session=session)

    def _run_release(self, release_id: int) -> None:
        self.build_for_release(release_id)

    def request(self, base_hash: str, target_hash: str) -> bool:
        """Ask for one delta a device could use; False when it was asked for lately or too many requests
        wait. Never waits, never touches the database: the worker queues the job."""
        return self._asked.ask(f"{target_hash}:{base_hash}", {"target": target_hash, "base": base_hash})

    def _run_pair(self, base: str, target: str) -> None:
        with self._sessions() as session:
            if session.get(PackageDelta, (target, base)) is not None:
                return  # built meanwhile, by the release's own job
        if self.build(base, target):
            self._on_built(target)

    # -- building -----------------------------------------------------------------------------------

    def build_for_release(self, release_id: int) -> int:
        """Build the missing deltas to a release from its previous compatible releases; how many were made."""
        with self._sessions() as session:
            found = repo.with_history(session, release_id)
            if found is None:
                return 0
            release, history = found
            bases = rules.download_bases(history, release)
            target = release.package_hash
            done = set(
                session.scalars(select(PackageDelta.base_hash).where(PackageDelta.package_hash == target))
            )
        made = 0
        for base in bases:
            if base not in done and self.build(base, target):
                made += 1
        if made:
            self._on_built(target)
        return made

    def _manifest(self, package_hash: str) -> tuple[packages.ManifestEntry, ...] | None:
        with self._sessions() as session:
            package = session.get(Package, package_hash)
            key = package.manifest_key if package is not None else None
        if key is None:
            return None
        with self._blobs.open(key) as stream:
            return packages.manifest_from_json(stream.read())

    def _file(self, entry: packages.ManifestEntry) -> bytes:
        with self._blobs.open(content_key(entry.sha256)) as stream:
            return stream.read()

    def build(self, base_hash: str, target_hash: str) -> bool:
        """Build and store the delta from ``base_hash`` to ``target_hash`` content (False: a package is gone).

        Building a pair that is stored already keeps the stored row (two hosts may build the same pair).
        """
        old, new = self._manifest(base_hash), self._manifest(target_hash)
        if old is None or new is None:
            return False
        started = time.perf_counter()
        data = packages.build_delta(old, new, self._file, self._file, transforms=True)
        transformed_key: str | None = None
        transformed_size: int | None = None
        if packages.delta_format(data) != packages.PLAIN_DELTA_FORMAT:
            # Hermes bytecode shrank in its delta form: keep that for engines that read format 2, and
            # build the format-1 delta every engine reads
            transformed_key, transformed_size = self._blobs.put_bytes(data), len(data)
            data = packages.build_delta(old, new, self._file, self._file)
        elapsed = time.perf_counter() - started
        blob_key = self._blobs.put_bytes(data)
        with self._sessions() as session, session.begin():
            session.execute(
                dialect_insert(session)(PackageDelta)
                .values(
                    package_hash=target_hash,
                    base_hash=base_hash,
                    blob_key=blob_key,
                    size=len(data),
                    build_seconds=elapsed,
                    created_at=utcnow(),
                    transformed_blob_key=transformed_key,
                    transformed_size=transformed_size,
                )
                .on_conflict_do_nothing()  # another host built the same pair: its row stands
            )
        log.info(
            "delta %s→%s: %d bytes (transformed: %s) in %.2fs",
            base_hash[:12],
            target_hash[:12],
            len(data),
            transformed_size,
            elapsed,
        )
        return True


def bases_on_request(history: Iterable[Release]) -> frozenset[str]:
    """Package hashes of the last :data:`ON_DEMAND_DEPTH` releases: bases a device may get a delta from."""
    return frozenset(r.package_hash for r in list(history)[-ON_DEMAND_DEPTH:])


def deployments_with(session: Session, package_hash: str) -> list[Deployment]:
    """The deployments with a release of ``package_hash`` content (their answers may now offer a delta)."""
    ids = select(Release.deployment_id).where(Release.package_hash == package_hash).distinct()
    return list(session.scalars(select(Deployment).where(Deployment.id.in_(ids))))
