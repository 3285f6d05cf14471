"""Access keys and console sessions. Only SHA-256 digests of keys and session tokens are stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overair.db import Base, UTCDateTime, utcnow


class AccessKey(Base):
    """A named bearer key for the management API (and the console's sign-in)."""

    __tablename__ = "access_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_by_key_id: Mapped[int | None] = mapped_column(nullable=True)
    """The key that created this one (None: made by the server itself); not a foreign key, so that
    revoking a creator leaves the keys it made."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsoleSession(Base):
    """A signed-in console session, bound to the access key that opened it.

    Deleting the key (revoking it) deletes its sessions with it, so a revoked key signs its console users
    out at once.
    """

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("access_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

    key: Mapped[AccessKey] = relationship(lazy="joined")
