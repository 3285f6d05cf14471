"""What the webhook routes take and answer."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from overair.webhooks.rules import EVENTS, FORMATS


class WebhookCreate(BaseModel):
    """A new hook: where to post, which events, in which format."""

    url: str = Field(description="An http or https URL; redirects are never followed.")
    events: list[str] = Field(description="Events to send: " + ", ".join(EVENTS) + ".")
    format: str = Field(default="json", description="One of " + ", ".join(FORMATS) + ".")
    enabled: bool = True


class WebhookPatch(BaseModel):
    """Changes to a hook; fields left out stay as they are."""

    url: str | None = None
    events: list[str] | None = None
    format: str | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    """A hook (its secret is shown only once, when it is created)."""

    id: int
    app: str
    url: str
    events: list[str]
    format: str
    enabled: bool
    created_by: str
    created_at: dt.datetime


class WebhookCreated(WebhookOut):
    """A hook just created, with the secret its deliveries are signed with: keep it, it is not shown again."""

    secret: str


class DeliveryOut(BaseModel):
    """One event sent to a hook: where it stands and how its last try went."""

    id: int
    webhook_id: int
    event: str
    status: str = Field(description="pending (being tried), delivered, or failed (given up).")
    attempts: int
    last_status_code: int | None = Field(description="The receiver's status code at the last try, if any.")
    last_error: str
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    gives_up_at: dt.datetime
