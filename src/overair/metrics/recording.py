"""The write path of the metrics store: device reports, accepted one by one, applied in batches.

A report is checked when it arrives (:meth:`ReportRecorder.check`: its status, its deployment key and
label, from a small cache of known releases that reads the database only on a miss) and then waits in
memory (:mod:`overair.metrics.batching`). :meth:`ReportRecorder.apply` writes a batch in one transaction,
with as many statements as there are distinct rows to change, not as there are reports:

1. per (deployment, hour, label) one upsert adds the batch's counts to the ``metric_hours`` row;
2. per release one UPDATE adds them to the release's counters (``release list`` shows them); a report for a
   release removed since it was accepted is not counted;
3. per (deployment, label) one upsert adds them to the ``metric_labels`` all-time totals and keeps the
   latest failure reason;
4. the ``metric_devices`` rows of the devices in the batch are read once (locked), the batch's moves are
   replayed in memory in the order the reports arrived (``installed`` / ``running`` with a client id place
   the device on its label, ``rolled_back`` takes it off, a binary report or a switched deployment key
   forgets it), and the final rows are written (in the driver's own statements: a batch of new devices is
   thousands of rows); each label's gauge moves once per hour by the net amount, which leaves exactly the
   values report-by-report moves would have left (``active`` at the end of the hour, ``active_before`` at
   its start);
5. touches (an update check named the label a device runs) mark the devices still on that label seen, in
   one UPDATE that reads nothing: checks never place or move a device.

Flushes are serialised across processes and hosts: PostgreSQL takes a transaction-level advisory lock,
SQLite's first statement is a write (the database's write lock). So a flush never races another over a
device seen for the first time, and device rows stay consistent with the gauges.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from overair.db import dialect_insert
from overair.errors import Invalid
from overair.metrics.models import MetricDevice, MetricHour, MetricLabel
from overair.metrics.store import COLUMNS, device_hash, hour_of, move_gauge, transaction
from overair.releases.errors import ReleaseNotFound
from overair.releases.models import LABEL_LENGTH, Deployment, Release
from overair.releases.schemas import ReportStatus

FLUSH_LOCK = 0x0FA1_4E90
"""The PostgreSQL advisory lock a flush holds for its transaction (a constant, so hosts agree on it)."""

_RELEASE_COLUMNS = ("downloads", "installs", "failures", "rollbacks")
"""Columns that ``releases`` and the metrics tables share (``running`` has no release counter)."""

_STATUSES = frozenset(s.value for s in ReportStatus)

_KNOWN_KEYS = 4096
"""Deployments whose labels :meth:`ReportRecorder.check` remembers (the cache is emptied when full)."""


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


@dataclass(frozen=True, slots=True, eq=False)
class Pending:
    """An accepted report waiting for the next flush, with the moment it arrived (its hour).

    ``label`` None: a binary report (the device runs the store binary's own bundle). ``status`` None with a
    label: a touch (an update check named the label the device runs: it is seen, nothing is counted).
    Compared by identity: two identical reports are two reports.
    """

    deployment_key: str
    label: str | None
    status: ReportStatus | None
    client_id: str
    reason: str
    previous_deployment_key: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Known:
    deployment_id: int
    labels: frozenset[str]


class ReportRecorder:
    """Device reports in: checked on arrival, then counters, totals and device rows written per batch."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], dt.datetime]) -> None:
        self._sessions = sessions
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._known_lock = threading.Lock()

    # -- arrival ------------------------------------------------------------------------------------

    def check_cached(self, report: DeviceReport) -> Pending | None:
        """:meth:`check` from memory alone: None when knowing the key or label needs a database read (or the
        report is invalid); never blocks."""
        cached = self._known.get(report.deployment_key)
        if cached is None or report.label not in cached.labels or report.status not in _STATUSES:
            return None
        return self._pending(report, ReportStatus(report.status))

    def check(self, report: DeviceReport) -> Pending:
        """The report as it waits for the flush, or an error when it cannot be counted.

        Raises :class:`Invalid` for an unknown status and :class:`ReleaseNotFound` for an unknown key or
        label. Known labels are remembered, so a device's report costs no database read; a miss reads the
        deployment's labels again (a release published a moment ago is found).
        """
        try:
            status = ReportStatus(report.status)
        except ValueError:
            known = ", ".join(s.value for s in ReportStatus)
            raise Invalid(f'Unknown report status "{report.status}": use one of {known}.') from None
        cached = self._known.get(report.deployment_key)
        if cached is None or report.label not in cached.labels:
            cached = self._load(report.deployment_key)
            if cached is None:
                raise ReleaseNotFound("Unknown deployment key: check the key the app is built with.")
            if report.label not in cached.labels:
                raise self._no_release(cached.deployment_id, report.label)
        return self._pending(report, status)

    def _pending(self, report: DeviceReport, status: ReportStatus) -> Pending:
        return Pending(
            report.deployment_key,
            report.label,
            status,
            report.client_id,
            report.reason,
            report.previous_deployment_key,
            self._clock(),
        )

    def binary(self, deployment_key: str, client_id: str, previous_deployment_key: str | None) -> Pending:
        """A binary report as it waits for the flush (an unknown key is ignored then)."""
        return Pending(deployment_key, None, None, client_id, "", previous_deployment_key, self._clock())

    def touch(self, deployment_key: str, client_id: str, label: str) -> Pending:
        """A touch as it waits for the flush: the device checked in saying it runs ``label``, so if its
        row places it there, it was seen now (a check never places or moves a device: reports do)."""
        return Pending(deployment_key, label, None, client_id, "", None, self._clock())

    def _load(self, deployment_key: str) -> _Known | None:
        with transaction(self._sessions) as conn:
            deployment_id = conn.scalar(select(Deployment.id).where(Deployment.key == deployment_key))
            if deployment_id is None:
                return None
            labels = frozenset(
                conn.scalars(select(Release.label).where(Release.deployment_id == deployment_id))
            )
        known = _Known(deployment_id, labels)
        with self._known_lock:
            if len(self._known) >= _KNOWN_KEYS:
                self._known.clear()
            self._known[deployment_key] = known
        return known

    def _no_release(self, deployment_id: int, label: str) -> ReleaseNotFound:
        with transaction(self._sessions) as conn:
            name = conn.scalar(select(Deployment.name).where(Deployment.id == deployment_id))
        if name is None:
            return ReleaseNotFound("Unknown deployment: it may have been removed.")
        shown = label if len(label) <= LABEL_LENGTH else label[:LABEL_LENGTH] + "…"
        return ReleaseNotFound(f'Deployment "{name}" has no release "{shown}".')

    # -- the flush ----------------------------------------------------------------------------------

    def apply(self, batch: Sequence[Pending]) -> bool:
        """Write a batch of accepted reports in one transaction (see the module's description); whether it
        counted anything (a batch of touches and binary reports only moves devices)."""
        if not batch:
            return False
        hour = _HourOf()
        with transaction(self._sessions) as conn:
            insert = dialect_insert(conn)
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FLUSH_LOCK})
            else:  # a write first: the transaction holds SQLite's write lock before it reads anything
                conn.execute(update(MetricLabel).where(MetricLabel.deployment_id == -1).values(active=0))
            ids = self._deployment_ids(conn, batch)
            counted = self._existing(conn, ids, batch)
            self._count(conn, insert, [(ids[p.deployment_key], p) for p in counted], hour)
            self._move_devices(conn, insert, ids, batch, counted, hour)
            _touch_devices(conn, ids, batch, hour)
        return bool(counted)

    @staticmethod
    def _deployment_ids(conn: Connection, batch: Iterable[Pending]) -> dict[str, int]:
        keys = {p.deployment_key for p in batch} | {
            p.previous_deployment_key for p in batch if p.previous_deployment_key
        }
        rows = conn.execute(select(Deployment.key, Deployment.id).where(Deployment.key.in_(keys)))
        return {key: deployment_id for key, deployment_id in rows}

    @staticmethod
    def _existing(conn: Connection, ids: dict[str, int], batch: Sequence[Pending]) -> list[Pending]:
        """The label reports of the batch whose release still exists (binary reports and touches are not
        counted)."""
        wanted = {
            (ids[p.deployment_key], p.label)
            for p in batch
            if p.label is not None and p.status is not None and p.deployment_key in ids
        }
        if not wanted:
            return []
        rows = conn.execute(
            select(Release.deployment_id, Release.label).where(
                Release.deployment_id.in_({d for d, _ in wanted}),
                Release.label.in_({label for _, label in wanted}),
            )
        )
        exists = {(d, label) for d, label in rows}
        return [
            p
            for p in batch
            if p.label is not None
            and p.status is not None  # a touch counts nothing
            and p.deployment_key in ids
            and (ids[p.deployment_key], p.label) in exists
        ]

    @staticmethod
    def _count(
        conn: Connection, insert: Any, counted: Sequence[tuple[int, Pending]], hour_of: _HourOf
    ) -> None:
        hours: defaultdict[tuple[int, dt.datetime, str], Counter[str]] = defaultdict(Counter)
        labels: defaultdict[tuple[int, str], Counter[str]] = defaultdict(Counter)
        # a batch is thousands of reports about a few labels: tallied first, then spread over the rows
        tally = Counter((d, hour_of(p.at), p.label, p.status) for d, p in counted)
        for (deployment_id, hour, label, status), count in tally.items():
            assert label is not None and status is not None
            column = COLUMNS[status]
            hours[(deployment_id, hour, label)][column] += count
            labels[(deployment_id, label)][column] += count
        failures: dict[tuple[int, str], tuple[str, dt.datetime]] = {
            (d, p.label): (p.reason[:500], p.at)
            for d, p in counted
            if p.status is ReportStatus.FAILED and p.reason and p.label is not None
        }
        columns = tuple(COLUMNS.values())
        if hours:
            stmt = insert(MetricHour)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["deployment_id", "hour", "label"],
                    set_={c: getattr(MetricHour, c) + getattr(stmt.excluded, c) for c in columns},
                ),
                [
                    {"deployment_id": d, "hour": hour, "label": label, **{c: counts[c] for c in columns}}
                    for (d, hour, label), counts in hours.items()
                ],
            )
            stmt = insert(MetricLabel)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["deployment_id", "label"],
                    set_={c: getattr(MetricLabel, c) + getattr(stmt.excluded, c) for c in columns},
                ),
                [
                    {"deployment_id": d, "label": label, **{c: counts[c] for c in columns}}
                    for (d, label), counts in labels.items()
                ],
            )
            conn.execute(
                update(Release)
                .where(Release.deployment_id == bindparam("d"), Release.label == bindparam("l"))
                .values({c: getattr(Release, c) + bindparam(f"n_{c}") for c in _RELEASE_COLUMNS}),
                [
                    {"d": d, "l": label, **{f"n_{c}": counts[c] for c in _RELEASE_COLUMNS}}
                    for (d, label), counts in labels.items()
                ],
            )
        if failures:
            conn.execute(
                update(MetricLabel)
                .where(MetricLabel.deployment_id == bindparam("d"), MetricLabel.label == bindparam("l"))
                .values(last_failure=bindparam("reason"), last_failure_at=bindparam("at")),
                [{"d": d, "l": label, "reason": r, "at": at} for (d, label), (r, at) in failures.items()],
            )

    def _move_devices(
        self,
        conn: Connection,
        insert: Any,
        ids: dict[str, int],
        batch: Sequence[Pending],
        counted: list[Pending],
        hour_of: _HourOf,
    ) -> None:
        moves = list(_device_moves(ids, batch, set(counted)))
        if not moves:
            return
        touched: defaultdict[int, set[str]] = defaultdict(set)
        for _, d, device, _, _ in moves:
            touched[d].add(device)
        found: dict[tuple[int, str], str] = {}
        stamped: dict[tuple[int, str], Any] = {}  # seen_at as the driver gives it
        # per deployment, `device IN (…)` walks the primary key (a row-value IN of pairs is planned worse);
        # in sorted order, so two flushes of another host lock rows in the same order (PostgreSQL)
        lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
        for d in sorted(touched):
            devices = sorted(touched[d])
            for start in range(0, len(devices), 1000):
                chunk = devices[start : start + 1000]
                sql = (
                    f"SELECT device, label, seen_at FROM {_DEVICES} WHERE deployment_id = ? AND device IN "
                    f"({', '.join('?' * len(chunk))}) ORDER BY device{lock}"
                )
                rows = conn.exec_driver_sql(_driver_sql(conn, sql), (d, *chunk))
                for device, label, seen_at in rows:
                    found[(d, device)], stamped[(d, device)] = label, seen_at
        state: dict[tuple[int, str], str | None] = dict(found)
        seen: dict[tuple[int, str], dt.datetime] = {}
        gauges: defaultdict[tuple[int, str], Counter[dt.datetime]] = defaultdict(Counter)
        for kind, d, device, label, at in moves:
            key, hour = (d, device), hour_of(at)
            old = state.get(key)
            if kind == "move":
                assert label is not None
                state[key], seen[key] = label, hour
                if old != label:  # net amounts per hour; a label left and joined again keeps its 0
                    if old is not None:
                        gauges[(d, old)][hour] -= 1
                    gauges[(d, label)][hour] += 1
            elif old is not None and (kind == "forget" or old == label):
                state[key] = None
                gauges[(d, old)][hour] -= 1
        self._write_devices(conn, found, stamped, state, seen)
        for (d, label), per_hour in gauges.items():
            for hour in sorted(per_hour):
                move_gauge(conn, insert, d, label, per_hour[hour], hour)

    @staticmethod
    def _write_devices(
        conn: Connection,
        found: dict[tuple[int, str], str],
        stamped: dict[tuple[int, str], Any],
        state: dict[tuple[int, str], str | None],
        seen: dict[tuple[int, str], dt.datetime],
    ) -> None:
        """Device rows as the batch left them: the driver's own statements, since a batch of new devices is
        thousands of rows and SQLAlchemy's per-row parameter handling cost more than the database's work."""
        gone = [(d, device) for (d, device), label in state.items() if label is None and (d, device) in found]
        if gone:
            sql = f"DELETE FROM {_DEVICES} WHERE deployment_id = ? AND device = ?"
            conn.exec_driver_sql(_driver_sql(conn, sql), gone)
        stamp = _Stamps(conn)
        new = [
            (d, v, label, stamp(seen[(d, v)]))
            for (d, v), label in state.items()
            if label is not None and (d, v) not in found
        ]
        if new:
            sql = f"INSERT INTO {_DEVICES} (deployment_id, device, label, seen_at) VALUES (?, ?, ?, ?)"
            conn.exec_driver_sql(_driver_sql(conn, sql), new)
        changed = [  # a device seen again on its label within the hour: nothing to write
            (label, stamp(seen[key]), *key)
            for key, label in state.items()
            if label is not None
            and key in found
            and key in seen
            and (label != found[key] or stamp(seen[key]) != stamped[key])
        ]
        if changed:
            sql = f"UPDATE {_DEVICES} SET label = ?, seen_at = ? WHERE deployment_id = ? AND device = ?"
            conn.exec_driver_sql(_driver_sql(conn, sql), changed)


_DEVICES = MetricDevice.__tablename__


def _driver_sql(conn: Connection, sql: str) -> str:
    """``sql``, written with ``?`` placeholders, in the placeholders of the connection's driver."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


class _Stamps:
    """A moment as the driver takes it for ``metric_devices.seen_at`` (converted once per distinct value)."""

    def __init__(self, conn: Connection) -> None:
        column = MetricDevice.__table__.c.seen_at.type
        self._convert = column.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        self._done: dict[dt.datetime, Any] = {}

    def __call__(self, moment: dt.datetime) -> Any:
        done = self._done.get(moment)
        if done is None:
            done = self._done[moment] = moment if self._convert is None else self._convert(moment)
        return done


class _HourOf:
    """:func:`hour_of`, remembering the last hour: a batch's reports mostly share one."""

    def __init__(self) -> None:
        self._start: dt.datetime | None = None
        self._end: dt.datetime | None = None

    def __call__(self, moment: dt.datetime) -> dt.datetime:
        if self._start is not None and self._end is not None and self._start <= moment < self._end:
            return self._start
        start = hour_of(moment)
        self._start, self._end = start, start + dt.timedelta(hours=1)
        return start


def _touch_devices(conn: Connection, ids: dict[str, int], batch: Sequence[Pending], hour_of: _HourOf) -> None:
    """The batch's touches, after its moves: a device still on the label its update check named was seen
    in that hour. One statement, nothing read: a touch of a device with no row, or on another label, changes
    nothing (reports place devices, checks never do)."""
    stamp = _Stamps(conn)
    touches = {
        (ids[p.deployment_key], device_hash(p.client_id), p.label): stamp(hour_of(p.at))
        for p in batch
        if p.status is None and p.label is not None and p.client_id and p.deployment_key in ids
    }
    if touches:
        sql = (
            f"UPDATE {_DEVICES} SET seen_at = ? WHERE deployment_id = ? AND device = ? AND label = ? "
            "AND seen_at < ?"
        )
        rows = [(seen, d, device, label, seen) for (d, device, label), seen in touches.items()]
        conn.exec_driver_sql(_driver_sql(conn, sql), rows)


def _device_moves(
    ids: dict[str, int], batch: Sequence[Pending], counted: set[Pending]
) -> Iterable[tuple[str, int, str, str | None, dt.datetime]]:
    """(kind, deployment id, device hash, label, when) for each device row change the batch asks, in order.

    ``move``: placed on the label; ``leave``: off the label if it is there; ``forget``: off the deployment.
    Touches are not moves (:func:`_touch_devices`).
    """
    for pending in batch:
        d = ids.get(pending.deployment_key)
        if d is None or not pending.client_id:
            continue
        if pending.label is not None and pending.status is None:
            continue  # a touch
        device = device_hash(pending.client_id)
        if pending.label is None:
            yield "forget", d, device, None, pending.at
        elif pending not in counted:
            continue
        elif pending.status in (ReportStatus.INSTALLED, ReportStatus.RUNNING):
            yield "move", d, device, pending.label, pending.at
        elif pending.status is ReportStatus.ROLLED_BACK:
            yield "leave", d, device, pending.label, pending.at
            continue
        else:
            continue
        previous = ids.get(pending.previous_deployment_key or "")
        if previous is not None and previous != d:
            yield "forget", previous, device, None, pending.at
