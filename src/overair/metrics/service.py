"""The metrics service: records device reports and answers what the console, CLI and Prometheus ask.

A thin facade over the store's three concerns, each in its own module:

- :mod:`overair.metrics.recording`: the write path: reports checked on arrival, then written in batches,
  one transaction per batch (``ReportRecorder``), by the flusher of :mod:`overair.metrics.batching`;
- :mod:`overair.metrics.retention`: old hours and silent devices pruned by an hourly job (``Retention``);
- :mod:`overair.metrics.reading`: series, gauges, counters and failure rates (``MetricsQueries``), the rate
  by the one definition in :mod:`overair.metrics.rules`;
- :mod:`overair.metrics.rehearsal`: what simulated devices report (``Rehearsals``), kept apart.

Simulated devices never count in production numbers, by one rule in one place: :meth:`MetricsService.
record_report` sends a report marked ``simulated`` to the rehearsal store and nowhere else.

Accepted reports wait in memory for at most a second: every read here flushes them first, so whatever
this process accepted is in what it answers.

Callers (device protocols, the management API, the console, the Prometheus collector) hold one
``MetricsService`` built by ``overair.app``; this module re-exports the names they import.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from overair.audit.log import AuditLog
from overair.auth.principal import Action, Principal
from overair.db import utcnow
from overair.metrics.batching import ReportBuffer
from overair.metrics.reading import (
    LATEST_LABELS,
    MAX_HOURS,
    DeploymentTotals,
    LatestRelease,
    MetricsQueries,
)
from overair.metrics.recording import DeviceReport, Pending, ReportRecorder
from overair.metrics.rehearsal import RehearsalCleared, Rehearsals, RehearsalSummary
from overair.metrics.retention import PRUNE_EVERY, Retention, RetentionPolicy
from overair.metrics.rules import ReleaseHealth, failure_rate
from overair.metrics.schemas import DeploymentMetricsOut, HourlyPointOut, LabelMetricsOut
from overair.metrics.store import device_hash, hour_of

__all__ = [
    "LATEST_LABELS",
    "MAX_HOURS",
    "PRUNE_EVERY",
    "DeploymentTotals",
    "DeviceReport",
    "HourlyPointOut",
    "LabelMetricsOut",
    "LatestRelease",
    "MetricsService",
    "RehearsalCleared",
    "RehearsalSummary",
    "ReleaseHealth",
    "RetentionPolicy",
    "device_hash",
    "failure_rate",
    "hour_of",
]


class MetricsService:
    """Device reports in, series, gauges and failure rates out."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        policy: RetentionPolicy = RetentionPolicy(),
        clock: Callable[[], dt.datetime] = utcnow,
        flush_seconds: float = 1.0,
        flush_reports: int = 1000,
        max_pending_reports: int = 100_000,
        audit: AuditLog | None = None,
        after_flush: Callable[[], None] | None = None,
    ) -> None:
        """``after_flush`` is called after each flush that wrote reports (work that reads them, queued)."""
        self._clock = clock
        self._recorder = ReportRecorder(sessions, clock)
        self._retention = Retention(sessions, policy, clock)
        self._reports: ReportBuffer[Pending] = ReportBuffer(
            self._recorder.apply,
            interval=flush_seconds,
            batch_size=flush_reports,
            max_pending=max_pending_reports,
            after_flush=after_flush,
        )
        self._queries = MetricsQueries(sessions, clock=clock)
        self._rehearsals = Rehearsals(sessions, clock=clock, audit=audit)

    # -- settings and life cycle --------------------------------------------------------------------

    @property
    def policy(self) -> RetentionPolicy:
        """How long hourly rows are kept and devices count as active; a new one applies at the next prune."""
        return self._retention.policy

    @policy.setter
    def policy(self, policy: RetentionPolicy) -> None:
        self._retention.policy = policy

    def close(self, timeout: float = 10.0) -> None:
        """Write the reports waiting (trying for at most ``timeout`` seconds) and stop the flusher."""
        self._reports.close(timeout)

    def flush(self) -> int:
        """Write the accepted reports now (reads do it first); how many were written.

        Raises the database's error when it cannot be reached (the reports stay queued)."""
        return self._reports.flush()

    @property
    def pending_reports(self) -> int:
        """Accepted reports not written yet."""
        return self._reports.pending

    @property
    def dropped_reports(self) -> int:
        """Accepted reports dropped because too many waited while the database was unreachable."""
        return self._reports.dropped

    # -- writing ------------------------------------------------------------------------------------

    def record_report(self, report: DeviceReport) -> None:
        """Accept a device's report (see :class:`DeviceReport`); the next flush writes it.

        Raises :class:`~overair.releases.errors.ReleaseNotFound` for an unknown key or label and
        :class:`~overair.errors.Invalid` for an unknown status; nothing is recorded then.

        ``simulated``: the report comes from a simulated device (a rehearsal). It is counted in the
        rehearsal store only (:mod:`overair.metrics.rehearsal`), never in a production number: this is the
        one place that decides it.
        """
        if report.simulated:
            self._rehearsals.record(report.deployment_key, report.label, report.status, report.client_id)
            return
        self._reports.add(self._recorder.check(report))

    def accept_report(self, report: DeviceReport) -> bool:
        """Accept a device's report if that needs no database read (its release is known in memory): the
        report routes call it on the event loop, and :meth:`record_report` on a thread when it says False
        (also for a simulated device's report, written at once)."""
        if report.simulated:
            return False
        pending = self._recorder.check_cached(report)
        if pending is None:
            return False
        self._reports.add(pending)
        return True

    def record_touch(self, deployment_key: str, client_id: str, label: str) -> None:
        """An update check said the device runs ``label``: if it counts on that label, it was seen now (so
        it is not expired as silent). Nothing is counted and no device is placed. The next flush writes it."""
        if client_id:
            self._reports.add(self._recorder.touch(deployment_key, client_id, label))

    def record_binary(
        self, deployment_key: str, client_id: str, *, previous_deployment_key: str | None = None
    ) -> None:
        """A device reports it runs the store binary's own bundle: it no longer counts on any label, here
        or in ``previous_deployment_key``'s deployment (an unknown key is ignored). The next flush writes
        it."""
        if client_id:
            self._reports.add(self._recorder.binary(deployment_key, client_id, previous_deployment_key))

    # -- rehearsals (simulated devices) -------------------------------------------------------------

    def rehearsal(self, actor: Principal, app: str, deployment: str) -> RehearsalSummary:
        """What simulated devices reported on each release of the deployment, and where they run now."""
        return self._rehearsals.summary(actor, app, deployment)

    def clear_rehearsal(self, actor: Principal, app: str, deployment: str) -> RehearsalCleared:
        """Remove every trace simulated devices left on the deployment (production numbers untouched)."""
        return self._rehearsals.clear(actor, app, deployment)

    # -- retention ----------------------------------------------------------------------------------

    def prune(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Drop old hours and expire silent devices now: (hourly rows deleted, devices expired)."""
        self._reports.flush()
        return self._retention.prune(now)

    # -- reading ------------------------------------------------------------------------------------

    def deployment_metrics(
        self, actor: Principal, app: str, deployment: str, hours: int = 48
    ) -> DeploymentMetricsOut:
        """Reports per label and hour, active devices per label over time and now, and failure rates, for
        a principal who may read the deployment."""
        actor.require(Action.READ, app=app, deployment=deployment)
        labels = self.labels(app, deployment)
        return DeploymentMetricsOut(
            app=app,
            deployment=deployment,
            hours=hours,
            series=self.series(app, deployment, hours),
            active_devices=self.active_devices(app, deployment),
            failure_rates={s.label: s.failure_rate for s in labels},
            labels=labels,
        )

    def series(
        self, app: str, deployment: str, hours: int = 48, now: dt.datetime | None = None
    ) -> list[HourlyPointOut]:
        """The last ``hours`` hours (1 to 2160) of a deployment, oldest first, one point per label."""
        self._reports.flush()
        return self._queries.series(app, deployment, hours, now)

    def active_devices(self, app: str, deployment: str) -> dict[str, int]:
        """Label → devices active on it now (labels with none are left out)."""
        self._reports.flush()
        return self._queries.active_devices(app, deployment)

    def labels(self, app: str, deployment: str) -> list[LabelMetricsOut]:
        """Every release of the deployment, oldest first, with its counters, rate and active devices now."""
        self._reports.flush()
        return self._queries.labels(app, deployment)

    def failure_rates(self, app: str, deployment: str) -> dict[str, float]:
        """Label → failures / (installs + failures) (0.0 before any attempt), for every release."""
        self._reports.flush()
        return self._queries.failure_rates(app, deployment)

    def health(self, app: str, deployment: str) -> dict[str, ReleaseHealth]:
        """Label → its failures and install attempts, the inputs of its failure rate."""
        self._reports.flush()
        return self._queries.health(app, deployment)

    def last_failures(self, app: str, deployment: str) -> dict[str, tuple[str, dt.datetime | None]]:
        """Label → (the reason its last failure report gave, when), for labels with a reported reason."""
        self._reports.flush()
        return self._queries.last_failures(app, deployment)

    # -- Prometheus ---------------------------------------------------------------------------------

    def totals(self) -> list[DeploymentTotals]:
        """Every deployment's all-time report totals and active devices (one grouped query)."""
        self._reports.flush()
        return self._queries.totals()

    def latest_releases(self, per_deployment: int = LATEST_LABELS) -> list[LatestRelease]:
        """The newest ``per_deployment`` releases of every deployment with active devices and failure rate."""
        self._reports.flush()
        return self._queries.latest_releases(per_deployment)
