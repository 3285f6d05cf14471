"""The pure rules of webhooks: event names, URLs, signatures, the retry schedule and the two body formats.

Nothing here reads the database, the clock or the network; :mod:`overair.webhooks.service` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from overair.errors import Invalid

EVENTS = (
    "release.published",
    "rollout.step",
    "rollout.paused",
    "rollout.halted",
    "rollout.rolled_back",
    "rollout.promoted",
    "rollout.completed",
)
"""Every event a webhook can subscribe to."""
TEST_EVENT = "webhook.test"
"""What a test delivery carries: sent to one hook on request, whatever it subscribes to."""
FORMATS = ("json", "slack")
"""``json``: the signed event document; ``slack``: ``{"text": …}``, which Slack's incoming webhooks accept."""
URL_LENGTH = 2000
SECRET_PREFIX = "whsec_"

RETRY_FOR = dt.timedelta(days=1)
"""A delivery not accepted within this time of its event is given up (marked failed)."""
FIRST_RETRY = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(hours=4)


class UnknownEvent(Invalid):
    """An event name that is not one of :data:`EVENTS`."""


class InvalidWebhook(Invalid):
    """A webhook's URL or format cannot be used."""


def check_events(names: Iterable[str]) -> list[str]:
    """The subscribed events, each known, without repeats, in :data:`EVENTS` order; at least one."""
    wanted = list(names)
    unknown = [name for name in wanted if name not in EVENTS]
    if unknown:
        raise UnknownEvent(
            f"Unknown webhook event {', '.join(repr(n) for n in unknown)}: the events are "
            + ", ".join(EVENTS)
            + ".",
            subject={"event": unknown[0]},
        )
    if not wanted:
        raise UnknownEvent("A webhook subscribes to at least one event: " + ", ".join(EVENTS) + ".")
    return [name for name in EVENTS if name in wanted]


def check_url(url: str) -> str:
    """``url`` if a webhook can be sent there: http or https, with a host, no credentials, not too long."""
    url = url.strip()
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidWebhook(
            "A webhook URL holds no spaces or control characters: percent-encode them (%20).",
            subject={"url": url[:100]},
        )
    if len(url) > URL_LENGTH:
        raise InvalidWebhook(
            f"A webhook URL has at most {URL_LENGTH} characters.", subject={"url": url[:100]}
        )
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is no number raises here
    except ValueError as exc:
        raise InvalidWebhook(f"{url!r} is not a URL ({exc}).", subject={"url": url}) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook(
            f"{url!r} is not an http or https URL: webhooks are sent over HTTP, as https://example.com/hook.",
            subject={"url": url},
        )
    if not parts.hostname:
        raise InvalidWebhook(
            f"{url!r} names no host: write it as https://example.com/hook.", subject={"url": url}
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook(
            f"{url!r} holds a user name or password: webhooks are authenticated by their signature; "
            "give the URL without credentials.",
            subject={"url": parts.hostname},
        )
    return url


def check_format(name: str) -> str:
    """``name`` if it is one of :data:`FORMATS`."""
    if name not in FORMATS:
        raise InvalidWebhook(
            f"Unknown webhook format {name!r}: it is one of " + ", ".join(FORMATS) + ".",
            subject={"format": name},
        )
    return name


def new_secret() -> str:
    """A random signing secret for a new webhook."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Overair-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def next_attempt(now: dt.datetime, attempts: int, gives_up_at: dt.datetime) -> dt.datetime | None:
    """When a delivery that failed its ``attempts``-th try is tried again: 30 s after the first, then twice
    as long each time up to 4 hours; the last try is at ``gives_up_at``; None once that has passed."""
    if attempts < 1:
        raise ValueError(f"attempts counts the tries made, from 1; got {attempts}")
    if now >= gives_up_at:
        return None
    wait = min(FIRST_RETRY * (1 << min(attempts - 1, 20)), LONGEST_WAIT)
    return min(now + wait, gives_up_at)


def envelope(
    delivery: int, event: str, app: str, occurred_at: dt.datetime, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``json`` format's document: which delivery and event, of which app and when, and its data."""
    return {
        "id": delivery,
        "event": event,
        "app": app,
        "occurred_at": occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }


def body(format_: str, document: Mapping[str, Any]) -> bytes:
    """The bytes sent: the document itself (``json``) or a sentence about it (``slack``)."""
    content: Mapping[str, Any] = document
    if format_ == "slack":
        content = {"text": sentence(document["event"], document["app"], document["data"])}
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _release_words(data: Mapping[str, Any]) -> str:
    release = data.get("release")
    label = release.get("label") if isinstance(release, Mapping) else release
    return str(label) if label else "a release"


def sentence(event: str, app: str, data: Mapping[str, Any]) -> str:
    """One readable sentence about an event, for chat (``slack`` format)."""
    where = f"{app}/{data['deployment']}" if data.get("deployment") else app
    release = _release_words(data)
    details = data.get("release") if isinstance(data.get("release"), Mapping) else {}
    by = data.get("actor") or (details.get("released_by") if isinstance(details, Mapping) else None)
    reason = f": {data['reason']}" if data.get("reason") else ""
    share = data.get("percentage", details.get("rollout") if isinstance(details, Mapping) else None)
    at_share = f" at {share}%" if share is not None else ""
    text = {
        "release.published": f"{where}: {release} was published{at_share}",
        "rollout.step": f"{where}: the rollout of {release} moved to {share}%" if share is not None else "",
        "rollout.paused": f"{where}: the rollout of {release} was paused{at_share}{reason}",
        "rollout.halted": f"{where}: the rollout of {release} was halted{at_share}{reason}",
        "rollout.rolled_back": f"{where}: {release} was rolled back{reason}",
        "rollout.promoted": f"{where}: {release} was promoted"
        + (f" to {data['to_deployment']}" if data.get("to_deployment") else ""),
        "rollout.completed": f"{where}: the rollout of {release} completed; it reaches every device",
        TEST_EVENT: f"{app}: a test delivery from overair",
    }.get(event) or f"{where}: {event} for {release}"
    if event == "rollout.step" and share is None:
        text = f"{where}: the rollout of {release} moved to its next step"
    return text + (f" (by {by})" if by else "") + "."
