"""The write path of the metrics store: one device report, one transaction.

Each report is a few statements, each an upsert or update found by primary key (never a range scan), so
the cost of a report does not grow with the fleet or with history:

1. the ``metric_hours`` row of (deployment, hour, label) counts the report;
2. the release's counter goes up (``release list`` shows it); a report for an unknown label is refused;
3. the ``metric_labels`` row counts it in the label's all-time totals (Prometheus counters);
4. for ``installed`` and ``running`` reports with a client id, the device's ``metric_devices`` row says
   which label it runs; when that changes, the old and new labels' gauges move by one and the hour's rows of
   both labels record the gauge (``active`` at the end of the hour, ``active_before`` at its start).

The first statement is a write, so on SQLite the transaction holds the write lock before it reads anything
(no stale-snapshot upgrade failures between workers); on PostgreSQL the device row is locked with
``SELECT … FOR UPDATE`` and first sightings race safely through ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from overair.errors import Invalid
from overair.metrics.models import MetricDevice, MetricHour, MetricLabel
from overair.metrics.store import COLUMNS, device_hash, dialect_insert, hour_of, move_gauge, transaction
from overair.releases import repository as repo
from overair.releases.errors import ReleaseNotFound
from overair.releases.models import LABEL_LENGTH, Deployment
from overair.releases.schemas import ReportStatus


@dataclass(frozen=True)
class DeviceReport:
    """A device's report, addressed by deployment key (what the device protocols receive).

    ``status`` is a :class:`ReportStatus` value. ``reason`` (failure reports) is kept as the label's last
    failure.

    Where the device came from (CodePush's ``DeploymentSucceeded`` says it): ``previous_label``
    (``previousLabelOrAppVersion``) within this deployment is what the device's own row already holds, and
    the row is what the gauges count, so the device leaves that label when it is placed on the new one (the
    field is kept for what the device said, and not read). ``previous_deployment_key``
    (``previousDeploymentKey``, sent when the app switched keys) names another deployment: an ``installed``
    or ``running`` report with a client id takes the device off that deployment's label, as the reference
    server does.
    """

    deployment_key: str
    label: str
    status: str
    client_id: str = ""
    previous_label: str | None = None
    reason: str = ""
    previous_deployment_key: str | None = None
    simulated: bool = False
    """From ``overair simulate`` (``Overair-Simulated: 1``): kept apart (:mod:`overair.metrics.rehearsal`)."""


class ReportRecorder:
    """Device reports in: counters, totals, and which label each device runs."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], dt.datetime]) -> None:
        self._sessions = sessions
        self._clock = clock

    def record_report(self, report: DeviceReport) -> None:
        """Record a device's report (see :class:`DeviceReport`).

        Raises :class:`ReleaseNotFound` for an unknown key or label; nothing is recorded then.
        """
        with transaction(self._sessions) as conn:
            deployment_id = self._deployment_id(conn, report.deployment_key)
            if deployment_id is None:
                raise ReleaseNotFound("Unknown deployment key: check the key the app is built with.")
            moved = self._record(conn, deployment_id, report)
            if moved:
                self._leave_deployment(conn, report.previous_deployment_key, deployment_id, report.client_id)

    @staticmethod
    def _deployment_id(conn: Connection, key: str) -> int | None:
        return conn.scalar(select(Deployment.id).where(Deployment.key == key))

    @staticmethod
    def _no_release(conn: Connection, deployment_id: int, label: str) -> ReleaseNotFound:
        name = conn.scalar(select(Deployment.name).where(Deployment.id == deployment_id))
        if name is None:
            return ReleaseNotFound("Unknown deployment: it may have been removed.")
        shown = label if len(label) <= LABEL_LENGTH else label[:LABEL_LENGTH] + "…"
        return ReleaseNotFound(f'Deployment "{name}" has no release "{shown}".')

    def _record(self, conn: Connection, deployment_id: int, device_report: DeviceReport) -> bool:
        """Count the report; True when it placed a device on its label (installed or running, client id)."""
        label, client_id, reason = device_report.label, device_report.client_id, device_report.reason
        try:
            report = ReportStatus(device_report.status)
        except ValueError:
            known = ", ".join(s.value for s in ReportStatus)
            raise Invalid(f'Unknown report status "{device_report.status}": use one of {known}.') from None
        if len(label) > LABEL_LENGTH:  # no release has it, and PostgreSQL would refuse to store it
            raise self._no_release(conn, deployment_id, label)
        now = self._clock()
        hour = hour_of(now)
        column = COLUMNS[report]
        insert = dialect_insert(conn)
        self._count_hour(conn, insert, deployment_id, hour, label, column)  # first: a write
        if not repo.count_report(conn, deployment_id, label, report):
            raise self._no_release(conn, deployment_id, label)
        failure = {}
        if report is ReportStatus.FAILED and reason:
            failure = {"last_failure": reason[:500], "last_failure_at": now}
        stmt = insert(MetricLabel).values(deployment_id=deployment_id, label=label, **{column: 1}, **failure)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["deployment_id", "label"],
                set_={column: getattr(MetricLabel, column) + 1, **failure},
            )
        )
        if not client_id:
            return False
        device = device_hash(client_id)
        if report in (ReportStatus.INSTALLED, ReportStatus.RUNNING):
            self._move_device(conn, insert, deployment_id, device, label, now)
            return True
        if report is ReportStatus.ROLLED_BACK:
            self._leave_label(conn, insert, deployment_id, device, label, now)
        return False

    def record_binary(
        self, deployment_key: str, client_id: str, *, previous_deployment_key: str | None = None
    ) -> None:
        """A device reports it runs the store binary's own bundle: it no longer counts on any label, here or
        in the deployment it used before (``previous_deployment_key``, when the app switched keys)."""
        if not client_id:
            return
        with transaction(self._sessions) as conn:
            deployment_id = self._deployment_id(conn, deployment_key)
            if deployment_id is None:
                return
            self._forget_device(conn, deployment_id, client_id)
            self._leave_deployment(conn, previous_deployment_key, deployment_id, client_id)

    def _leave_deployment(
        self, conn: Connection, previous_key: str | None, deployment_id: int, client_id: str
    ) -> None:
        """The device now reports with another deployment key: it no longer counts in ``previous_key``'s."""
        if not previous_key:
            return
        previous_id = self._deployment_id(conn, previous_key)
        if previous_id is not None and previous_id != deployment_id:
            self._forget_device(conn, previous_id, client_id)

    def _forget_device(self, conn: Connection, deployment_id: int, client_id: str) -> None:
        """Delete the device's row in a deployment; the label it was counted on loses it."""
        row = conn.execute(
            delete(MetricDevice)
            .where(MetricDevice.deployment_id == deployment_id, MetricDevice.device == device_hash(client_id))
            .returning(MetricDevice.label)
        ).first()
        if row is not None:
            move_gauge(conn, dialect_insert(conn), deployment_id, row.label, -1, hour_of(self._clock()))

    @staticmethod
    def _count_hour(
        conn: Connection, insert: Any, deployment_id: int, hour: dt.datetime, label: str, column: str
    ) -> None:
        stmt = insert(MetricHour).values(deployment_id=deployment_id, hour=hour, label=label, **{column: 1})
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["deployment_id", "hour", "label"],
                set_={column: getattr(MetricHour, column) + 1},
            )
        )

    @staticmethod
    def _locked_device(conn: Connection, deployment_id: int, device: str) -> str | None:
        return conn.scalar(
            select(MetricDevice.label)
            .where(MetricDevice.deployment_id == deployment_id, MetricDevice.device == device)
            .with_for_update()
        )

    def _move_device(
        self, conn: Connection, insert: Any, deployment_id: int, device: str, label: str, now: dt.datetime
    ) -> None:
        where = (MetricDevice.deployment_id == deployment_id, MetricDevice.device == device)
        old = self._locked_device(conn, deployment_id, device)
        if old is None:
            created = conn.execute(
                insert(MetricDevice)
                .values(deployment_id=deployment_id, device=device, label=label, seen_at=now)
                .on_conflict_do_nothing(index_elements=["deployment_id", "device"])
                .returning(MetricDevice.label)
            ).first()
            if created is not None:
                move_gauge(conn, insert, deployment_id, label, +1, hour_of(now))
                return
            old = self._locked_device(conn, deployment_id, device)  # another worker saw it first
            if old is None:
                return
        conn.execute(update(MetricDevice).where(*where).values(label=label, seen_at=now))
        if old != label:
            move_gauge(conn, insert, deployment_id, old, -1, hour_of(now))
            move_gauge(conn, insert, deployment_id, label, +1, hour_of(now))

    @staticmethod
    def _leave_label(
        conn: Connection, insert: Any, deployment_id: int, device: str, label: str, now: dt.datetime
    ) -> None:
        """A device rolled back from ``label``: if it was counted there, it is not any more."""
        row = conn.execute(
            delete(MetricDevice)
            .where(
                MetricDevice.deployment_id == deployment_id,
                MetricDevice.device == device,
                MetricDevice.label == label,
            )
            .returning(MetricDevice.label)
        ).first()
        if row is not None:
            move_gauge(conn, insert, deployment_id, label, -1, hour_of(now))
