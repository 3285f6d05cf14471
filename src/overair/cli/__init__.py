"""The ``overair`` command line: talks to an overair server over HTTP only."""

from __future__ import annotations

from typing import Annotated

import typer

from overair import __version__
from overair.cli import (
    apps,
    audit,
    binaries,
    completion,
    deployments,
    jobs,
    keys,
    metrics,
    rehearsal,
    releases,
    signing,
    simulate,
    team,
    webhooks,
)
from overair.cli import expo as _expo  # noqa: F401  (registers `release push-expo`)
from overair.cli.output import JSON_SCHEMA

HELP = "overair: publish and steer over-the-air updates."


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"overair {__version__} (JSON output schema {JSON_SCHEMA})")
        raise typer.Exit()


def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
    _install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="SHELL",
            is_eager=True,
            callback=completion.install_for,
            help="Install completion for SHELL: bash, zsh, fish or powershell.",
        ),
    ] = None,
    _show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="SHELL",
            is_eager=True,
            callback=completion.show,
            help="Print the completion script for SHELL (bash, zsh, fish, powershell).",
        ),
    ] = None,
) -> None:
    """overair: publish and steer over-the-air updates."""


def build_cli() -> typer.Typer:
    """The ``overair`` command with its groups (the server's ``serve`` is added by ``overair.main``).

    ``--install-completion [SHELL]`` and ``--show-completion [SHELL]`` come from ``overair.cli.completion``.
    """
    cli = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    cli.callback()(_root)
    cli.command("login")(keys.login)
    apps.app.command("transfer")(team.transfer)
    cli.add_typer(apps.app, name="app")
    cli.add_typer(deployments.app, name="deployment")
    cli.add_typer(keys.app, name="access-key")
    cli.add_typer(releases.app, name="release")
    cli.command("metrics")(metrics.show_metrics)
    cli.add_typer(binaries.app, name="binary")
    cli.add_typer(signing.app, name="keys")
    cli.command("simulate")(simulate.simulate)
    cli.command("simulate-cleanup")(rehearsal.simulate_cleanup)
    cli.command("jobs")(jobs.show_jobs)
    cli.command("audit")(audit.show_audit)

    cli.add_typer(team.accounts, name="account")
    cli.add_typer(team.organisations, name="organisation")
    cli.add_typer(team.collaborators, name="collaborator")
    cli.add_typer(webhooks.app, name="webhook")
    return cli
