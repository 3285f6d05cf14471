"""The errors the CLI shows (a message, never a traceback) and the one table of its exit statuses."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What ``overair``'s exit status tells a script (docs/cli.md, "Exit status")."""

    OK = 0
    """The command did what it was asked."""
    INVALID = 1
    """Usage or validation: a mistyped command or flag, a bad value, a file that cannot be read, no login.
    Nothing was sent to the server (or the server was only asked questions)."""
    REFUSED = 2
    """The server answered and refused: an unknown app, a rejected key, a rollout in progress..."""
    UNREACHABLE = 3
    """No usable answer: the server is not running or not reachable, the connection broke, it timed out,
    or what answered is not an overair server."""


class CliError(Exception):
    """Something the user can fix; printed in red after ``Error:``, exit status :attr:`exit_code`."""

    exit_code: int = ExitCode.INVALID

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(CliError):
    """The server answered with an error status: exit status 2."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        """The server's stable name of the failure (``rollout-in-progress``), when it sent one."""


class Unreachable(CliError):
    """No usable answer from the server: exit status 3."""

    exit_code = ExitCode.UNREACHABLE
