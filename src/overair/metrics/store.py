"""What the metrics store's write, retention and read paths share: hours, device hashes, the dialect's
upsert, transactions on the session's connection, and moving a label's active-device gauge.

The gauge of a label always equals the number of ``metric_devices`` rows on it: every path that adds,
moves or deletes a device row moves the gauges by the same amount in the same transaction, through
:func:`move_gauge`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.orm import Session, sessionmaker

from overair.metrics.models import MetricHour, MetricLabel
from overair.releases.schemas import ReportStatus

COLUMNS = {
    ReportStatus.DOWNLOADED: "downloads",
    ReportStatus.INSTALLED: "installs",
    ReportStatus.FAILED: "failures",
    ReportStatus.ROLLED_BACK: "rollbacks",
    ReportStatus.RUNNING: "running",
}
"""The column of ``metric_hours`` and ``metric_labels`` that counts each report status."""

_NUMBER = re.compile(r"(\d+)")


def hour_of(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, truncated to the hour."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def device_hash(client_id: str) -> str:
    """What the store keeps of a client id: 128 bits of its SHA-256, so the id itself is never stored."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


def label_key(label: str) -> tuple[Any, ...]:
    """Sort key that puts labels in their natural order (v2 before v10)."""
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(label))


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Connection]:
    """One transaction, as the session's connection for Core statements.

    The ORM's per-statement bookkeeping would cost more than the statements themselves on the report path.
    """
    with sessions() as session, session.begin():
        yield session.connection()


def move_gauge(
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
