"""Small raw-ASGI helpers for device routes (no framework on the hot path)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = Sequence[tuple[bytes, bytes]]

JSON_HEADERS = [(b"content-type", b"application/json")]

NO_STORE = (b"cache-control", b"private, no-store")
"""Cache-Control of every update-check answer: it depends on the device and the moment, so no cache (a
CDN, a proxy, the device's HTTP cache) may keep it."""


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete response with an exact Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or JSON_HEADERS), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, status: int, message: str, extra: Headers = ()) -> None:
    """A device-facing error: ``{"error": message}`` and nothing internal (plus ``extra`` headers)."""
    await send_bytes(send, status, json.dumps({"error": message}).encode(), [*JSON_HEADERS, *extra])


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (latin-1), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def base_url(scope: Scope) -> str:
    """``scheme://host`` as the client addressed the server."""
    host = header(scope, b"host")
    if not host or len(host) > 255:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def query_params(raw: bytes) -> dict[str, str]:
    """``dict(parse_qsl(raw, keep_blank_values=True))``, skipping parse_qsl's cost for plain queries.

    The update check is the hot path and parse_qsl was its largest single cost; queries without
    percent-escapes or ``+`` (what devices send) are split directly, with the same result.
    """
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params
