"""``GET /api/v1/audit``: the audit log, filtered and paginated, newest first (``overair audit``).

Only reading: no route changes or deletes an event (the retention prune is a background job).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from overair.audit.schemas import AuditPage
from overair.audit.service import MAX_PAGE, AuditQuery, AuditService
from overair.auth.api import Caller

router = APIRouter(prefix="/api/v1", tags=["audit"])


def get_audit(request: Request) -> AuditService:
    """The audit reads of the running app (wired in ``overair.app``)."""
    service: AuditService = request.app.state.audit
    return service


Audit = Annotated[AuditService, Depends(get_audit)]


@router.get("/audit", response_model=AuditPage)
def list_events(
    audit: Audit,
    caller: Caller,
    app: Annotated[str | None, Query(description="Only events of this app.")] = None,
    deployment: Annotated[str | None, Query(description="Only events of this deployment (with app).")] = None,
    actor: Annotated[str | None, Query(description="Only events made with this access key.")] = None,
    account: Annotated[str | None, Query(description="Only events made by this account.")] = None,
    action: Annotated[
        str | None, Query(description="Only this verb (release.publish) or subject (release).")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="Only events at or after this time.")] = None,
    until: Annotated[dt.datetime | None, Query(description="Only events before this time.")] = None,
    cursor: Annotated[int | None, Query(description="The next_cursor of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many events.")] = 50,
) -> AuditPage:
    """Recorded changes, newest first: an app's events need the right to read it; events of no app
    (access keys) an administrator's."""
    query = AuditQuery(app, deployment, actor, action, account, since, until, cursor, limit)
    return audit.events(caller, query)
