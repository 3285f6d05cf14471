"""Shared CLI output and argument helpers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from overair.cli.errors import CliError

console = Console()
err_console = Console(stderr=True)

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder text
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def defang(value: Any) -> Any:
    """``value`` (decoded JSON) with every control character in its strings shown as an escape
    (``\x1b``): text from devices and other users reaches the terminal as text, never as commands to
    it (a report's reason could otherwise clear the screen or fake a prompt)."""
    if isinstance(value, str):
        return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    if isinstance(value, list):
        return [defang(v) for v in value]
    if isinstance(value, dict):
        return {defang(k): defang(v) for k, v in value.items()}
    return value


def plain(text: str) -> str:
    """``text`` as it must appear literally in a Rich markup string (``[red]`` stays ``[red]``)."""
    return escape(text)


def add_text_row(table: Table, *cells: str) -> None:
    """A table row whose cells are shown literally, never read as Rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


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
