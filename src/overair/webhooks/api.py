"""Management API routes for an app's webhooks and their delivery log (under ``/api/v1/apps/{app}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from overair.auth.api import Caller
from overair.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut, WebhookPatch
from overair.webhooks.service import MAX_LISTED, Webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


def get_webhooks(request: Request) -> Webhooks:
    """The webhooks service of the running app (wired in ``overair.app``)."""
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks


Service = Annotated[Webhooks, Depends(get_webhooks)]


@router.get("/apps/{app}/webhooks", response_model=list[WebhookOut])
def list_webhooks(app: str, service: Service, caller: Caller) -> list[WebhookOut]:
    """The app's webhooks (without their secrets)."""
    return service.hooks(caller, app)


@router.post("/apps/{app}/webhooks", response_model=WebhookCreated, status_code=201)
def add_webhook(app: str, spec: WebhookCreate, service: Service, caller: Caller) -> WebhookCreated:
    """Add a webhook; the answer holds its signing secret, shown this once."""
    return service.add(caller, app, spec)


@router.patch("/apps/{app}/webhooks/{webhook}", response_model=WebhookOut)
def change_webhook(
    app: str, webhook: int, patch: WebhookPatch, service: Service, caller: Caller
) -> WebhookOut:
    """Change a webhook's URL, events, format, or enable or disable it."""
    return service.change(caller, app, webhook, patch)


@router.delete("/apps/{app}/webhooks/{webhook}", status_code=204)
def remove_webhook(app: str, webhook: int, service: Service, caller: Caller) -> Response:
    """Remove a webhook and its delivery log."""
    service.remove(caller, app, webhook)
    return Response(status_code=204)


@router.get("/apps/{app}/webhooks/{webhook}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    app: str,
    webhook: int,
    service: Service,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="At most this many, newest first.")] = 50,
) -> list[DeliveryOut]:
    """The webhook's deliveries, newest first: status, attempts, last answer or error, times."""
    return service.deliveries(caller, app, webhook, limit)


@router.post("/apps/{app}/webhooks/{webhook}/test", response_model=DeliveryOut)
def test_webhook(app: str, webhook: int, service: Service, caller: Caller) -> DeliveryOut:
    """Send a ``webhook.test`` event to the webhook now, once, and answer how it went."""
    return service.test(caller, app, webhook)
