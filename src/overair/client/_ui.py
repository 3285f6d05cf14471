"""The dialogs of an update, as a small protocol the host app implements (a text one is included)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol, TextIO


class UpdateUI(Protocol):
    """What the engine shows the user during :meth:`UpdateEngine.sync`."""

    def ask(self, title: str, message: str, choices: Sequence[str]) -> str:
        """Show a dialog and return the chosen button (one of ``choices``)."""
        ...

    def inform(self, title: str, message: str) -> None:
        """Show a message with an OK button."""
        ...

    def progress(self, done: int, total: int) -> None:
        """Download progress in bytes."""
        ...


class TextUI:
    """Dialogs on a terminal. Without input (end of file), the first choice is taken for a single-button
    dialog and the last ("Later") otherwise."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._shown = -1

    def ask(self, title: str, message: str, choices: Sequence[str]) -> str:
        """Print the dialog and read a choice (its number or its name)."""
        self._out.write(f"\n== {title} ==\n{message}\n")
        options = "  ".join(f"[{i}] {c}" for i, c in enumerate(choices, 1))
        while True:
            self._out.write(f"{options} > ")
            self._out.flush()
            line = self._in.readline()
            if not line:
                return choices[0] if len(choices) == 1 else choices[-1]
            answer = line.strip()
            if len(choices) == 1 and answer == "":
                return choices[0]
            for i, choice in enumerate(choices, 1):
                if answer == str(i) or answer.lower() == choice.lower():
                    return choice
            self._out.write(f"Please answer {' or '.join(choices)}.\n")

    def inform(self, title: str, message: str) -> None:
        """Print the message."""
        self._out.write(f"\n== {title} ==\n{message}\n")
        self._out.flush()

    def progress(self, done: int, total: int) -> None:
        """Print progress in 10% steps."""
        step = int(done * 10 / total) if total else 10
        if step != self._shown:
            self._shown = step
            self._out.write(f"Downloading update: {step * 10}%\n")
            self._out.flush()
