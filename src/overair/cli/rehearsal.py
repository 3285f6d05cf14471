"""``overair simulate-cleanup``: remove what ``overair simulate``'s devices left on a deployment.

Simulated devices are counted apart from production numbers (their reports carry ``Overair-Simulated: 1``),
so a rehearsal never needs cleaning for production's sake; this removes its traces when they are no longer
wanted, e.g. before a fresh rehearsal whose numbers should not include earlier ones.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from overair.cli.apps import Yes
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import Project, console


def rehearsal_path(project_name: str, deployment: str) -> str:
    """The management API path of a deployment's rehearsal traces."""
    return f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/rehearsal"


def describe(found: dict[str, Any]) -> str:
    """``1,200 reports of simulated devices, 100 of them running a release`` for a rehearsal summary."""
    devices = int(found["devices"])
    running = f", {devices:,} of them running a release" if devices else ""
    return f"{int(found['reports']):,} reports of simulated devices{running}"


def simulate_cleanup(
    project_name: Project,
    deployment: Annotated[
        str, typer.Option("--deployment", help="The deployment the rehearsal ran on.")
    ] = "Production",
    yes: Yes = False,
) -> None:
    """Remove a rehearsal's traces: what simulated devices reported on a deployment.

    Production numbers (release list, the console, metrics, Prometheus) never include simulated devices
    and are not touched.
    """
    with Api() as api:
        path = rehearsal_path(project_name, deployment)
        found = api.get(path)
        where = f"{found['app']} / {found['deployment']}"
        if not found["reports"] and not found["devices"]:
            console.print(f"{where} has no rehearsal traces: nothing to remove.", soft_wrap=True)
            return
        question = f"Remove {describe(found)} from {where}? Production numbers are not touched."
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(
                    f"Nothing removed: {where} has {describe(found)}, and there is no terminal to confirm "
                    "on. Add --yes to remove them without a question."
                )
            if not typer.confirm(question):
                console.print("Nothing removed.")
                raise typer.Exit(1)
        removed = api.delete(path)
    console.print(f"[green]Removed {describe(removed)} from {where}.[/]", soft_wrap=True)
