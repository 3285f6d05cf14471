"""Shell completion: ``--show-completion SHELL`` and ``--install-completion SHELL``.

Typer's own options guess the shell from the parent process, so ``overair --show-completion bash``
failed when run from ``sh`` (a Makefile, a Dockerfile ``RUN``, a package build) and a guess could write
the wrong shell's files. These take the shell by name, as ``kubectl completion bash`` does; the scripts
and the completion itself are still Typer's.
"""

from __future__ import annotations

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script, install

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
PROGRAM = "overair"
COMPLETE_VAR = "_OVERAIR_COMPLETE"


def _shell(named: str) -> str:
    """The shell asked for; a clear error for one without completion."""
    shell = named.strip().lower()
    if shell not in SHELLS:
        raise typer.BadParameter(f"'{named}' has no completion; name one of {', '.join(SHELLS)}")
    return shell


def show(value: str | None) -> None:
    """Print the completion script for the shell and exit (``--show-completion``)."""
    if value is None:
        return
    typer.echo(get_completion_script(prog_name=PROGRAM, complete_var=COMPLETE_VAR, shell=_shell(value)))
    raise typer.Exit()


def install_for(value: str | None) -> None:
    """Install the completion script in the shell's startup files and exit (``--install-completion``)."""
    if value is None:
        return
    shell, path = install(shell=_shell(value), prog_name=PROGRAM, complete_var=COMPLETE_VAR)
    typer.echo(f"{shell} completion installed in {path}")
    typer.echo("Completion takes effect in a new terminal.")
    raise typer.Exit()


completion_init()
