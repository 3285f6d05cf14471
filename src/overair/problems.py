"""How the HTTP surfaces answer expected failures: the one table from error kinds to statuses.

Domain errors (:class:`overair.errors.OverairError`) know nothing of HTTP. The management API and the
console turn them into answers here; device protocols use :func:`status_of` for their plain answers. The
problem+json body (RFC 9457) carries the error's structured fields as extension members, so a client such
as the CLI can word its own fixes::

    {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "...",
     "code": "rollout-in-progress", "subject": {"app": "CoolApp", "deployment": "Production"},
     "fixes": [{"action": "finish-rollout", "label": "v1", "deployment": "Production"}]}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from overair.errors import DATABASE_DOWN, DatabaseDown, ErrorKind, Fix, OverairError, note_outage
from overair.packages import InvalidBundle
from overair.storage import ObjectNotFound, StorageUnavailable

STATUS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID: (422, "Invalid value"),
    ErrorKind.NOT_FOUND: (404, "Not found"),
    ErrorKind.CONFLICT: (409, "Conflict"),
    ErrorKind.UNAUTHENTICATED: (401, "Unauthorized"),
    ErrorKind.FORBIDDEN: (403, "Forbidden"),
    ErrorKind.THROTTLED: (429, "Too many requests"),
    ErrorKind.TOO_LARGE: (413, "Payload too large"),
    ErrorKind.LENGTH_REQUIRED: (411, "Length required"),
    ErrorKind.UNAVAILABLE: (503, "Service unavailable"),
}
"""Error kind → (HTTP status, problem title)."""

EXPECTED_FAILURES = (OverairError, InvalidBundle, ObjectNotFound, StorageUnavailable, *DATABASE_DOWN)
"""What a request can fail with that is the caller's to fix or to know: every surface answers these alike
(a database or an object store that does not answer included: an outage to report, not a bug)."""

log = logging.getLogger("overair")

STORAGE_RETRY_SECONDS = 30
"""The ``Retry-After`` of answers given while the object store cannot be reached."""


def client_gone(method: str, path: str) -> None:
    """Log a client that hung up before sending its whole request: one warning line and no traceback, as
    it is the network's or the client's failure, not the server's (and nobody is left to answer)."""
    log.warning("%s %r: the client disconnected before sending the whole request", method, path[:200])


UNSTORABLE = (
    "A value in the request cannot be stored or looked up: it holds a NUL character (\\u0000) or a number "
    "out of range. Remove it and send the request again."
)
"""What a surface answers (400) when the database refuses a value as given (PostgreSQL's DataError)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """An expected failure as an HTTP surface shows it."""

    status: int
    title: str
    detail: str
    code: str
    subject: dict[str, str] = field(default_factory=dict)
    fixes: tuple[Fix, ...] = ()
    retry_after: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries (``Retry-After`` when waiting helps)."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def to_json(self) -> dict[str, Any]:
        """The problem+json document."""
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.subject:
            body["subject"] = self.subject
        if self.fixes:
            body["fixes"] = [f.to_json() for f in self.fixes]
        return body


def status_of(exc: OverairError) -> int:
    """The HTTP status an expected failure is answered with."""
    return STATUS[exc.kind][0]


def describe(exc: Exception) -> Problem:
    """The :class:`Problem` for one of :data:`EXPECTED_FAILURES`."""
    if isinstance(exc, DATABASE_DOWN):
        note_outage(exc)
        exc = DatabaseDown()
    if isinstance(exc, OverairError):
        status, title = STATUS[exc.kind]
        return Problem(status, title, exc.message, exc.code, exc.subject, exc.fixes, exc.retry_after)
    if isinstance(exc, InvalidBundle):
        return Problem(422, "Invalid bundle", exc.message, "invalid-bundle")
    if isinstance(exc, StorageUnavailable):
        note_outage(exc, "object store")
        return Problem(
            503,
            "Object store unavailable",
            f"The object store is unavailable, so this cannot be done now; try again later. {exc.message}",
            "storage-unavailable",
            {"dependency": "object store"},
            retry_after=STORAGE_RETRY_SECONDS,
        )
    return Problem(
        404,
        "Content missing",
        "The stored content for this release is missing from the blob store.",
        "content-missing",
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong and why, for a person."},
        "code": {"type": "string", "description": "A stable name of the failure, for scripts."},
        "subject": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "The objects involved (app, deployment, release, ...).",
        },
        "fixes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["action"],
                "properties": {"action": {"type": "string"}},
                "additionalProperties": True,
            },
            "description": "What can be done about it: actions with their arguments.",
        },
    },
}
"""The JSON schema of every problem+json answer."""

_ALWAYS = {
    "401": "No access key, or one that is unknown, revoked or expired.",
    "403": "The key may not do this.",
    "422": "A value in the request is invalid.",
    "429": "Too many wrong keys from this address lately; see Retry-After.",
    "503": "The object store cannot be reached (code storage-unavailable); see Retry-After.",
}
_NAMED = {"404": "Something the path names does not exist."}
_CHANGES = {"409": "The request clashes with the current state."}
_UPLOADS = {
    "411": "The upload has no Content-Length.",
    "413": "The upload is over the server's limit.",
}


def document_problems(schema: dict[str, Any], prefix: str = "/api/v1") -> dict[str, Any]:
    """Add every problem+json answer the management API can give to its OpenAPI ``schema``.

    FastAPI documents only the successful answer and a 422 body of its own shape; overair answers every
    refusal as problem+json (:data:`PROBLEM_SCHEMA`), so each operation gets the statuses it can return:
    401/403/422/429/503 everywhere, 404 where the path names something, 409 on changes, 411/413 on uploads.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            statuses = dict(_ALWAYS)
            if "{" in path:
                statuses.update(_NAMED)
            if method in {"post", "patch", "put", "delete"}:
                statuses.update(_CHANGES)
            if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                statuses.update(_UPLOADS)
            responses = operation.setdefault("responses", {})
            for status, description in statuses.items():
                responses[status] = {"description": description, "content": content}
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    return schema
