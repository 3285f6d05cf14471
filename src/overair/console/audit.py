"""The console's audit page: recorded changes, newest first, with the filters of ``GET /api/v1/audit``.

A GET form (the filters are in the URL, so a filtered view can be shared), read through the same
:class:`~overair.audit.service.AuditService` as the API, as the signed-in key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from overair.audit.rules import SURFACES, AuditAction
from overair.audit.schemas import AuditEventOut
from overair.audit.service import GROUPS, AuditQuery
from overair.console.core import ConsoleApp, Identity, url
from overair.errors import Invalid, NotFound
from overair.inputs import whole_number

router = APIRouter()

PAGE = 50
FILTERS = ("app", "deployment", "actor", "action", "since", "until")


def _moment(text: str, name: str) -> dt.datetime | None:
    """A filter time from the form (``datetime-local`` sends ``2026-12-01T10:00``; read as UTC)."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name} must be a date and time like 2026-12-01T10:00 (UTC), not {text!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def subject(event: AuditEventOut) -> str:
    """Where a change happened: ``CoolApp/Production v3``, ``CoolApp 1.0.0``, ``ci`` (an access key)."""
    where = "/".join(part for part in (event.app, event.deployment) if part)
    return " ".join(part for part in (where, event.label, event.item) if part)


def changes(event: AuditEventOut) -> list[tuple[str, str | None, str | None]]:
    """Each changed field with its value before and after (None where the change has no side)."""

    def shown(side: dict[str, Any], key: str) -> str | None:
        return json.dumps(side[key], ensure_ascii=False) if key in side else None

    keys = dict.fromkeys([*event.before, *event.after])
    return [(key, shown(event.before, key), shown(event.after, key)) for key in keys]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    console: ConsoleApp,
    identity: Identity,
    app: str = "",
    deployment: str = "",
    actor: str = "",
    account: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    if console.audit is None:
        raise NotFound("This server's console does not show the audit log: use overair audit.")
    older_than = whole_number(cursor) if cursor else None
    if cursor and not older_than:
        raise Invalid(f"The page to show is given by a whole number (an event's id), not {cursor!r}.")
    query = AuditQuery(
        app=app.strip() or None,
        deployment=deployment.strip() or None,
        actor=actor.strip() or None,
        account=account.strip() or None,
        action=action.strip() or None,
        since=_moment(since.strip(), "Since"),
        until=_moment(until.strip(), "Until"),
        cursor=older_than,
        limit=PAGE,
    )
    found = console.audit.events(identity.principal, query)
    filters = {
        "app": app,
        "deployment": deployment,
        "actor": actor,
        "account": account,
        "action": action,
        "since": since,
        "until": until,
    }
    given = {k: v for k, v in filters.items() if v}
    older = url("audit", **given, cursor=str(found.next_cursor)) if found.next_cursor else ""
    return console.page(
        "audit.html",
        identity=identity,
        events=found.events,
        filters=filters,
        filtered=bool(given),
        older=older,
        newest=url("audit", **given) if cursor else "",
        subject=subject,
        changes=changes,
        actions=[*GROUPS, *(a.value for a in AuditAction)],
        surfaces=SURFACES,
        crumbs=[("Audit log", url("audit"))],
    )
