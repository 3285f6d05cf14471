"""``overair app …``: create, list and remove apps; switch distribution mode."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, add_text_row, console, emit, new_table, plain, say

app = typer.Typer(help="Create, list and remove apps.", no_args_is_help=True)

Yes = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]
"""``--yes`` of the commands that delete."""


def print_deployments(deployments: list[Mapping[str, Any]]) -> None:
    """The deployments with their keys, as a table."""
    table = new_table("Deployment", "Key", "Latest release")
    for d in deployments:
        add_text_row(table, d["name"], d["key"], d.get("latest_label") or "-")
    console.print(table)


def remove_confirmed(path: str, question: str, done: str, yes: bool) -> None:
    """DELETE ``path`` once the user said yes (``--yes``, or ``question`` answered on a terminal)."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"{question} Nothing was deleted: pass --yes to confirm without a terminal.")
        if not typer.confirm(question):
            raise typer.Exit(1)
    with Api() as api:
        api.delete(path)
    console.print(f"[green]{plain(done)}[/]", highlight=False)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The app's name, e.g. CoolApp.")],
    platform: Annotated[
        list[str] | None, typer.Option("--platform", help="ios and/or android (repeat); default both.")
    ] = None,
    distribution: Annotated[
        str, typer.Option(help="hybrid (OTA updates allowed) or store-only (every change via the stores).")
    ] = "hybrid",
    json_output: JsonOutput = False,
) -> None:
    """Create an app with the deployments Production and Staging, and show their keys."""
    body: dict[str, object] = {"name": name, "distribution": distribution}
    if platform:
        body["platforms"] = [p.lower() for p in platform]
    with Api() as api:
        created = api.post("/apps", json=body)

    def human() -> None:
        console.print(
            f"[green]Created app {created['name']}[/] ({', '.join(created['platforms'])}, "
            f"{created['distribution']})."
        )
        print_deployments(created["deployments"])
        say(
            f'Next: overair release push-update --project-name "{created["name"]}" --target-version 1.0.0 '
            "--bundle PATH"
        )

    emit(json_output, {"app": documents.app(created)}, human)


@app.command("list")
def list_apps(json_output: JsonOutput = False) -> None:
    """List the apps."""
    with Api() as api:
        apps = api.get("/apps")

    def human() -> None:
        if not apps:
            say("No apps yet. Create one with: overair app create NAME")
            return
        table = new_table("Name", "Platforms", "Distribution", "Deployments")
        for a in apps:
            add_text_row(
                table,
                a["name"],
                ", ".join(a["platforms"]),
                a["distribution"],
                ", ".join(d["name"] for d in a["deployments"]),
            )
        console.print(table)

    emit(json_output, {"apps": [documents.app(a) for a in apps]}, human)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The app to delete.")], yes: Yes = False) -> None:
    """Delete an app with all its deployments and releases."""
    question = f"Delete {name} with all its deployments and releases?"
    remove_confirmed(f"/apps/{quote(name)}", question, f"Removed app {name}.", yes)


@app.command("set-distribution")
def set_distribution(
    name: Annotated[str, typer.Argument(help="The app.")],
    distribution: Annotated[str, typer.Argument(help="hybrid or store-only.")],
    json_output: JsonOutput = False,
) -> None:
    """Switch an app between hybrid (OTA allowed) and store-only updates."""
    with Api() as api:
        updated = api.patch(f"/apps/{quote(name)}", json={"distribution": distribution})
    emit(
        json_output,
        {"app": documents.app(updated)},
        lambda: console.print(f"[green]{updated['name']} is now {updated['distribution']}.[/]"),
    )
