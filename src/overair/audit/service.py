"""Reading the audit log (filters, pages, who may see which event) and its retention prune.

There is no method here, nor anywhere, that changes or deletes an event except :meth:`AuditService.prune`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, false, or_, select
from sqlalchemy.orm import Session, sessionmaker

from overair.audit.models import AuditEvent
from overair.audit.rules import AuditAction
from overair.audit.schemas import AuditEventOut, AuditPage
from overair.auth.principal import Action, Principal
from overair.db import Clock, precise_now
from overair.errors import Invalid

PRUNE_EVERY = dt.timedelta(hours=1)
MAX_PAGE = 500
GROUPS = sorted({a.value.split(".")[0] for a in AuditAction})
"""The subjects of the verbs (``release`` filters every ``release.*``)."""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which events to read: every filter given must match; newest first, ``limit`` of them, older than the
    event ``cursor`` (the page after the one that gave it)."""

    app: str | None = None
    deployment: str | None = None
    actor: str | None = None
    action: str | None = None
    account: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    cursor: int | None = None
    limit: int = 50


def check_action(action: str) -> str:
    """``action`` if it is a verb (``release.publish``) or a subject (``release``); else :class:`Invalid`."""
    if action in {a.value for a in AuditAction} or action in GROUPS:
        return action
    raise Invalid(
        f'There is no audit action "{action}": give a subject ({", ".join(GROUPS)}) or a verb ('
        + ", ".join(a.value for a in AuditAction)
        + ").",
        subject={"action": action},
    )


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class AuditService:
    """The audit log as people read it, and the prune that keeps it ``retention_days`` long."""

    def __init__(
        self, sessions: sessionmaker[Session], retention_days: int = 365, clock: Clock = precise_now
    ) -> None:
        self._sessions = sessions
        self.retention_days = retention_days
        self._clock = clock

    def events(self, actor: Principal, query: AuditQuery) -> AuditPage:
        """The events ``actor`` may see that match ``query``: those of an app need the right to read it,
        the others (access keys, the server's own) the right to operate the server."""
        if query.deployment is not None and query.app is None:
            raise Invalid(
                "A deployment filter needs the app it belongs to.", subject={"deployment": query.deployment}
            )
        if not 1 <= query.limit <= MAX_PAGE:
            raise Invalid(f"limit must be from 1 to {MAX_PAGE}.", subject={"limit": str(query.limit)})
        if query.app is not None:
            actor.require(Action.READ, app=query.app, deployment=query.deployment)
        with self._sessions() as session:
            conditions = [self._visible(session, actor, query.app), *self._filters(query)]
            rows = session.scalars(
                select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(query.limit + 1)
            ).all()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return AuditPage(events=[_out(r) for r in rows], next_cursor=rows[-1].id if more and rows else None)

    @staticmethod
    def _visible(session: Session, actor: Principal, app: str | None) -> ColumnElement[bool]:
        if app is not None:
            return AuditEvent.app == app  # checked by the caller
        named = session.scalars(select(AuditEvent.app).where(AuditEvent.app.is_not(None)).distinct())
        readable = [name for name in named if name is not None and actor.may(Action.READ, app=name)]
        server_wide = AuditEvent.app.is_(None) if actor.may(Action.OPERATE_SERVER) else false()
        return or_(server_wide, AuditEvent.app.in_(readable)) if readable else server_wide

    @staticmethod
    def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if query.deployment is not None:
            found.append(AuditEvent.deployment == query.deployment)
        if query.actor is not None:
            found.append(AuditEvent.actor == query.actor)
        if query.account is not None:
            found.append(AuditEvent.account == query.account)
        if query.action is not None:
            action = check_action(query.action)
            found.append(
                AuditEvent.action == action if "." in action else AuditEvent.action.startswith(action + ".")
            )
        if query.since is not None:
            found.append(AuditEvent.at >= _aware(query.since))
        if query.until is not None:
            found.append(AuditEvent.at < _aware(query.until))
        if query.cursor is not None:
            found.append(AuditEvent.id < query.cursor)
        return [and_(*found)] if found else []

    def prune(self, now: dt.datetime | None = None) -> int:
        """Delete events older than ``retention_days`` (0 keeps every event); how many were deleted. The
        one deletion of events there is; safe to run on several hosts at once."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or self._clock()) - dt.timedelta(days=self.retention_days)
        with self._sessions.begin() as session:
            result = session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
            return int(result.rowcount)  # type: ignore[attr-defined]


def _out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=row.id,
        at=row.at,
        actor=row.actor,
        account=row.account,
        key_id=row.key_id,
        surface=row.surface,
        client_address=row.client_address,
        user_agent=row.user_agent,
        action=row.action,
        app=row.app,
        deployment=row.deployment,
        label=row.label,
        item=row.item,
        before=json.loads(row.before),
        after=json.loads(row.after),
    )
