"""Tables of the metrics store: hourly aggregates, per-label totals and gauges, and one row per device.

Every report touches a handful of rows found by primary key (an upsert each), never a range: see
``docs/operations.md`` for the design and what "active" means.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from overair.db import Base, UTCDateTime


class MetricHour(Base):
    """What devices reported about one label of a deployment in one UTC hour.

    ``active`` is the label's active-device gauge at the end of the hour and ``active_before`` at its start;
    both are NULL when the gauge did not move that hour (readers carry the last value forward).
    """

    __tablename__ = "metric_hours"
    __table_args__ = (Index("ix_metric_hours_hour", "hour"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    installs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rollbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active_before: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MetricLabel(Base):
    """All-time report totals of one label of a deployment, and its active devices now.

    Kept apart from the release row so that totals stay monotonic (Prometheus counters) when a release is
    removed, and so that the gauge is one upsert away.
    """

    __tablename__ = "metric_labels"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    active: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    installs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rollbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failure: Mapped[str | None] = mapped_column(String(500), nullable=True)
    """Why the last failure report said the release failed (what the device sent, at most 500 characters)."""
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MetricDevice(Base):
    """The label a device of a deployment runs, as its last install or running report said.

    ``device`` is a hash of the device's client id: the store never keeps the id itself. ``seen_at`` is the
    hour of its last report (retention counts in days; the hour lets a flush convert one value, not one per
    device).
    """

    __tablename__ = "metric_devices"
    __table_args__ = (Index("ix_metric_devices_seen_at", "seen_at"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RehearsalLabel(Base):
    """What simulated devices (``overair simulate``) reported about one label of a deployment.

    Kept apart from every production table (release counters, ``metric_hours``, ``metric_labels``,
    ``metric_devices``), which never see a simulated report: see :mod:`overair.metrics.rehearsal`.
    """

    __tablename__ = "rehearsal_labels"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    installs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rollbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RehearsalDevice(Base):
    """The label a simulated device of a deployment runs (a hash of its client id, as for real devices)."""

    __tablename__ = "rehearsal_devices"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
