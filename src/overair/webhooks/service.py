"""Webhooks: each app's hooks, the events emitted to them, and the deliveries that carry them.

Other modules emit events with :meth:`Webhooks.emit` (an app, an event name, a JSON-able payload); each
enabled hook of the app subscribed to the event gets a delivery row and a job of the shared queue
(:mod:`overair.jobs`). The job posts the delivery (:mod:`overair.webhooks.transport`); a try that fails
queues the next one on the schedule of :func:`overair.webhooks.rules.next_attempt`, until a day has passed
and the delivery is marked failed. The job table's own backoff (five tries within the hour) only covers a
host that died while sending.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from overair.auth.principal import Action, Principal
from overair.db import Clock, precise_now
from overair.errors import Conflict, Fix, Invalid, NotFound
from overair.jobs import Worker
from overair.releases import repository as repo
from overair.releases.models import App
from overair.webhooks import rules
from overair.webhooks.models import Webhook, WebhookDelivery
from overair.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPatch,
)
from overair.webhooks.transport import Send, post

DELIVER_JOB = "webhooks.deliver"
PRUNE_JOB = "webhooks.prune"
KEEP_DELIVERIES = dt.timedelta(days=30)
"""Finished deliveries stay in the log this long."""
MAX_HOOKS = 20
"""Webhooks one app may have."""
MAX_LISTED = 500
ERROR_LENGTH = 1000
DEFAULT_TIMEOUT = 5.0


class WebhookNotFound(NotFound):
    """No webhook with that id on that app."""


class TooManyWebhooks(Conflict):
    """The app has as many webhooks as it may."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _out(hook: Webhook, app: str) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        app=app,
        url=hook.url,
        events=list(hook.events),
        format=hook.format,
        enabled=hook.enabled,
        created_by=hook.created_by,
        created_at=hook.created_at,
    )


def _delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


class Webhooks:
    """Manage each app's webhooks, emit events to them, and deliver (see the module's documentation)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: Worker,
        clock: Clock = precise_now,
        *,
        send: Send = post,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._clock = clock
        self._send = send
        self.timeout = timeout
        jobs.handle(DELIVER_JOB, lambda payload: self.deliver(int(payload["delivery"])))
        jobs.every(PRUNE_JOB, dt.timedelta(days=1), lambda _payload: self.prune())

    # -- managing hooks -----------------------------------------------------------------------------

    def add(self, actor: Principal, app_name: str, spec: WebhookCreate) -> WebhookCreated:
        """A new webhook on the app; the answer holds its secret, which is not shown again."""
        actor.require(Action.MANAGE_APPS, app=app_name)
        url = rules.check_url(spec.url)
        events = rules.check_events(spec.events)
        format_ = rules.check_format(spec.format)
        with self._sessions() as session, session.begin():
            app = repo.get_app(session, app_name)
            count = len(session.scalars(select(Webhook.id).where(Webhook.app_id == app.id)).all())
            if count >= MAX_HOOKS:
                raise TooManyWebhooks(
                    f'App "{app.name}" has {count} webhooks, the most it may have; remove one first.',
                    subject={"app": app.name},
                )
            hook = Webhook(
                app_id=app.id,
                url=url,
                events=events,
                secret=rules.new_secret(),
                format=format_,
                enabled=spec.enabled,
                created_by=actor.name,
                created_at=self._clock(),
            )
            session.add(hook)
            session.flush()
            return WebhookCreated(**_out(hook, app.name).model_dump(), secret=hook.secret)

    def hooks(self, actor: Principal, app_name: str) -> list[WebhookOut]:
        """The app's webhooks, oldest first."""
        actor.require(Action.READ, app=app_name)
        with self._sessions() as session:
            app = repo.get_app(session, app_name)
            hooks = session.scalars(select(Webhook).where(Webhook.app_id == app.id).order_by(Webhook.id))
            return [_out(hook, app.name) for hook in hooks]

    def change(self, actor: Principal, app_name: str, hook_id: int, patch: WebhookPatch) -> WebhookOut:
        """Change a webhook's URL, events, format or enabled flag (a disabled hook gets no new deliveries,
        and its pending ones are not sent)."""
        actor.require(Action.MANAGE_APPS, app=app_name)
        with self._sessions() as session, session.begin():
            app, hook = self._hook(session, app_name, hook_id)
            if patch.url is not None:
                hook.url = rules.check_url(patch.url)
            if patch.events is not None:
                hook.events = rules.check_events(patch.events)
            if patch.format is not None:
                hook.format = rules.check_format(patch.format)
            if patch.enabled is not None:
                hook.enabled = patch.enabled
            session.flush()
            return _out(hook, app.name)

    def remove(self, actor: Principal, app_name: str, hook_id: int) -> None:
        """Remove a webhook and its delivery log."""
        actor.require(Action.MANAGE_APPS, app=app_name)
        with self._sessions() as session, session.begin():
            _app, hook = self._hook(session, app_name, hook_id)
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
            session.delete(hook)

    def deliveries(self, actor: Principal, app_name: str, hook_id: int, limit: int = 50) -> list[DeliveryOut]:
        """The webhook's deliveries, newest first, at most ``limit``."""
        actor.require(Action.READ, app=app_name)
        if not 1 <= limit <= MAX_LISTED:
            raise Invalid(f"limit must be from 1 to {MAX_LISTED}.", subject={"limit": str(limit)})
        with self._sessions() as session:
            _app, hook = self._hook(session, app_name, hook_id)
            rows = session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == hook.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(limit)
            )
            return [_delivery_out(row) for row in rows]

    def test(self, actor: Principal, app_name: str, hook_id: int) -> DeliveryOut:
        """Send a test event to the webhook now (once, not retried; enabled or not) and say how it went."""
        actor.require(Action.MANAGE_APPS, app=app_name)
        now = self._clock()
        with self._sessions() as session, session.begin():
            app, hook = self._hook(session, app_name, hook_id)
            data = {"webhook": hook.id, "url": hook.url, "actor": actor.name}
            delivery = self._queue(session, hook, app.name, rules.TEST_EVENT, data, now, now)
        return self.deliver(delivery.id, test=True) or _delivery_out(delivery)

    def _hook(self, session: Session, app_name: str, hook_id: int) -> tuple[App, Webhook]:
        app = repo.get_app(session, app_name)
        hook = session.scalar(select(Webhook).where(Webhook.app_id == app.id, Webhook.id == hook_id))
        if hook is None:
            ids = session.scalars(select(Webhook.id).where(Webhook.app_id == app.id).order_by(Webhook.id))
            known = ", ".join(str(i) for i in ids) or "none yet"
            raise WebhookNotFound(
                f'App "{app.name}" has no webhook {hook_id} (its webhooks: {known}).',
                subject={"app": app.name, "webhook": str(hook_id)},
                fixes=[Fix("list-webhooks", {"app": app.name})],
            )
        return app, hook

    # -- emitting -----------------------------------------------------------------------------------

    def emit(
        self, app: str, event: str, payload: Mapping[str, Any], *, session: Session | None = None
    ) -> int:
        """Queue ``event`` (one of :data:`~overair.webhooks.rules.EVENTS`) with ``payload`` for every
        enabled webhook of ``app`` subscribed to it; how many deliveries were queued.

        Given a ``session`` in a transaction, the deliveries are queued in it: they exist if and only if the
        change they tell of was committed. ``payload`` is JSON data (datetimes are written in ISO 8601);
        the keys ``deployment``, ``release`` (a label, or a document with ``label``), ``percentage``,
        ``reason``, ``actor`` and ``to_deployment`` are worded in the ``slack`` format's sentence."""
        if event not in rules.EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        data = json.loads(json.dumps(dict(payload), default=_jsonable))
        if session is not None:
            return self._emit(session, app, event, data)
        with self._sessions() as own, own.begin():
            return self._emit(own, app, event, data)

    def _emit(self, session: Session, app_name: str, event: str, data: dict[str, Any]) -> int:
        hooks = session.scalars(
            select(Webhook)
            .join(App, App.id == Webhook.app_id)
            .where(App.name == app_name, Webhook.enabled.is_(True))
            .order_by(Webhook.id)
        ).all()
        now = self._clock()
        queued = 0
        for hook in hooks:
            if event in hook.events:
                delivery = self._queue(session, hook, app_name, event, data, now, now + rules.RETRY_FOR)
                first = f"{delivery.id}.1"
                self._jobs.enqueue(DELIVER_JOB, first, {"delivery": delivery.id}, session=session)
                queued += 1
        return queued

    def _queue(
        self,
        session: Session,
        hook: Webhook,
        app_name: str,
        event: str,
        data: Mapping[str, Any],
        now: dt.datetime,
        gives_up_at: dt.datetime,
    ) -> WebhookDelivery:
        delivery = WebhookDelivery(
            webhook_id=hook.id,
            event=event,
            body="",
            status="pending",
            attempts=0,
            last_error="",
            created_at=now,
            next_attempt_at=now,
            gives_up_at=gives_up_at,
        )
        session.add(delivery)
        session.flush()
        document = rules.envelope(delivery.id, event, app_name, now, data)
        delivery.body = rules.body(hook.format, document).decode()
        session.flush()
        return delivery

    # -- delivering ---------------------------------------------------------------------------------

    def deliver(self, delivery_id: int, *, test: bool = False) -> DeliveryOut | None:
        """Try to send a pending delivery once; record how it went and when the next try is (or that it
        failed for good). None when there is nothing to send (delivered, failed, or its hook removed)."""
        with self._sessions() as session:
            row = session.get(WebhookDelivery, delivery_id)
            hook = None if row is None else session.get(Webhook, row.webhook_id)
            if row is None or hook is None or row.status != "pending":
                return None
            url, secret, body, event = hook.url, hook.secret, row.body.encode(), row.event
            enabled = hook.enabled
        if not enabled and not test:
            unsent = "the webhook was disabled before this was sent"
            return self._record(delivery_id, None, None, unsent)
        started = self._clock()
        timestamp = int(started.timestamp())
        headers = {
            "Overair-Event": event,
            "Overair-Delivery": str(delivery_id),
            "Overair-Timestamp": str(timestamp),
            "Overair-Signature": rules.signature(secret, timestamp, body),
        }
        outcome = self._send(url, headers, body, self.timeout)
        error = "" if outcome.accepted else (outcome.error or "the receiver did not accept it")
        return self._record(delivery_id, started, outcome.status_code, error)

    def _record(
        self, delivery_id: int, started: dt.datetime | None, code: int | None, error: str
    ) -> DeliveryOut | None:
        """Record a try made at ``started`` (None: no try was made, and none will be)."""
        with self._sessions() as session, session.begin():
            row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if row is None or row.status != "pending":
                return None
            now = self._clock()
            row.last_error = error[:ERROR_LENGTH]
            if started is None:
                row.status, row.next_attempt_at = "failed", None
                session.flush()
                return _delivery_out(row)
            row.attempts += 1
            row.last_attempt_at = started
            row.last_status_code = code
            if not error:
                row.status, row.delivered_at, row.next_attempt_at = "delivered", now, None
            elif (retry := rules.next_attempt(now, row.attempts, row.gives_up_at)) is None:
                row.status, row.next_attempt_at = "failed", None
            else:
                row.next_attempt_at = retry
                key = f"{row.id}.{row.attempts + 1}"
                self._jobs.queue.enqueue(
                    DELIVER_JOB, key, {"delivery": row.id}, delay=retry - now, session=session
                )
            session.flush()
            return _delivery_out(row)

    def prune(self) -> int:
        """Remove deliveries that finished more than :data:`KEEP_DELIVERIES` ago; how many."""
        cutoff = self._clock() - KEEP_DELIVERIES
        with self._sessions() as session, session.begin():
            result = session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status != "pending", WebhookDelivery.created_at < cutoff
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]
