"""The read path of the metrics store: hourly series, active devices, per-release counters and rates, and
the fleet-wide numbers Prometheus scrapes.

The series of a deployment is one range read of its hourly rows, plus the current gauges; gauges are
carried forward (and backward, from ``active_before``) across hours without rows. Failure rates follow the
one definition of :mod:`overair.metrics.rules`, on the release counters.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from overair.db import utcnow
from overair.errors import Invalid
from overair.metrics.models import MetricHour, MetricLabel
from overair.metrics.rules import ReleaseHealth, failure_rate
from overair.metrics.schemas import HourlyPointOut, LabelMetricsOut
from overair.metrics.store import COLUMNS, hour_of, label_key
from overair.releases import repository as repo
from overair.releases.models import App, Deployment, Release

MAX_HOURS = 24 * 90
"""The longest series a caller may ask for: 90 days of hours."""

LATEST_LABELS = 3
"""Per-label Prometheus series exist for this many newest releases of each deployment."""


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


_FROM_RELEASE = (
    "label",
    "target_version",
    "rollout",
    "disabled",
    "downloads",
    "installs",
    "failures",
    "rollbacks",
)
"""The fields of :class:`LabelMetricsOut` read from the release's row under the same names."""


class MetricsQueries:
    """Series, gauges, counters and failure rates out."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def _deployment_id(self, session: Session, app: str, deployment: str) -> int:
        return repo.get_deployment(session, repo.get_app(session, app), deployment).id

    def series(
        self, app: str, deployment: str, hours: int = 48, now: dt.datetime | None = None
    ) -> list[HourlyPointOut]:
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
        points: list[HourlyPointOut] = []
        for label in sorted(labels, key=label_key):
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
                        HourlyPointOut(
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
        points.sort(key=lambda p: (p.hour, label_key(p.label)))
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
            return dict(sorted(rows, key=lambda r: label_key(r[0])))

    def failure_rates(self, app: str, deployment: str) -> dict[str, float]:
        """Label → failures / (installs + failures) (0.0 before any attempt), for every release."""
        return {s.label: s.failure_rate for s in self.labels(app, deployment)}

    def health(self, app: str, deployment: str) -> dict[str, ReleaseHealth]:
        """Label → its failures and install attempts, for every release (the failure rate's inputs)."""
        return {s.label: s.health for s in self.labels(app, deployment)}

    def last_failures(self, app: str, deployment: str) -> dict[str, tuple[str, dt.datetime | None]]:
        """Label → (the reason its last failure report gave, when), for labels with a reported reason."""
        return {
            s.label: (s.last_failure, s.last_failure_at)
            for s in self.labels(app, deployment)
            if s.last_failure
        }

    def labels(self, app: str, deployment: str) -> list[LabelMetricsOut]:
        """Every release of the deployment, oldest first, with its counters and active devices now."""
        with self._sessions() as session:
            deployment_id = self._deployment_id(session, app, deployment)
            rows = session.execute(
                select(
                    *(getattr(Release, name) for name in _FROM_RELEASE),
                    func.coalesce(MetricLabel.active, 0).label("active"),
                    MetricLabel.last_failure,
                    MetricLabel.last_failure_at,
                )
                .outerjoin(
                    MetricLabel,
                    (MetricLabel.deployment_id == Release.deployment_id)
                    & (MetricLabel.label == Release.label),
                )
                .where(Release.deployment_id == deployment_id)
                .order_by(Release.seq)
            ).mappings()
            return [
                LabelMetricsOut(
                    **row, failure_rate=failure_rate(installs=row["installs"], failures=row["failures"])
                )
                for row in rows
            ]

    def totals(self) -> list[DeploymentTotals]:
        """Every deployment's all-time report totals and active devices (one grouped query)."""
        columns = [getattr(MetricLabel, c) for c in COLUMNS.values()]
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
        statuses = [s.value for s in COLUMNS]
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
                failure_rate=failure_rate(installs=row[4], failures=row[5]),
            )
            for row in rows
        ]
