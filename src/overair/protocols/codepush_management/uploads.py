"""How packages arrive: the standalone dialect's multipart upload, and App Center's chunked uploads.

App Center's CLI first asks the management API for an upload (``POST …/uploads``: an id and a token), then
sends the file in chunks under ``/upload/`` (:class:`UploadEndpoints`, guarded by the token, not by an
access key), then names the finished upload in ``POST …/releases``. :class:`Uploads` keeps the chunks in
the database, so the requests of one upload may reach different hosts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from overair.db import Clock, utcnow
from overair.errors import DATABASE_DOWN, DatabaseDown, note_outage
from overair.inputs import whole_number
from overair.protocols.asgi import base_url
from overair.protocols.codepush_management.errors import NO_FILE, TOO_LARGE, Refused
from overair.protocols.codepush_management.validation import chunk_number, upload_size
from overair.staging import UPLOAD_MAX_AGE_SECONDS, StagedChunk, StagedUpload, sweep_stale_uploads
from overair.storage import spool

UPLOAD_CHUNK_SIZE = 4 * 1024 * 1024

__all__ = ["UPLOAD_CHUNK_SIZE", "UPLOAD_MAX_AGE_SECONDS", "UploadEndpoints", "Uploads", "receive_multipart"]

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
        target = await spool(upload, scratch, "overair-codepush-", limit, lambda: Refused(413, TOO_LARGE))
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()
    return target, fields


class Uploads:
    """Uploads in progress, staged in the database (:mod:`overair.staging`) so that every host of a
    deployment continues any of them; a token guards each.

    Chunks may come in any order and again (a client retrying a chunk whose answer it lost replaces it);
    each must have exactly its place's size, and finishing needs every one.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        limit: int,
        scratch: Path | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._limit = limit
        self._scratch = scratch
        self._clock = clock

    def create(self) -> tuple[str, str]:
        """A new upload's id and token (and old abandoned uploads are swept)."""
        now = self._clock()
        sweep_stale_uploads(self._sessions, now)
        upload_id, token = secrets.token_hex(16), secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            session.add(
                StagedUpload(
                    id=upload_id, token_hash=_hashed(token), size=None, created_at=now, updated_at=now
                )
            )
        return upload_id, token

    def _open(self, session: Session, upload_id: str, token: str) -> StagedUpload:
        upload = session.get(StagedUpload, upload_id) if _UPLOAD_ID.match(upload_id) else None
        if upload is None:
            raise Refused(404, f'Upload "{upload_id}" does not exist.')
        if not secrets.compare_digest(upload.token_hash, _hashed(token)):
            raise Refused(401, "The upload token is not valid for this upload.")
        return upload

    def set_metadata(self, upload_id: str, token: str, size: int) -> dict[str, Any]:
        """Record the file's size; answer with the chunk size and the chunk numbers to send."""
        with self._sessions.begin() as session:
            upload = self._open(session, upload_id, token)
            if size <= 0:
                raise Refused(400, "The upload is empty.")
            if size > self._limit:
                raise Refused(413, TOO_LARGE)
            if upload.size != size:  # chunks cut for another size do not fit this one
                session.execute(delete(StagedChunk).where(StagedChunk.upload_id == upload_id))
            upload.size = size
            upload.updated_at = self._clock()
        return {
            "error": False,
            "id": upload_id,
            "chunk_size": UPLOAD_CHUNK_SIZE,
            "blob_partitions": 1,
            "chunk_list": list(range(1, _chunks(size) + 1)),
            "resume_restart": False,
        }

    @staticmethod
    def _size(upload: StagedUpload) -> int:
        if upload.size is None:
            raise Refused(400, "Set the upload's metadata first.")
        return upload.size

    def put_chunk(self, upload_id: str, token: str, number: int, data: bytes) -> None:
        """Store chunk ``number`` (1-based), replacing an earlier copy of it."""
        with self._sessions.begin() as session:
            upload = self._open(session, upload_id, token)
            size = self._size(upload)
            expected = min(UPLOAD_CHUNK_SIZE, size - (number - 1) * UPLOAD_CHUNK_SIZE)
            if not 1 <= number <= _chunks(size) or len(data) != expected:
                raise Refused(400, f"Chunk {number} is not part of this upload or has the wrong size.")
            upload.updated_at = self._clock()
            insert = _dialect_insert(session)
            row = {"upload_id": upload_id, "number": number, "data": data}
            session.execute(
                insert(StagedChunk)
                .values(**row)
                .on_conflict_do_update(index_elements=["upload_id", "number"], set_={"data": data})
            )

    def missing(self, upload_id: str, token: str) -> list[int]:
        """Chunk numbers not received yet."""
        with self._sessions() as session:
            upload = self._open(session, upload_id, token)
            chunks = _chunks(self._size(upload))
            arrived = set(
                session.scalars(select(StagedChunk.number).where(StagedChunk.upload_id == upload_id))
            )
        return [n for n in range(1, chunks + 1) if n not in arrived]

    def assemble(self, upload_id: str, token: str) -> Path:
        """The uploaded file, put together from its chunks in a new temporary file in the scratch folder
        (the caller removes it)."""
        if self.missing(upload_id, token):
            raise Refused(400, "The upload is not complete: send every chunk, then finish it.")
        fd, name = tempfile.mkstemp(prefix="overair-upload-", suffix=".zip", dir=self._scratch)
        target = Path(name)
        try:
            with open(fd, "wb") as out, self._sessions() as session:
                upload = self._open(session, upload_id, token)
                for number in range(1, _chunks(self._size(upload)) + 1):
                    # one chunk in memory at a time, however large the upload
                    data = session.scalar(
                        select(StagedChunk.data).where(
                            StagedChunk.upload_id == upload_id, StagedChunk.number == number
                        )
                    )
                    if data is None:  # cancelled or swept meanwhile
                        raise Refused(400, "The upload is not complete: send every chunk, then finish it.")
                    out.write(data)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def discard(self, upload_id: str) -> None:
        """Forget an upload and its chunks."""
        if not _UPLOAD_ID.match(upload_id):
            return
        with self._sessions.begin() as session:
            session.execute(delete(StagedChunk).where(StagedChunk.upload_id == upload_id))
            session.execute(delete(StagedUpload).where(StagedUpload.id == upload_id))


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _chunks(size: int) -> int:
    return -(-size // UPLOAD_CHUNK_SIZE)


def _dialect_insert(session: Session) -> Any:
    """The database's INSERT that can ``on_conflict_do_update`` (SQLite and PostgreSQL spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _answering(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` with its refusals answered as App Center's upload service does:
    ``{"error": true, "message"}``; a database that does not answer (uploads are staged in it) is a 503."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Refused as refusal:
            return JSONResponse({"error": True, "message": refusal.message}, status_code=refusal.status)
        except DATABASE_DOWN as exc:
            note_outage(exc)
            return JSONResponse({"error": True, "message": DatabaseDown().message}, status_code=503)

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
