"""Shared CLI output and argument helpers.

Output is made for terminals and for scripts alike (docs/cli.md, "In scripts and CI"):

- messages are never wrapped by the CLI (a terminal wraps them at its edge; a CI log keeps each on one line);
- tables take the terminal's width, or ``COLUMNS`` when it is set; without a terminal and without
  ``COLUMNS`` they are as wide as their values, and a value never ends in ``…``: a cell too narrow wraps;
- progress bars go to stderr, and only to a terminal;
- ``--json`` prints one JSON document on stdout (:func:`emit`); every other line then goes to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn
from rich.table import Table
from rich.text import Text

from overair.cli.errors import CliError

console = Console(soft_wrap=True)
"""Results and messages: stdout, or stderr under ``--json``."""
err_console = Console(stderr=True, soft_wrap=True)
"""Errors, warnings about the command line, progress."""

UNLIMITED = 100_000
"""The width of output that goes to no terminal when ``COLUMNS`` is not set: every value in full."""

JSON_SCHEMA = 1
"""The version of the JSON documents ``--json`` prints (docs/cli.md, "JSON output"): fields may be added
within a version; one is removed, renamed or changes meaning only with a new version."""


def _width(stream: IO[str]) -> int:
    """``COLUMNS`` when set, else the terminal's width, else :data:`UNLIMITED`."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        pass
    return UNLIMITED


def start() -> None:
    """Set the consoles up for one run of the command line: results to the current stdout, widths from
    the streams as they are now (a run in a test gets the test's captured streams)."""
    console.file = sys.stdout
    for each in (console, err_console):
        each.width = _width(each.file)


def _use_json(value: bool) -> bool:
    if value:
        console.file = sys.stderr  # everything but the document goes to stderr
    return value


JsonOutput = Annotated[
    bool,
    typer.Option(
        "--json",
        is_eager=True,
        callback=_use_json,
        help="Print the result as one JSON document on stdout (its shape: docs/cli.md, JSON output); "
        "messages go to stderr.",
    ),
]
"""The ``--json`` flag of every command that prints data or publishes."""


def json_mode() -> bool:
    """Whether this run prints a JSON document (``--json``): then every message goes to stderr."""
    return console.file is sys.stderr


def emit(json_output: bool, document: Mapping[str, Any], human: Callable[[], None]) -> None:
    """Print ``document`` as JSON (with ``schema``) under ``--json``, else run ``human`` to print it."""
    if not json_output:
        human()
        return
    sys.stdout.write(json.dumps({"schema": JSON_SCHEMA, **document}, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """A message shown literally (no Rich markup or highlighting), on one line however long."""
    console.print(text, markup=False, highlight=False)


def new_table(*headers: str, title: str | None = None, numeric: tuple[str, ...] = ()) -> Table:
    """A table whose values are never cut short (a narrow column wraps); ``numeric`` columns align right."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold", justify="right" if header in numeric else "left")
    return table


def print_table(table: Table, empty: str) -> None:
    """``table``, or the message ``empty`` when it has no rows."""
    if table.row_count:
        console.print(table)
    else:
        say(empty)


Project = Annotated[str, typer.Option("--project-name", help="The app, e.g. CoolApp.")]
"""The ``--project-name`` option (the Native Builder's name for the app)."""


def progress(*columns: str | ProgressColumn) -> Progress:
    """A progress display on stderr, shown only when stderr is a terminal."""
    return Progress(*columns, console=err_console, disable=not err_console.is_terminal)


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
    """Let ``--mandatory`` stand alone (meaning true) or take a value (``--mandatory false``).

    A word after it that is not an option is its value, so ``--mandatory maybe`` is refused by
    :func:`parse_bool` with what it takes (no command with these options has a positional argument).
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token in options:
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or following.startswith("-"):
                out.append("true")
    return out
