"""The ``audit_events`` table: one row per change, never updated, deleted only by the retention prune."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from overair.db import Base, UTCDateTime


class AuditEvent(Base):
    """One change: when, who (see :func:`overair.audit.rules.actor_columns`), what, on which subject, and
    the before and after of the fields it changed (JSON text; empty object for none)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_app", "app", "deployment"),
        Index("ix_audit_events_account", "account"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # who: written only by rules.actor_columns
    actor: Mapped[str] = mapped_column(String(200))
    """The access key's name (or the server's own name)."""
    account: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The account acting (None: the server itself, or an event from before accounts)."""
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The access key used (no foreign key: the event outlives a revoked key)."""
    surface: Mapped[str] = mapped_column(String(20))
    client_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # what, on which subject (names, not foreign keys: the event outlives a removed app)
    action: Mapped[str] = mapped_column(String(50))
    app: Mapped[str | None] = mapped_column(String(200), nullable=True)
    deployment: Mapped[str | None] = mapped_column(String(200), nullable=True)
    label: Mapped[str | None] = mapped_column(String(50), nullable=True)
    item: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """What else the change names: an access key's name, a signing key's id, a binary's version."""
    before: Mapped[str] = mapped_column(Text, default="{}")
    after: Mapped[str] = mapped_column(Text, default="{}")


class AppendOnly(Exception):
    """Something tried to change or delete a recorded audit event through the ORM."""


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse(_mapper: object, _connection: object, target: AuditEvent) -> None:
    """Audit events are append-only: the ORM never updates or deletes one (the prune deletes old ones with
    a single statement of its own, :meth:`overair.audit.service.AuditService.prune`)."""
    raise AppendOnly(f"audit event {target.id} is append-only")
