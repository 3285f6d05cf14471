"""An HTTP proxy in front of a live ``overair serve`` that records every request and can, on demand, break
a connection or answer one request itself: the faults a CI runner meets (a reset connection, a change
that collided with another one) made to happen when a test says so.

Everything else is forwarded to the real server unchanged, so the CLI talks to overair as usual.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from conftest import LiveServer


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    body_size: int


RESET = b""
"""A fault's answer that breaks the connection with a TCP reset instead (the request arrived, no answer)."""


@dataclass
class Fault:
    """Instead of forwarding the next request ``method`` ``path…``, send ``answer`` (or reset)."""

    method: str
    path: str
    answer: bytes = RESET

    def matches(self, request: Seen) -> bool:
        return request.method == self.method and request.path.split("?")[0].endswith(self.path)


def response(status: int, reason: str, body: bytes, content_type: str = "application/problem+json") -> bytes:
    """A whole HTTP/1.1 response, for :attr:`Fault.answer`."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Proxy:
    """Forwards to ``upstream``, except that each of ``faults`` is used once, by the first request it
    matches."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, method: str | None = None) -> list[str]:
        """``"GET /api/v1/apps"``… of the requests seen so far (of one method)."""
        return [f"{s.method} {s.path}" for s in self.seen if method in (None, s.method)]


def _read_request(stream) -> tuple[str, str, dict[str, str], bytes] | None:
    line = stream.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while (size := int(stream.readline().split(b";")[0], 16)) > 0:
            body += stream.read(size)
            stream.readline()
        stream.readline()
    else:
        body = stream.read(int(headers.get("content-length", "0")))
    return method, target, headers, body


@contextmanager
def running_proxy(server: LiveServer) -> Iterator[Proxy]:
    """A :class:`Proxy` to ``server`` on a free port of 127.0.0.1 for the duration of the block."""
    proxy = Proxy(upstream=server.url)
    upstream = httpx.Client(base_url=server.url, timeout=60)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = _read_request(self.rfile)
            if request is None:
                return
            method, target, headers, body = request
            seen = Seen(method, target, len(body))
            with proxy.lock:
                proxy.seen.append(seen)
                fault = next((f for f in proxy.faults if f.matches(seen)), None)
                if fault is not None:
                    proxy.faults.remove(fault)
            canned = fault.answer if fault is not None else None
            if canned == RESET:
                # SO_LINGER with a zero timeout: close() sends RST, the client sees "connection reset"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if canned is None:
                forwarded = {k: v for k, v in headers.items() if k not in ("host", "transfer-encoding")}
                forwarded["content-length"] = str(len(body))
                response = upstream.request(method, target, headers=forwarded, content=body)
                canned = (
                    f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
                    f"Content-Type: {response.headers.get('content-type', 'application/octet-stream')}\r\n"
                    f"Content-Length: {len(response.content)}\r\nConnection: close\r\n\r\n"
                ).encode() + response.content
            self.wfile.write(canned)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as tcp:
        tcp.daemon_threads = True
        proxy.url = f"http://127.0.0.1:{tcp.server_address[1]}"
        thread = threading.Thread(target=tcp.serve_forever, daemon=True)
        thread.start()
        try:
            yield proxy
        finally:
            tcp.shutdown()
            upstream.close()
