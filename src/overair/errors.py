"""The domain's error base: what went wrong, with which object, why, and what the caller can do about it.

An error knows nothing of HTTP, the CLI or the console. It carries structured fields:

- ``kind``: the category of failure (:class:`ErrorKind`), which each surface maps to its own answer
  (the management API's problem+json status, the CodePush dialects' codes, the console's page);
- ``code``: a stable, machine-readable name (``rollout-in-progress``), derived from the class name;
- ``message``: what happened and why, in words that fit every surface (no command lines, no flags);
- ``subject``: which object (``{"app": "CoolApp", "deployment": "Production", "release": "v2"}``);
- ``fixes``: what the caller can do, as actions with arguments (:class:`Fix`); the CLI words them as
  commands with its flags, the console as buttons and pages.

Each surface renders errors in one table of its own: ``overair.problems`` for the management API,
``overair.protocols.codepush_management`` for the CodePush dialects, the console's error page, and
``overair.cli.hints`` for the terminal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class ErrorKind(StrEnum):
    """The category of an expected failure; every surface answers each category in its own way."""

    INVALID = "invalid"
    """A value is malformed or out of range."""
    NOT_FOUND = "not-found"
    """Something the request names does not exist."""
    CONFLICT = "conflict"
    """The request clashes with the current state."""
    UNAUTHENTICATED = "unauthenticated"
    """No credentials, or ones the server does not accept."""
    FORBIDDEN = "forbidden"
    """Known credentials without the right to do this."""
    THROTTLED = "throttled"
    """Too many attempts: the caller must wait."""
    TOO_LARGE = "too-large"
    """An upload over the configured size cap."""
    LENGTH_REQUIRED = "length-required"
    """An upload without a declared size."""
    UNAVAILABLE = "unavailable"
    """Something the server depends on (the database, the object store) does not answer right now."""


@dataclass(frozen=True, slots=True)
class Fix:
    """One thing the caller can do about an error: a named action and its arguments.

    The action names form a small vocabulary (``finish-rollout``, ``disable-release``, ``create-app`` ...)
    that the surfaces translate; an unknown action is simply not worded by a surface that lacks it.
    """

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"action": ..., **args}`` for a wire format."""
        return {"action": self.action, **self.args}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class OverairError(Exception):
    """Base of every expected failure: bad input, a missing object, a refused operation."""

    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    retry_after: int | None = None
    """Seconds after which trying again may succeed (throttling), where that is known."""

    def __init__(
        self,
        message: str,
        *,
        subject: Mapping[str, str] | None = None,
        fixes: Sequence[Fix] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.subject: dict[str, str] = dict(subject or {})
        self.fixes: tuple[Fix, ...] = tuple(fixes)

    @property
    def code(self) -> str:
        """A stable machine-readable name: the class name in kebab case (``RolloutInProgress`` →
        ``rollout-in-progress``)."""
        return _kebab(type(self).__name__)


class NotFound(OverairError):
    """Something the request names does not exist."""

    kind = ErrorKind.NOT_FOUND


class Conflict(OverairError):
    """The request clashes with the current state (a duplicate name, a rollout in progress, ...)."""

    kind = ErrorKind.CONFLICT


class Unauthorized(OverairError):
    """No access key, or one the server does not know."""

    kind = ErrorKind.UNAUTHENTICATED


class PayloadTooLarge(OverairError):
    """An upload over the configured size cap."""

    kind = ErrorKind.TOO_LARGE


class LengthRequired(OverairError):
    """An upload without a Content-Length."""

    kind = ErrorKind.LENGTH_REQUIRED


class Invalid(OverairError):
    """A value is out of range or malformed."""

    kind = ErrorKind.INVALID


class DatabaseDown(OverairError):
    """The database does not answer (stopped, unreachable, out of connections, its file gone)."""

    kind = ErrorKind.UNAVAILABLE
    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            "The database does not answer, so nothing can be read or changed until it is back; devices keep "
            "getting the answers last known. Try again in a few seconds.",
            subject={"dependency": "database"},
        )


DATABASE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
"""What the database driver raises when the database cannot be used right now. Management surfaces answer
it as :class:`DatabaseDown` (503); device routes fall back to the answers they know."""


OUTAGE_LOG_SECONDS = 30.0
_last_outage_log: dict[tuple[str, str], float] = {}


def note_outage(exc: Exception, dependency: str = "database") -> None:
    """Log that ``dependency`` does not answer: one line (no traceback), repeated at most every 30 s while
    the reason stays the same, however many requests meet the outage."""
    reason = getattr(exc, "message", None) or str(getattr(exc, "orig", None) or exc)
    first_line = reason.strip().splitlines()[0][:300] if reason.strip() else type(exc).__name__
    now = time.monotonic()
    if now - _last_outage_log.get((dependency, first_line), -OUTAGE_LOG_SECONDS) >= OUTAGE_LOG_SECONDS:
        if len(_last_outage_log) > 1000:
            _last_outage_log.clear()
        _last_outage_log[(dependency, first_line)] = now
        logging.getLogger("overair").warning(
            "the %s does not answer (%s); devices get the answers last known", dependency, first_line
        )
