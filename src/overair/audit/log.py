"""Writing events: :class:`AuditLog`, called by every service in the transaction of the change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from overair.audit import rules
from overair.audit.models import AuditEvent
from overair.auth.principal import Principal
from overair.db import Clock, precise_now


class AuditLog:
    """Adds an event to the session of the change it describes: both commit, or neither does."""

    def __init__(self, clock: Clock = precise_now) -> None:
        self._clock = clock

    def record(
        self,
        session: Session,
        actor: Principal,
        action: rules.AuditAction,
        *,
        app: str | None = None,
        deployment: str | None = None,
        label: str | None = None,
        item: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        """Record that ``actor`` did ``action`` on the subject named (``app``, ``deployment``, ``label``,
        ``item``), with the fields it changed (``before`` and ``after``; see :func:`rules.changed`)."""
        old, new = rules.changed(before, after)
        session.add(
            AuditEvent(
                at=self._clock(),
                **rules.actor_columns(actor),
                action=action.value,
                app=app,
                deployment=deployment,
                label=label,
                item=item,
                before=json.dumps(old, sort_keys=True),
                after=json.dumps(new, sort_keys=True),
            )
        )
