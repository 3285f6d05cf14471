"""The metrics service: records device reports and answers what the console, CLI and Prometheus ask.

Writing: each report is one transaction of a few statements, each an upsert or update found by primary key
(never a range scan), so the cost of a report does not grow with the fleet or with history:

1. the ``metric_hours`` row of (deployment, hour, label) counts the report;
2. the release's counter goes up (``release list`` shows it); a report for an unknown label is refused;
3. the ``metric_labels`` row counts it in the label's all-time totals (Prometheus counters);
4. for ``installed`` and ``running`` reports with a client id, the device's ``metric_devices`` row says
   which label it runs; when that changes, the old and new labels' gauges move by one and the hour's rows of
   both labels record the gauge (``active`` at the end of the hour, ``active_before`` at its start).

The first statement is a write, so on SQLite the transaction holds the write lock before it reads anything
(no stale-snapshot upgrade failures between workers); on PostgreSQL the device row is locked with
``SELECT … FOR UPDATE`` and first sightings race safely through ``ON CONFLICT DO NOTHING``.

Reading: the series of a deployment is one range read of its hourly rows, plus the current gauges;
gauges are carried forward (and backward, from ``active_before``) across hours without rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from overair.db import utcnow
from overair.errors import Invalid
from overair.metrics.models import MetricDevice, MetricHour, MetricLabel
from overair.releases import repository as repo
from overair.releases.errors import ReleaseNotFound
from overair.releases.models import App, Deployment, Release
from overair.releases.schemas import ReportStatus

log = logging.getLogger("overair")

MAX_HOURS = 24 * 90
"""The longest series a caller may ask for: 90 days of hours."""

LATEST_LABELS = 3
"""Per-label Prometheus series exist for this many newest releases of each deployment."""

PRUNE_EVERY = dt.timedelta(hours=1)

_COLUMN = {
    ReportStatus.DOWNLOADED: "downloads",
    ReportStatus.INSTALLED: "installs",
    ReportStatus.FAILED: "failures",
    ReportStatus.ROLLED_BACK: "rollbacks",
    ReportStatus.RUNNING: "running",
}
_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class HourlyPoint:
    """One label of a deployment in one hour: reports received and active devices."""

    hour: dt.datetime
    """UTC, truncated to the hour."""
    label: str
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    active: int
    """Active devices on this label at the end of that hour."""
    running: int = 0
    """App starts reported on this label in that hour (at most one a day per device)."""


@dataclass(frozen=True)
class LabelSummary:
    """A release of a deployment with its all-time counters and active devices now."""

    label: str
    target_version: str
    rollout: int
    disabled: bool
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    active: int
    failure_rate: float
    last_failure: str | None = None
    last_failure_at: dt.datetime | None = None


@dataclass(frozen=True)
class DeploymentTotals:
    """All-time report totals and active devices of one deployment (Prometheus)."""

    app: str
    deployment: str
    reports: dict[str, int]
    active: int


@dataclass(frozen=True)
class LatestRelease:
    """One of the newest releases of a deployment (Prometheus per-label series)."""

    app: str
    deployment: str
    label: str
    rollout: int
    active: int
    failure_rate: float


def hour_of(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, truncated to the hour."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def device_hash(client_id: str) -> str:
    """What the store keeps of a client id: 128 bits of its SHA-256, so the id itself is never stored."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


def failure_rate(installs: int, failures: int) -> float:
    """failures / (installs + failures); 0 when nothing was reported."""
    return failures / max(installs + failures, 1)


def _label_key(label: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(label))


def _insert(conn: Connection) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` (SQLite and PostgreSQL spell it the same)."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    raise RuntimeError(f"the metrics store supports SQLite and PostgreSQL, not {name}")


class MetricsService:
    """Device reports in, series, gauges and failure rates out."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        retention_days: int = 90,
        active_days: int = 30,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.retention_days = retention_days
        self.active_days = active_days
        self._clock = clock
        self._next_prune: dt.datetime | None = None
        self._prune_lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overair-metrics")
        self._pruning: Future[None] | None = None

    def close(self) -> None:
        """Finish a running prune and stop the background thread."""
        self._background.shutdown(wait=True)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        # Core statements on the session's connection: the ORM's per-statement bookkeeping would cost
        # more than the statements themselves on the report path.
        with self._sessions() as session, session.begin():
            yield session.connection()

    # -- writing ------------------------------------------------------------------------------------

    def record_report(
        self,
        deployment_key: str,
        label: str,
        status: str,
        client_id: str = "",
        previous_label: str | None = None,
        reason: str = "",
    ) -> None:
        """Record a device's report addressed by deployment key (what the device protocols receive).

        ``reason`` (failure reports) is kept as the label's last failure. Raises :class:`ReleaseNotFound`
        for an unknown key or label; nothing is recorded then.
        """
        with self._transaction() as conn:
            deployment_id = conn.scalar(select(Deployment.id).where(Deployment.key == deployment_key))
            if deployment_id is None:
                raise ReleaseNotFound("Unknown deployment key: check the key the app is built with.")
            self._record(conn, deployment_id, label, status, client_id, reason)
        self._maybe_prune(self._clock())  # after the commit: the prune waits for no lock of ours

    def _record(
        self, conn: Connection, deployment_id: int, label: str, status: str, client_id: str, reason: str = ""
    ) -> None:
        try:
            report = ReportStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in ReportStatus)
            raise Invalid(f'Unknown report status "{status}": use one of {known}.') from None
        now = self._clock()
        hour = hour_of(now)
        column = _COLUMN[report]
        insert = _insert(conn)
        self._count_hour(conn, insert, deployment_id, hour, label, column)  # first: a write
        if not repo.count_report(conn, deployment_id, label, report):
            name = conn.scalar(select(Deployment.name).where(Deployment.id == deployment_id))
            if name is None:
                raise ReleaseNotFound("Unknown deployment: it may have been removed.")
            raise ReleaseNotFound(f'Deployment "{name}" has no release "{label}".')
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
        if client_id:
            device = device_hash(client_id)
            if report in (ReportStatus.INSTALLED, ReportStatus.RUNNING):
                self._move_device(conn, insert, deployment_id, device, label, now)
            elif report is ReportStatus.ROLLED_BACK:
                self._leave_label(conn, insert, deployment_id, device, label, now)

    def record_binary(self, deployment_key: str, client_id: str) -> None:
        """A device reports it runs the store binary's own bundle: it no longer counts on any label."""
        if not client_id:
            return
        now = self._clock()
        with self._transaction() as conn:
            deployment_id = conn.scalar(select(Deployment.id).where(Deployment.key == deployment_key))
            if deployment_id is None:
                return
            insert = _insert(conn)
            device = device_hash(client_id)
            row = conn.execute(
                delete(MetricDevice)
                .where(MetricDevice.deployment_id == deployment_id, MetricDevice.device == device)
                .returning(MetricDevice.label)
            ).first()
            if row is not None:
                self._move_gauge(conn, insert, deployment_id, row.label, -1, hour_of(now))

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
    def _move_gauge(
        conn: Connection, insert: Any, deployment_id: int, label: str, delta: int, hour: dt.datetime
    ) -> None:
        """Move a label's active gauge by ``delta`` and record the new value in the hour's row."""
        stmt = insert(MetricLabel).values(deployment_id=deployment_id, label=label, active=max(delta, 0))
        active = conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["deployment_id", "label"], set_={"active": MetricLabel.active + delta}
            ).returning(MetricLabel.active)
        ).scalar_one()
        stmt = insert(MetricHour).values(
            deployment_id=deployment_id, hour=hour, label=label, active=active, active_before=active - delta
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["deployment_id", "hour", "label"],
                set_={
                    "active": stmt.excluded.active,
                    "active_before": func.coalesce(MetricHour.active_before, stmt.excluded.active_before),
                },
            )
        )

    def _locked_device(self, conn: Connection, deployment_id: int, device: str) -> str | None:
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
                self._move_gauge(conn, insert, deployment_id, label, +1, hour_of(now))
                return
            old = self._locked_device(conn, deployment_id, device)  # another worker saw it first
            if old is None:
                return
        conn.execute(update(MetricDevice).where(*where).values(label=label, seen_at=now))
        if old != label:
            self._move_gauge(conn, insert, deployment_id, old, -1, hour_of(now))
            self._move_gauge(conn, insert, deployment_id, label, +1, hour_of(now))

    def _leave_label(
        self, conn: Connection, insert: Any, deployment_id: int, device: str, label: str, now: dt.datetime
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
            self._move_gauge(conn, insert, deployment_id, label, -1, hour_of(now))

    # -- retention ----------------------------------------------------------------------------------

    def _maybe_prune(self, now: dt.datetime) -> None:
        """At most once an hour per process, prune in the background (never on the report's time)."""
        with self._prune_lock:
            if self._next_prune is not None and now < self._next_prune:
                return
            if self._pruning is not None and not self._pruning.done():
                return
            self._next_prune = now + PRUNE_EVERY
            try:
                self._pruning = self._background.submit(self._prune_safely)
            except RuntimeError:  # shutting down
                self._pruning = None

    def _prune_safely(self) -> None:
        try:
            self.prune()
        except Exception:
            log.exception("pruning the metrics store failed; it is tried again in an hour")

    def wait_for_prune(self, timeout: float | None = None) -> None:
        """Wait until a background prune that is running has finished."""
        pruning = self._pruning
        if pruning is not None:
            pruning.result(timeout)

    def prune(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Drop hourly rows older than the retention and expire devices silent for ``active_days``.

        ``retention_days`` 0 keeps every hour; ``active_days`` 0 never expires devices.

        Returns (hourly rows deleted, devices expired). Expired devices leave their label's gauge, as if
        they had moved away. Idempotent and safe to run from several workers at once: each device is
        subtracted only by the transaction that deleted its row.
        """
        now = now or self._clock()
        deleted_hours = 0
        with self._transaction() as conn:
            insert = _insert(conn)
            expired: list[Any] = []
            if self.active_days > 0:
                expired = list(
                    conn.execute(
                        delete(MetricDevice)
                        .where(MetricDevice.seen_at < now - dt.timedelta(days=self.active_days))
                        .returning(MetricDevice.deployment_id, MetricDevice.label)
                    ).all()
                )
            for (deployment_id, label), count in Counter((r[0], r[1]) for r in expired).items():
                self._move_gauge(conn, insert, deployment_id, label, -count, hour_of(now))
            if self.retention_days > 0:
                cutoff = hour_of(now) - dt.timedelta(days=self.retention_days)
                result = conn.execute(delete(MetricHour).where(MetricHour.hour < cutoff))
                deleted_hours = int(result.rowcount)
        return deleted_hours, len(expired)

    # -- reading ------------------------------------------------------------------------------------

    def _deployment_id(self, session: Session, app: str, deployment: str) -> int:
        return repo.get_deployment(session, repo.get_app(session, app), deployment).id

    def series(
        self, app: str, deployment: str, hours: int = 48, now: dt.datetime | None = None
    ) -> list[HourlyPoint]:
        """The last ``hours`` hours (1 to 2160, the current one included) of a deployment, oldest first.

        One point per (hour, label) with reports that hour or active devices at its end; labels in their
        natural order (v2 before v10) within an hour.
        """
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS:
            raise Invalid(f"hours must be a whole number from 1 to {MAX_HOURS} (90 days); got {hours!r}.")
        end = hour_of(now or self._clock())
        start = end - dt.timedelta(hours=hours - 1)
        with self._sessions() as session:
            deployment_id = self._deployment_id(session, app, deployment)
            rows = session.scalars(
                select(MetricHour)
                .where(MetricHour.deployment_id == deployment_id, MetricHour.hour >= start)
                .order_by(MetricHour.hour)
            ).all()
            gauges = dict(
                session.execute(
                    select(MetricLabel.label, MetricLabel.active).where(
                        MetricLabel.deployment_id == deployment_id
                    )
                ).all()
            )
        in_window = {(r.hour, r.label): r for r in rows if r.hour <= end}
        snapshots: dict[str, list[MetricHour]] = defaultdict(list)
        for row in rows:
            if row.active is not None:
                snapshots[row.label].append(row)  # ordered by hour
        labels = {label for label, active in gauges.items() if active > 0}
        labels |= {label for _, label in in_window} | set(snapshots)
        points: list[HourlyPoint] = []
        for label in sorted(labels, key=_label_key):
            marks = snapshots.get(label, [])
            index = 0
            # the gauge before the window: the first snapshot's start, or (no change since) the gauge now
            value = marks[0].active_before if marks else gauges.get(label, 0)
            hour = start
            while hour <= end:
                while index < len(marks) and marks[index].hour <= hour:
                    value = marks[index].active
                    index += 1
                active = value or 0
                found = in_window.get((hour, label))
                if found is not None or active > 0:
                    points.append(
                        HourlyPoint(
                            hour=hour,
                            label=label,
                            downloads=found.downloads if found else 0,
                            installs=found.installs if found else 0,
                            failures=found.failures if found else 0,
                            rollbacks=found.rollbacks if found else 0,
                            active=active,
                            running=found.running if found else 0,
                        )
                    )
                hour += dt.timedelta(hours=1)
        points.sort(key=lambda p: (p.hour, _label_key(p.label)))
        return points

    def active_devices(self, app: str, deployment: str) -> dict[str, int]:
        """Label → devices active on it now (labels with none are left out)."""
        with self._sessions() as session:
            deployment_id = self._deployment_id(session, app, deployment)
            rows = session.execute(
                select(MetricLabel.label, MetricLabel.active).where(
                    MetricLabel.deployment_id == deployment_id, MetricLabel.active > 0
                )
            ).all()
            return dict(sorted(rows, key=lambda r: _label_key(r[0])))

    def failure_rates(self, app: str, deployment: str) -> dict[str, float]:
        """Label → failures / max(installs + failures, 1), for every release of the deployment."""
        return {s.label: s.failure_rate for s in self.labels(app, deployment)}

    def last_failures(self, app: str, deployment: str) -> dict[str, tuple[str, dt.datetime | None]]:
        """Label → (the reason its last failure report gave, when), for labels with a reported reason."""
        return {
            s.label: (s.last_failure, s.last_failure_at)
            for s in self.labels(app, deployment)
            if s.last_failure
        }

    def labels(self, app: str, deployment: str) -> list[LabelSummary]:
        """Every release of the deployment, oldest first, with its counters and active devices now."""
        with self._sessions() as session:
            deployment_id = self._deployment_id(session, app, deployment)
            rows = session.execute(
                select(Release, MetricLabel.active, MetricLabel.last_failure, MetricLabel.last_failure_at)
                .outerjoin(
                    MetricLabel,
                    (MetricLabel.deployment_id == Release.deployment_id)
                    & (MetricLabel.label == Release.label),
                )
                .where(Release.deployment_id == deployment_id)
                .order_by(Release.seq)
            ).all()
            return [
                LabelSummary(
                    label=r.label,
                    target_version=r.target_version,
                    rollout=r.rollout,
                    disabled=r.disabled,
                    downloads=r.downloads,
                    installs=r.installs,
                    failures=r.failures,
                    rollbacks=r.rollbacks,
                    active=active or 0,
                    failure_rate=failure_rate(r.installs, r.failures),
                    last_failure=last_failure,
                    last_failure_at=last_failure_at,
                )
                for r, active, last_failure, last_failure_at in rows
            ]

    # -- Prometheus ---------------------------------------------------------------------------------

    def totals(self) -> list[DeploymentTotals]:
        """Every deployment's all-time report totals and active devices (one grouped query)."""
        columns = [getattr(MetricLabel, c) for c in _COLUMN.values()]
        with self._sessions() as session:
            rows = session.execute(
                select(
                    App.name,
                    Deployment.name,
                    func.coalesce(func.sum(MetricLabel.active), 0),
                    *[func.coalesce(func.sum(c), 0) for c in columns],
                )
                .join(App, App.id == Deployment.app_id)
                .outerjoin(MetricLabel, MetricLabel.deployment_id == Deployment.id)
                .group_by(Deployment.id, App.name, Deployment.name)
                .order_by(App.name, Deployment.name)
            ).all()
        statuses = [s.value for s in _COLUMN]
        return [
            DeploymentTotals(
                app=row[0],
                deployment=row[1],
                active=int(row[2]),
                reports={s: int(v) for s, v in zip(statuses, row[3:], strict=True)},
            )
            for row in rows
        ]

    def latest_releases(self, per_deployment: int = LATEST_LABELS) -> list[LatestRelease]:
        """The newest ``per_deployment`` releases of every deployment with active devices and failure rate."""
        ranked = select(
            Release.deployment_id,
            Release.label,
            Release.rollout,
            Release.installs,
            Release.failures,
            func.row_number()
            .over(partition_by=Release.deployment_id, order_by=Release.seq.desc())
            .label("rank"),
        ).subquery()
        with self._sessions() as session:
            rows = session.execute(
                select(
                    App.name,
                    Deployment.name,
                    ranked.c.label,
                    ranked.c.rollout,
                    ranked.c.installs,
                    ranked.c.failures,
                    func.coalesce(MetricLabel.active, 0),
                )
                .join(Deployment, Deployment.id == ranked.c.deployment_id)
                .join(App, App.id == Deployment.app_id)
                .outerjoin(
                    MetricLabel,
                    (MetricLabel.deployment_id == ranked.c.deployment_id)
                    & (MetricLabel.label == ranked.c.label),
                )
                .where(ranked.c.rank <= per_deployment)
                .order_by(App.name, Deployment.name, ranked.c.rank)
            ).all()
        return [
            LatestRelease(
                app=row[0],
                deployment=row[1],
                label=row[2],
                rollout=row[3],
                active=int(row[6]),
                failure_rate=failure_rate(row[4], row[5]),
            )
            for row in rows
        ]
