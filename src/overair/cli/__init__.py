"""The ``overair`` command line: talks to an overair server over HTTP only."""

from __future__ import annotations

import typer

from overair.cli import apps, binaries, deployments, keys, rehearsal, releases, signing, simulate


def build_cli() -> typer.Typer:
    """The ``overair`` command with its groups (the server's ``serve`` is added by ``overair.main``)."""
    cli = typer.Typer(
        help="overair: publish and steer over-the-air updates.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    cli.command("login")(keys.login)
    cli.add_typer(apps.app, name="app")
    cli.add_typer(deployments.app, name="deployment")
    cli.add_typer(keys.app, name="access-key")
    cli.add_typer(releases.app, name="release")
    cli.add_typer(binaries.app, name="binary")
    cli.add_typer(signing.app, name="keys")
    cli.command("simulate")(simulate.simulate)
    cli.command("simulate-cleanup")(rehearsal.simulate_cleanup)
    return cli
