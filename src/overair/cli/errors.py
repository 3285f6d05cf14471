"""The one error the CLI shows: a message, never a traceback."""

from __future__ import annotations


class CliError(Exception):
    """Something the user can fix; printed in red, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
