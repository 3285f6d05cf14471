"""The ``jobs`` table: background work every host of a deployment shares (see :mod:`overair.jobs`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overair.db import Base, UTCDateTime, utcnow

KIND_LENGTH = 50
KEY_LENGTH = 200


class Job(Base):
    """One piece of background work: queued once per (kind, key), claimed by one host under a lease."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("kind", "key"), Index("ix_jobs_claim", "state", "run_after"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LENGTH))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    """What makes two requests the same work: queuing a (kind, key) that exists does nothing."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Claims so far (a host that crashed with the job counts as an attempt)."""
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
