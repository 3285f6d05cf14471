"""Rehearsals: what simulated devices report, kept apart from the production metrics.

``overair simulate`` launches real update engines against a real deployment, so a rehearsal exercises the
releases, rollout buckets and downloads devices in the field get. Its reports say they come from a simulated
device, and :meth:`overair.metrics.service.MetricsService.record_report` sends those here instead of to
the production write path: that one branch is the whole rule. Nothing that reads production numbers (the
release counters of ``release list`` and the console, failure rates, the hourly series, active devices,
the reach a new rollout announces, Prometheus) reads these tables, so a rehearsal never moves them.

The store is deliberately small, as rehearsals are: per label, report counters (``rehearsal_labels``);
per simulated device, the label it runs (``rehearsal_devices``, by the hash of its client id). Active
devices on a label are counted from the device rows when read. Rehearsal traces never expire by
themselves; :meth:`Rehearsals.clear` removes a deployment's, and removing a deployment removes them too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from overair.audit.log import AuditLog
from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal
from overair.db import dialect_insert, utcnow
from overair.errors import Invalid
from overair.metrics.models import RehearsalDevice, RehearsalLabel
from overair.metrics.rules import failure_rate
from overair.metrics.store import COLUMNS, device_hash, transaction
from overair.releases import repository as repo
from overair.releases.errors import ReleaseNotFound
from overair.releases.models import Deployment, Release
from overair.releases.schemas import ReportStatus

_COUNTERS = tuple(COLUMNS.values())


@dataclass(frozen=True, slots=True)
class RehearsalRelease:
    """One release of a deployment as the simulated devices saw it."""

    label: str
    rollout: int
    disabled: bool
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    active: int
    """Simulated devices running this release now."""
    failure_rate: float
    """failures / (installs + failures) of the simulated devices, by :mod:`overair.metrics.rules`."""


@dataclass(frozen=True, slots=True)
class RehearsalSummary:
    """A deployment's rehearsal traces: every release (oldest first) and the simulated devices on one."""

    app: str
    deployment: str
    devices: int
    """Simulated devices running a release now (those back on their embedded bundle are not counted)."""
    reports: int
    """Reports received from simulated devices, all statuses together."""
    releases: list[RehearsalRelease]


@dataclass(frozen=True, slots=True)
class RehearsalCleared:
    """What removing a deployment's rehearsal traces removed."""

    app: str
    deployment: str
    devices: int
    reports: int


class Rehearsals:
    """Reports of simulated devices in, per-release rehearsal numbers out, and their removal."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        audit: AuditLog | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._audit = audit or AuditLog(clock)

    def record(self, deployment_key: str, label: str, status: str, client_id: str = "") -> None:
        """Count a simulated device's report; place the device on ``label`` (installed, running) or take it
        off (rolled_back), as the production path does for real devices.

        Raises :class:`ReleaseNotFound` for an unknown key or label and :class:`Invalid` for an unknown
        status, as for real devices; nothing is recorded then.
        """
        try:
            report = ReportStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in ReportStatus)
            raise Invalid(f'Unknown report status "{status}": use one of {known}.') from None
        column = COLUMNS[report]
        with transaction(self._sessions) as conn:
            deployment = conn.execute(
                select(Deployment.id, Deployment.name).where(Deployment.key == deployment_key)
            ).first()
            if deployment is None:
                raise ReleaseNotFound("Unknown deployment key: check the key the app is built with.")
            insert = dialect_insert(conn)
            conn.execute(  # first a write: on SQLite the transaction holds the write lock from here on
                insert(RehearsalLabel)
                .values(deployment_id=deployment.id, label=label, **{column: 1})
                .on_conflict_do_update(
                    index_elements=["deployment_id", "label"],
                    set_={column: getattr(RehearsalLabel, column) + 1},
                )
            )
            released = (Release.deployment_id == deployment.id, Release.label == label)
            if conn.scalar(select(Release.id).where(*released)) is None:
                raise ReleaseNotFound(f'Deployment "{deployment.name}" has no release "{label}".')
            if not client_id:
                return
            device = device_hash(client_id)
            if report in (ReportStatus.INSTALLED, ReportStatus.RUNNING):
                now = self._clock()
                conn.execute(
                    insert(RehearsalDevice)
                    .values(deployment_id=deployment.id, device=device, label=label, seen_at=now)
                    .on_conflict_do_update(
                        index_elements=["deployment_id", "device"], set_={"label": label, "seen_at": now}
                    )
                )
            elif report is ReportStatus.ROLLED_BACK:
                conn.execute(
                    delete(RehearsalDevice).where(
                        RehearsalDevice.deployment_id == deployment.id,
                        RehearsalDevice.device == device,
                        RehearsalDevice.label == label,
                    )
                )

    def summary(self, actor: Principal, app: str, deployment: str) -> RehearsalSummary:
        """The rehearsal numbers of every release of the deployment (zeros where no simulated device
        reported), oldest release first."""
        actor.require(Action.READ, app=app, deployment=deployment)
        with self._sessions() as session:
            found = repo.get_deployment(session, repo.get_app(session, app), deployment)
            rows = session.execute(
                select(Release.label, Release.rollout, Release.disabled, RehearsalLabel)
                .outerjoin(
                    RehearsalLabel,
                    (RehearsalLabel.deployment_id == Release.deployment_id)
                    & (RehearsalLabel.label == Release.label),
                )
                .where(Release.deployment_id == found.id)
                .order_by(Release.seq)
            ).all()
            active: dict[str, int] = {
                label: int(count)
                for label, count in session.execute(
                    select(RehearsalDevice.label, func.count())
                    .where(RehearsalDevice.deployment_id == found.id)
                    .group_by(RehearsalDevice.label)
                ).all()
            }
            reports = self._reports(session, found.id)
            app_name = found.app.name
            deployment_name = found.name
        releases = []
        for label, rollout, disabled, counted in rows:
            counts = {c: getattr(counted, c) if counted is not None else 0 for c in _COUNTERS}
            releases.append(
                RehearsalRelease(
                    label=label,
                    rollout=rollout,
                    disabled=disabled,
                    downloads=counts["downloads"],
                    installs=counts["installs"],
                    failures=counts["failures"],
                    rollbacks=counts["rollbacks"],
                    active=active.get(label, 0),
                    failure_rate=failure_rate(installs=counts["installs"], failures=counts["failures"]),
                )
            )
        return RehearsalSummary(app_name, deployment_name, sum(active.values()), reports, releases)

    def clear(self, actor: Principal, app: str, deployment: str) -> RehearsalCleared:
        """Remove every trace simulated devices left on the deployment; production numbers are untouched."""
        actor.require(Action.CHANGE_RELEASES, app=app, deployment=deployment)
        with self._sessions() as session, session.begin():
            found = repo.get_deployment(session, repo.get_app(session, app), deployment)
            devices = session.execute(
                delete(RehearsalDevice).where(RehearsalDevice.deployment_id == found.id)
            ).rowcount  # type: ignore[attr-defined]
            reports = self._reports(session, found.id)
            session.execute(delete(RehearsalLabel).where(RehearsalLabel.deployment_id == found.id))
            self._audit.record(
                session,
                actor,
                AuditAction.REHEARSAL_CLEAR,
                app=found.app.name,
                deployment=found.name,
                before={"devices": int(devices), "reports": reports},
                after={"devices": 0, "reports": 0},
            )
            return RehearsalCleared(found.app.name, found.name, int(devices), reports)

    @staticmethod
    def _reports(session: Session, deployment_id: int) -> int:
        """Every report simulated devices sent to the deployment, all statuses together."""
        sums = [func.coalesce(func.sum(getattr(RehearsalLabel, c)), 0) for c in _COUNTERS]
        found = session.execute(select(*sums).where(RehearsalLabel.deployment_id == deployment_id)).one()
        return sum(int(n) for n in found)
