"""How packages arrive: the standalone dialect's multipart upload, and App Center's chunked uploads.

App Center's CLI first asks the management API for an upload (``POST …/uploads``: an id and a token), then
sends the file in chunks under ``/upload/`` (:class:`UploadEndpoints`, guarded by the token, not by an
access key), then names the finished upload in ``POST …/releases``. :class:`Uploads` keeps the chunks in a
folder shared by the server's workers.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from overair.inputs import whole_number
from overair.protocols.asgi import base_url
from overair.protocols.codepush_management.errors import NO_FILE, TOO_LARGE, Refused
from overair.protocols.codepush_management.validation import chunk_number, upload_size

UPLOAD_CHUNK_SIZE = 4 * 1024 * 1024
UPLOAD_MAX_AGE_SECONDS = 24 * 3600

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


async def receive_multipart(
    request: Request, field: str, limit: int, scratch: Path | None = None
) -> tuple[Path, dict[str, Any]]:
    """Read a multipart upload: the file ``field`` into a temporary file (in ``scratch``, which start-up
    sweeps after a crash), the other fields as text."""
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise Refused(413, TOO_LARGE)
    try:
        form = await request.form(max_files=1, max_fields=20)
    except ClientDisconnect:
        raise  # not a malformed body: nobody is left to answer (CodePushManagement logs it)
    except Exception as exc:  # malformed multipart bodies raise several exception types
        raise Refused(400, NO_FILE) from exc
    try:
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise Refused(400, NO_FILE)
        fd, name = tempfile.mkstemp(prefix="overair-codepush-", suffix=".zip", dir=scratch)
        target = Path(name)
        copied = 0
        try:
            with open(fd, "wb") as out:
                await upload.seek(0)
                while chunk := await upload.read(1024 * 1024):
                    copied += len(chunk)
                    if copied > limit:
                        raise Refused(413, TOO_LARGE)
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()
    return target, fields


class Uploads:
    """Uploads in progress, as files in a folder shared by the server's workers; a token guards each."""

    def __init__(self, folder: Path, limit: int) -> None:
        self._folder = folder
        self._limit = limit

    def create(self) -> tuple[str, str]:
        """A new upload's id and token (and old abandoned uploads are swept)."""
        self._folder.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - UPLOAD_MAX_AGE_SECONDS
        for old in self._folder.iterdir():
            if _UPLOAD_ID.match(old.name) and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        upload_id, token = secrets.token_hex(16), secrets.token_urlsafe(32)
        folder = self._folder / upload_id
        folder.mkdir()
        (folder / "token").write_text(hashlib.sha256(token.encode()).hexdigest())
        return upload_id, token

    def _open(self, upload_id: str, token: str) -> Path:
        folder = self._folder / upload_id
        if not _UPLOAD_ID.match(upload_id) or not (folder / "token").is_file():
            raise Refused(404, f'Upload "{upload_id}" does not exist.')
        expected = (folder / "token").read_text()
        if not secrets.compare_digest(expected, hashlib.sha256(token.encode()).hexdigest()):
            raise Refused(401, "The upload token is not valid for this upload.")
        return folder

    def set_metadata(self, upload_id: str, token: str, size: int) -> dict[str, Any]:
        """Record the file's size; answer with the chunk size and the chunk numbers to send."""
        folder = self._open(upload_id, token)
        if size <= 0:
            raise Refused(400, "The upload is empty.")
        if size > self._limit:
            raise Refused(413, TOO_LARGE)
        (folder / "size").write_text(str(size))
        chunks = -(-size // UPLOAD_CHUNK_SIZE)
        return {
            "error": False,
            "id": upload_id,
            "chunk_size": UPLOAD_CHUNK_SIZE,
            "blob_partitions": 1,
            "chunk_list": list(range(1, chunks + 1)),
            "resume_restart": False,
        }

    def _expected(self, folder: Path) -> tuple[int, int]:
        if not (folder / "size").is_file():
            raise Refused(400, "Set the upload's metadata first.")
        size = int((folder / "size").read_text())
        return size, -(-size // UPLOAD_CHUNK_SIZE)

    def put_chunk(self, upload_id: str, token: str, number: int, data: bytes) -> None:
        """Store chunk ``number`` (1-based)."""
        folder = self._open(upload_id, token)
        size, chunks = self._expected(folder)
        expected = min(UPLOAD_CHUNK_SIZE, size - (number - 1) * UPLOAD_CHUNK_SIZE)
        if not 1 <= number <= chunks or len(data) != expected:
            raise Refused(400, f"Chunk {number} is not part of this upload or has the wrong size.")
        partial = folder / f"chunk-{number:06d}.part"
        partial.write_bytes(data)
        partial.replace(folder / f"chunk-{number:06d}")  # a chunk is there whole or not at all

    def missing(self, upload_id: str, token: str) -> list[int]:
        """Chunk numbers not received yet."""
        folder = self._open(upload_id, token)
        _, chunks = self._expected(folder)
        return [n for n in range(1, chunks + 1) if not (folder / f"chunk-{n:06d}").is_file()]

    def assemble(self, upload_id: str, token: str) -> Path:
        """The uploaded file, put together from its chunks."""
        folder = self._open(upload_id, token)
        if self.missing(upload_id, token):
            raise Refused(400, "The upload is not complete: send every chunk, then finish it.")
        _, chunks = self._expected(folder)
        target = folder / "package.zip"
        with target.open("wb") as out:
            for n in range(1, chunks + 1):
                with (folder / f"chunk-{n:06d}").open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        return target

    def discard(self, upload_id: str) -> None:
        """Forget an upload and its files."""
        if _UPLOAD_ID.match(upload_id):
            shutil.rmtree(self._folder / upload_id, ignore_errors=True)


def _answering(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` with its refusals answered as App Center's upload service does:
    ``{"error": true, "message"}``."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Refused as refusal:
            return JSONResponse({"error": True, "message": refusal.message}, status_code=refusal.status)

    return answer


class UploadEndpoints:
    """App Center's chunked upload protocol under ``/upload/``; errors as ``{"error": true, "message"}``."""

    def __init__(self, uploads: Uploads, public_url: str) -> None:
        self.uploads = uploads
        self.public_url = public_url

    def routes(self) -> list[Route]:
        return [
            Route("/upload/set_metadata/{id}", _answering(self.set_metadata), methods=["POST"]),
            Route("/upload/upload_chunk/{id}", _answering(self.upload_chunk), methods=["POST"]),
            Route("/upload/finished/{id}", _answering(self.finished), methods=["POST"]),
            Route("/upload/cancel/{id}", _answering(self.cancel), methods=["POST"]),
        ]

    async def set_metadata(self, request: Request) -> Response:
        """``POST /upload/set_metadata/<id>?file_name&file_Size&token``."""
        query = request.query_params
        size = upload_size(query.get("file_Size") or query.get("file_size") or "")
        result = await anyio.to_thread.run_sync(
            self.uploads.set_metadata, request.path_params["id"], query.get("token", ""), size
        )
        return JSONResponse(result)

    async def upload_chunk(self, request: Request) -> Response:
        """``POST /upload/upload_chunk/<id>?block_number&token`` with the chunk as the body."""
        number = chunk_number(request.query_params.get("block_number", ""))
        data = bytearray()
        async for piece in request.stream():
            data.extend(piece)
            if len(data) > UPLOAD_CHUNK_SIZE:
                raise Refused(413, "The chunk is too large.")
        await anyio.to_thread.run_sync(
            self.uploads.put_chunk,
            request.path_params["id"],
            request.query_params.get("token", ""),
            number,
            bytes(data),
        )
        return JSONResponse({"error": False, "chunk_num": number, "error_code": "None"})

    async def finished(self, request: Request) -> Response:
        """``POST /upload/finished/<id>?token``: done, or the chunks still missing."""
        upload_id = request.path_params["id"]
        token = request.query_params.get("token", "")
        missing = await anyio.to_thread.run_sync(self.uploads.missing, upload_id, token)
        if missing:
            return JSONResponse({"error": True, "state": "Missing", "missing_chunks": missing})
        location = f"{self.public_url or base_url(request.scope)}/upload/{upload_id}"
        return JSONResponse(
            {
                "error": False,
                "state": "Done",
                "message": "Upload completed",
                "location": location,
                "absolute_uri": location,
            }
        )

    async def cancel(self, request: Request) -> Response:
        """``POST /upload/cancel/<id>?token``."""
        upload_id = request.path_params["id"]
        await anyio.to_thread.run_sync(self.uploads.missing, upload_id, request.query_params.get("token", ""))
        await anyio.to_thread.run_sync(self.uploads.discard, upload_id)
        return JSONResponse({"error": False, "state": "Cancelled"})
