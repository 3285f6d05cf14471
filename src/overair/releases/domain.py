"""The release domain's services, built together over one database and one blob store.

Each service is small and owns one part of the domain; they share a :class:`~overair.releases.unit.Changes`
(transactions and change listeners), a :class:`~overair.releases.content.ContentStore` and the builders of
smaller downloads, which run as jobs of the shared queue. ``overair.app`` builds one of these; surfaces take
the services they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from overair import packages
from overair.audit.log import AuditLog
from overair.db import Clock, utcnow
from overair.jobs import Worker
from overair.releases import deltas
from overair.releases.apps import AppService
from overair.releases.binaries import BinaryService
from overair.releases.content import ContentStore
from overair.releases.deployments import DeploymentService
from overair.releases.diffs import SmallerDownloads
from overair.releases.ramps import GuardedRollouts
from overair.releases.service import ReleaseService
from overair.releases.signing import SigningKeyService
from overair.releases.snapshots import DeviceSnapshots
from overair.releases.team import TeamService
from overair.releases.unit import Changes
from overair.storage import BlobStore


@dataclass(frozen=True, slots=True)
class ReleaseDomain:
    """Apps, deployments, binaries, signing keys, releases, device snapshots, smaller downloads and who works
    on each app."""

    apps: AppService
    deployments: DeploymentService
    binaries: BinaryService
    signing_keys: SigningKeyService
    releases: ReleaseService
    snapshots: DeviceSnapshots
    downloads: SmallerDownloads
    team: TeamService
    rollouts: GuardedRollouts

    @classmethod
    def open(
        cls,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        limits: packages.Limits | None = None,
        delta_min_saving: float = deltas.DEFAULT_MIN_SAVING,
        scratch: Path | None = None,
        *,
        jobs: Worker,
        audit: AuditLog | None = None,
        clock: Clock = utcnow,
    ) -> ReleaseDomain:
        """Build every service over ``sessions`` and ``blobs``; temporary files go to ``scratch``; diff
        archives and deltas are built by ``jobs`` (whose handlers this registers); every change is recorded
        in ``audit``; guarded rollouts read the time from ``clock``."""
        changes = Changes(sessions, audit)
        content = ContentStore(blobs, limits or packages.Limits(), scratch)
        downloads = SmallerDownloads(changes, content, jobs)
        releases = ReleaseService(changes, content, downloads, delta_min_saving, clock)
        return cls(
            apps=AppService(changes),
            deployments=DeploymentService(changes),
            binaries=BinaryService(changes),
            signing_keys=SigningKeyService(changes),
            releases=releases,
            snapshots=DeviceSnapshots(changes, delta_min_saving),
            downloads=downloads,
            team=TeamService(changes),
            rollouts=GuardedRollouts(changes, releases, clock),
        )

    def drain(self, timeout: float | None = None) -> None:
        """Run and wait for the background work that is due (diff archives, binary deltas; tests)."""
        self.downloads.drain(timeout)
