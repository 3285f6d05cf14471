"""Where devices download stored blobs, and serving them: exact Content-Length, strong ETag, single byte
ranges, no encoding.

:class:`Downloads` is the one place that builds download URLs: every device adapter (and the CodePush
management API's ``blobUrl``) asks it, so pointing downloads at object storage or a CDN changes this
module and the composition root only.

Blobs are content-addressed, so a URL's bytes never change: the ETag is the SHA-256 and responses may
be cached forever. CodePush clients compare Content-Length with the bytes read, so it is always exact
and no content-encoding is ever applied.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable

import anyio.to_thread

from overair.inputs import whole_number
from overair.protocols.asgi import Message, Receive, Scope, Send, base_url, header, send_bytes, send_error
from overair.storage import BlobStore, ObjectNotFound, StorageUnavailable, content_key, digest_of

BLOBS = "/v1/blobs/"
"""Where overair serves blobs itself: ``/v1/blobs/<sha256>``."""

_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("overair")


def _offset(text: str) -> int:
    number = whole_number(text)
    if number is None:  # more digits than any blob's size: malformed
        raise ValueError(text)
    return number


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single ``Range`` header, or None when it cannot be satisfied.

    Several ranges in one header are not supported; the caller then serves the whole body.
    """
    match = _RANGE.match(value.strip())
    if match is None:
        raise ValueError(value)
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        raise ValueError(value)
    if not first_s:  # suffix range: the last N bytes
        length = _offset(last_s)
        if length == 0:
            return None
        return max(0, size - length), size - 1
    first = _offset(first_s)
    last = _offset(last_s) if last_s else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


def download_url(blob_key: str, base: str) -> str:
    """Where overair itself serves the blob stored under ``blob_key``: ``<base>/v1/blobs/<sha256>``. Every
    other caller asks :meth:`Downloads.download_url`, which decides between this, a CDN and the bucket."""
    return f"{base}{BLOBS}{digest_of(blob_key)}"


_PRESIGNED = "presigned:"


class Downloads:
    """Download URLs for blobs, and the endpoint that serves them (built once, by the composition root).

    Where devices download from, in order: ``cdn_url`` (``OVERAIR_DOWNLOAD_URL``: a CDN or the bucket's
    public URL, ``<cdn_url>/<blob key>``), presigned URLs of the blob store (``presign_seconds`` > 0), else
    overair itself (``<public URL or request base>/v1/blobs/<sha256>``).

    Update-check answers are cached per :meth:`base`, so a base names everything a URL depends on. With
    presigning the base is a time window of half the URLs' lifetime, and every URL built in a window is
    signed at the window's start: all answers of one window are alike, an answer is rebuilt when the window
    moves on, and a URL a device receives stays valid for at least half its lifetime.
    """

    def __init__(
        self,
        blobs: BlobStore,
        public_url: str = "",
        *,
        cdn_url: str = "",
        presign_seconds: int = 0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._blobs = blobs
        self._public_url = public_url
        self._cdn_url = cdn_url.rstrip("/")
        self._presign_seconds = presign_seconds
        self._window = max(1, presign_seconds // 2)
        self._clock = clock

    def base(self, scope: Scope) -> str:
        """The base of download URLs for one request (see the class). Answers that hold URLs are cached
        per base."""
        if self._cdn_url:
            return self._cdn_url
        if self._presign_seconds:
            start = int(self._clock().timestamp()) // self._window * self._window
            return f"{_PRESIGNED}{start}"
        return self._public_url or base_url(scope)

    def download_url(self, blob_key: str, base: str, own_path: str = "") -> str:
        """The URL a device downloads the blob stored under ``blob_key`` from (``base`` from :meth:`base`).

        ``own_path``: where overair serves it itself when no CDN or bucket does (a protocol's own asset
        route, e.g. with the asset's content type), instead of ``/v1/blobs/<sha256>``.
        """
        if own_path and not self._cdn_url and not self._presign_seconds:
            digest_of(blob_key)  # only content keys are ever handed out
            return f"{base}{own_path}"
        if self._cdn_url:
            digest_of(blob_key)  # only content keys are ever handed out
            return f"{self._cdn_url}/{blob_key}"
        if self._presign_seconds and not base.startswith(_PRESIGNED):
            base = self.base({})  # an answer that is not cached (the management API's blobUrl): this window
        if base.startswith(_PRESIGNED):
            signed_at = dt.datetime.fromtimestamp(int(base.removeprefix(_PRESIGNED)), dt.UTC)
            url = self._blobs.presigned_url(blob_key, signed_at, self._presign_seconds)
            if url is not None:
                return url
            base = self._public_url  # a store that cannot presign (refused by the settings) serves itself
        return download_url(blob_key, base)

    def read_blob(self, digest: str) -> bytes:
        """The whole blob with SHA-256 ``digest`` (small ones only: patches, manifests)."""
        with self._blobs.open(content_key(digest)) as stream:
            return stream.read()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Endpoint of ``GET|HEAD /v1/blobs/{digest}``."""
        await self.serve_digest(scope, receive, send, scope["path_params"]["digest"])

    async def serve_digest(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        digest: str,
        content_type: bytes = b"application/zip",
    ) -> None:
        """Serve the blob with SHA-256 ``digest`` as ``content_type`` (503 while the store is down)."""
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await serve_blob(scope, receive, sending, self._blobs, digest, content_type)
        except StorageUnavailable as exc:
            log.error("object store unavailable: %s", exc.message)
            if started:  # the body broke off: the device sees a short download and resumes it later
                return
            await send_error(
                send,
                503,
                "The package cannot be downloaded right now; try again later.",
                [(b"retry-after", b"30"), (b"cache-control", b"no-store")],
            )


_NOT_CACHED = [(b"cache-control", b"no-store")]
"""On a missing blob: a CDN that kept the 404 would go on refusing the blob once a publish stores it."""


async def serve_blob(
    scope: Scope,
    receive: Receive,
    send: Send,
    blobs: BlobStore,
    digest: str,
    content_type: bytes = b"application/zip",
) -> None:
    """Answer GET/HEAD (the route allows no other method) for the blob with SHA-256 ``digest``, served as
    ``content_type``."""
    if not _HEX64.match(digest):
        await send_error(send, 404, "No such package: the URL must end in a SHA-256 hex digest.", _NOT_CACHED)
        return
    key = content_key(digest)
    try:
        size = await anyio.to_thread.run_sync(blobs.size, key)
    except ObjectNotFound:
        await send_error(
            send, 404, "No such package: it may have been deleted; check for updates again.", _NOT_CACHED
        )
        return
    etag = f'"{digest}"'
    common = [
        (b"etag", etag.encode()),
        (b"accept-ranges", b"bytes"),
        (b"cache-control", b"public, max-age=31536000, immutable"),
        (b"content-type", content_type),
    ]
    if header(scope, b"if-none-match") in (etag, "*"):
        await send({"type": "http.response.start", "status": 304, "headers": common})
        await send({"type": "http.response.body", "body": b""})
        return
    first, last, status = 0, size - 1, 200
    requested = header(scope, b"range")
    if_range = header(scope, b"if-range")
    if requested and (if_range is None or if_range == etag):
        try:
            chosen = parse_range(requested, size)
        except ValueError:
            chosen = (0, size - 1)  # several or malformed ranges: the whole body, as a 200
            requested = None
        if chosen is None:
            await send_bytes(send, 416, b"", [*common, (b"content-range", f"bytes */{size}".encode())])
            return
        first, last = chosen
        if requested:
            status = 206
    length = last - first + 1 if size else 0
    headers = [*common, (b"content-length", str(length).encode())]
    if status == 206:
        headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if scope["method"] == "HEAD" or length == 0:
        await send({"type": "http.response.body", "body": b""})
        return
    stream = await anyio.to_thread.run_sync(blobs.open, key)
    try:
        await anyio.to_thread.run_sync(stream.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(stream.read, min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
    finally:
        stream.close()
