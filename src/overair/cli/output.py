"""Shared CLI output and argument helpers."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from overair.cli.errors import CliError

console = Console()
err_console = Console(stderr=True)

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
BOOL_WORDS = _TRUE | _FALSE


def parse_bool(option: str, value: str | None) -> bool | None:
    """``true``/``false`` (and yes/no/1/0/on/off) for options like ``--mandatory [true|false]``."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CliError(f"{option} takes true or false (or nothing, meaning true), not {value!r}.")


def when(text: str) -> str:
    """An ISO timestamp from the server as ``2026-11-22 20:15 UTC``."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def expand_optional_bools(
    argv: list[str], options: tuple[str, ...] = ("--mandatory", "--disabled")
) -> list[str]:
    """Let ``--mandatory`` stand alone (meaning true) or take a value (``--mandatory false``)."""
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token in options:
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or following.lower() not in BOOL_WORDS:
                out.append("true")
    return out
