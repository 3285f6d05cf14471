"""The baseline for ``update_check.py``: the least an ASGI app can do under granian.

Any HTTP request gets the same ~400-byte JSON body (shaped like an update-check answer) with an exact
Content-Length; lifespan events are acknowledged. Run it as ``python -m granian --interface asgi
bare_asgi:app`` from this folder.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

_ANSWER = {
    "status": "update",
    "update": {
        "label": "v50",
        "package_hash": "0" * 64,
        "size": 1234,
        "download_url": "http://127.0.0.1:3000/v1/blobs/" + "1" * 64,
        "manifest_url": "http://127.0.0.1:3000/v1/blobs/" + "2" * 64,
        "mandatory": False,
        "description": "Release 50 of the benchmark",
        "target_version": "1.0.0",
    },
    "store_version": None,
}
BODY = json.dumps(_ANSWER, separators=(",", ":")).encode()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Answer every HTTP request with ``BODY``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)
