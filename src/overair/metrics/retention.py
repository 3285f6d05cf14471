"""Retention of the metrics store: old hours are dropped and silent devices stop counting as active.

A prune runs once an hour as a periodic job of the queue every host shares (``metrics.prune``, registered by
``overair.app``); it is safe to run in several places at once all the same: see :meth:`Retention.prune`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from overair.db import dialect_insert
from overair.metrics.models import MetricDevice, MetricHour
from overair.metrics.store import hour_of, move_gauge, transaction

PRUNE_EVERY = dt.timedelta(hours=1)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the metrics store keeps what it knows (``OVERAIR_METRICS_RETENTION_DAYS``, ``…_ACTIVE_DAYS``
    in the settings)."""

    retention_days: int = 90
    """Hourly rows older than this many days are pruned; 0 keeps them."""
    active_days: int = 30
    """A device silent this many days no longer counts as active; 0: never."""


class Retention:
    """Prunes hourly rows and expires silent devices, as :attr:`policy` says."""

    def __init__(
        self, sessions: sessionmaker[Session], policy: RetentionPolicy, clock: Callable[[], dt.datetime]
    ) -> None:
        self._sessions = sessions
        self.policy = policy
        self._clock = clock

    def prune(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Drop hourly rows older than the policy's ``retention_days`` and expire devices silent for its
        ``active_days`` (0 keeps every hour, or never expires devices).

        Returns (hourly rows deleted, devices expired). Expired devices leave their label's gauge, as if
        they had moved away. Idempotent and safe to run from several workers at once: each device is
        subtracted only by the transaction that deleted its row.
        """
        now = now or self._clock()
        policy = self.policy
        deleted_hours = 0
        with transaction(self._sessions) as conn:
            insert = dialect_insert(conn)
            expired: list[Any] = []
            if policy.active_days > 0:
                expired = list(
                    conn.execute(
                        delete(MetricDevice)
                        .where(MetricDevice.seen_at < now - dt.timedelta(days=policy.active_days))
                        .returning(MetricDevice.deployment_id, MetricDevice.label)
                    ).all()
                )
            for (deployment_id, label), count in Counter((r[0], r[1]) for r in expired).items():
                move_gauge(conn, insert, deployment_id, label, -count, hour_of(now))
            if policy.retention_days > 0:
                cutoff = hour_of(now) - dt.timedelta(days=policy.retention_days)
                result = conn.execute(delete(MetricHour).where(MetricHour.hour < cutoff))
                deleted_hours = int(result.rowcount)
        return deleted_hours, len(expired)
