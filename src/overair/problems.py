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

from dataclasses import dataclass, field
from typing import Any

from overair.errors import ErrorKind, Fix, OverairError
from overair.packages import InvalidBundle
from overair.storage import ObjectNotFound

STATUS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID: (422, "Invalid value"),
    ErrorKind.NOT_FOUND: (404, "Not found"),
    ErrorKind.CONFLICT: (409, "Conflict"),
    ErrorKind.UNAUTHENTICATED: (401, "Unauthorized"),
    ErrorKind.FORBIDDEN: (403, "Forbidden"),
    ErrorKind.THROTTLED: (429, "Too many requests"),
    ErrorKind.TOO_LARGE: (413, "Payload too large"),
    ErrorKind.LENGTH_REQUIRED: (411, "Length required"),
}
"""Error kind → (HTTP status, problem title)."""

EXPECTED_FAILURES = (OverairError, InvalidBundle, ObjectNotFound)
"""What a request can fail with that is the caller's to fix or to know: every surface answers these alike."""


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
    if isinstance(exc, OverairError):
        status, title = STATUS[exc.kind]
        return Problem(status, title, exc.message, exc.code, exc.subject, exc.fixes, exc.retry_after)
    if isinstance(exc, InvalidBundle):
        return Problem(422, "Invalid bundle", exc.message, "invalid-bundle")
    return Problem(
        404,
        "Content missing",
        "The stored content for this release is missing from the blob store.",
        "content-missing",
    )
