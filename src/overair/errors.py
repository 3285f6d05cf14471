"""The domain's error base. Each error knows its HTTP status and a message a person can act on.

Domain packages subclass :class:`OverairError`; ``app.py`` translates every one of them into an
``application/problem+json`` answer in a single place, so no service ever sees HTTP.
"""

from __future__ import annotations


class OverairError(Exception):
    """Base of every expected failure: bad input, a missing object, a refused operation."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(OverairError):
    """Something the request names does not exist."""

    status = 404
    title = "Not found"


class Conflict(OverairError):
    """The request clashes with the current state (a duplicate name, a rollout in progress, ...)."""

    status = 409
    title = "Conflict"


class Unauthorized(OverairError):
    """No access key, or one the server does not know."""

    status = 401
    title = "Unauthorized"


class PayloadTooLarge(OverairError):
    """An upload over the configured size cap."""

    status = 413
    title = "Payload too large"


class LengthRequired(OverairError):
    """An upload without a Content-Length."""

    status = 411
    title = "Length required"


class Invalid(OverairError):
    """A value is out of range or malformed."""

    status = 422
    title = "Invalid value"
