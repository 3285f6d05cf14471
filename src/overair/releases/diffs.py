"""Smaller downloads, built in the background after every release: CodePush diff archives here, overair
binary deltas in :mod:`overair.releases.deltas`. Both start from the same earlier releases
(:func:`overair.releases.rules.download_bases`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair import packages
from overair.db import dialect_insert, utcnow
from overair.jobs import Worker
from overair.releases import deltas, rules
from overair.releases import repository as repo
from overair.releases.content import ContentStore
from overair.releases.models import Deployment, PackageDiff
from overair.releases.unit import Changes, touch
from overair.storage import content_key

DIFFS_JOB = "diffs.release"
"""Job: build the CodePush diff archives to a new release (key: the release id)."""


class SmallerDownloads:
    """Schedules and builds diff archives and binary deltas off the request path, as jobs of the queue
    every host shares (:mod:`overair.jobs`)."""

    def __init__(self, changes: Changes, content: ContentStore, jobs: Worker) -> None:
        self._changes = changes
        self._content = content
        self._jobs = jobs
        self.deltas = deltas.DeltaBuilder(
            changes.sessions, content.blobs, content.limits, self._delta_built, jobs
        )
        jobs.handle(DIFFS_JOB, lambda payload: self._build_diffs(int(payload["release_id"])))

    def after_release(self, release_id: int, session: Session) -> None:
        """Queue the diffs and deltas to a new release in the transaction of ``session`` that makes it
        (never waits for them)."""
        self.deltas.after_release(release_id, session)
        self._jobs.enqueue(DIFFS_JOB, str(release_id), {"release_id": release_id}, session=session)

    def request_delta(self, base_hash: str, target_hash: str) -> bool:
        """Ask for a delta a device on ``base_hash`` could use next time; never waits (see deltas.py)."""
        return self.deltas.request(base_hash, target_hash)

    def drain(self, timeout: float | None = None) -> None:
        """Run and wait for the queued work that is due (tests; see :meth:`overair.jobs.Worker.drain`)."""
        self._jobs.drain(timeout)

    def _delta_built(self, target_hash: str) -> None:
        with self._changes.transaction() as (session, changed):
            for deployment in deltas.deployments_with(session, target_hash):
                touch(session, deployment, changed)

    def _build_diffs(self, release_id: int) -> None:
        self.build_diffs(release_id)

    def build_diffs(self, release_id: int) -> int:
        """Build CodePush diff archives to a release from its download bases; how many archives it made."""
        with self._changes.sessions() as session:
            found = repo.with_history(session, release_id)
            if found is None:
                return 0
            release, history = found
            deployment = session.get(Deployment, release.deployment_id)
            if deployment is None:  # removed since the release was read (PostgreSQL reads committed rows)
                return 0
            by_hash = {r.package_hash: r.package.manifest_key for r in history}
            bases = rules.download_bases(history, release)
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
        todo = {h: by_hash[h] for h in bases if h not in done}
        if not todo:
            return 0
        new_manifest = self._content.manifest(target_manifest_key)
        if any(e.is_directory for e in new_manifest):
            # Clients verify a diff by hashing the files they end up with; a package whose hash counts
            # folder entries (as the reference server's does) can never verify, so it gets no diffs.
            return 0
        made = []
        for base_hash, manifest_key in todo.items():
            old_manifest = self._content.manifest(manifest_key)
            if any(e.is_directory for e in old_manifest):
                continue
            plan = packages.plan_diff(old_manifest, new_manifest)
            if plan is None:
                continue
            with tempfile.TemporaryDirectory(prefix="overair-diff-", dir=self._content.scratch) as folder:
                archive = Path(folder) / "diff.zip"
                packages.write_diff_archive(
                    plan, archive, lambda entry: self._content.blobs.open(content_key(entry.sha256))
                )
                made.append(
                    PackageDiff(
                        package_hash=target_hash,
                        base_hash=base_hash,
                        blob_key=self._content.blobs.put_file(archive),
                        size=archive.stat().st_size,
                    )
                )
        if made:
            with self._changes.transaction() as (session, changed):
                for diff in made:  # another host may have built the same pair: its row stands
                    session.execute(
                        dialect_insert(session)(PackageDiff)
                        .values(
                            package_hash=diff.package_hash,
                            base_hash=diff.base_hash,
                            blob_key=diff.blob_key,
                            size=diff.size,
                            created_at=utcnow(),
                        )
                        .on_conflict_do_nothing()
                    )
                deployment_row = repo.deployment_by_key(session, key)
                if deployment_row is not None:
                    touch(session, deployment_row, changed)
        return len(made)
