"""Uploads in progress, staged in the database so that any host continues any upload.

App Center's chunked uploads arrive in several requests, which a load balancer spreads over every host.
Their state (the token's hash, the declared size, when they last moved) and the chunks themselves are
rows here, not files in one host's folder: a chunk sent to one host is seen by the host that finishes
the upload. Why the database and not the blob store is in ``docs/design.md`` (uploads staged in the
database). The protocol's rules are in :mod:`overair.protocols.codepush_management.uploads`; this module
holds the tables and the sweep of abandoned uploads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from overair.db import Base, UTCDateTime

UPLOAD_MAX_AGE_SECONDS = 24 * 3600
"""An upload untouched this long is abandoned: the start-up sweep and each new upload remove it."""


class StagedUpload(Base):
    """An upload in progress: who may continue it (the token's SHA-256) and the size it declared."""

    __tablename__ = "staged_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class StagedChunk(Base):
    """One chunk of an upload in progress; ``number`` (1-based) is its place in the file."""

    __tablename__ = "staged_upload_chunks"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("staged_uploads.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def sweep_stale_uploads(
    sessions: sessionmaker[Session], now: dt.datetime, max_age_seconds: float = UPLOAD_MAX_AGE_SECONDS
) -> tuple[int, int]:
    """Remove the uploads nobody touched for ``max_age_seconds`` before ``now``, and their chunks.

    Returns how many uploads went and the bytes their chunks held. Safe on every host at once: each
    deletes what is stale, and a row another host removed first is simply not counted twice.
    """
    cutoff = now - dt.timedelta(seconds=max_age_seconds)
    stale = select(StagedUpload.id).where(StagedUpload.updated_at < cutoff)
    with sessions.begin() as conn:
        held = conn.scalar(
            select(func.coalesce(func.sum(func.length(StagedChunk.data)), 0)).where(
                StagedChunk.upload_id.in_(stale)
            )
        )
        conn.execute(delete(StagedChunk).where(StagedChunk.upload_id.in_(stale)))
        gone = conn.execute(delete(StagedUpload).where(StagedUpload.updated_at < cutoff))
    return int(cast(CursorResult[Any], gone).rowcount or 0), int(held or 0)
