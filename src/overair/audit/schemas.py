"""What the audit reads hand out, to the API, the CLI (through it) and the console."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class AuditEventOut(BaseModel):
    """One recorded change."""

    id: int
    at: dt.datetime
    actor: str = Field(description="Who acted (the access key's name).")
    account: str | None = Field(
        default=None, description="The account that acted (none: the server itself, or before accounts)."
    )
    key_id: int | None = Field(description="The access key used (none: the server itself).")
    surface: str = Field(description="api, cli, codepush, console or system.")
    client_address: str | None
    user_agent: str | None
    action: str = Field(description="What was done: a stable verb such as release.publish.")
    app: str | None
    deployment: str | None
    label: str | None
    item: str | None = Field(description="An access key's name, a signing key's id, a binary's version.")
    before: dict[str, Any] = Field(description="The changed fields as they were (empty for a creation).")
    after: dict[str, Any] = Field(description="The changed fields as they became (empty for a removal).")


class AuditPage(BaseModel):
    """A page of events, newest first; ``next_cursor`` asks for the page after it (none: the last page)."""

    events: list[AuditEventOut]
    next_cursor: int | None = None
