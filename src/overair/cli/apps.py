"""``overair app …``: create, list and remove apps; switch distribution mode."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from overair.cli.http import Api, quote
from overair.cli.output import add_text_row, console

app = typer.Typer(help="Create, list and remove apps.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The app's name, e.g. CoolApp.")],
    platform: Annotated[
        list[str] | None, typer.Option("--platform", help="ios and/or android (repeat); default both.")
    ] = None,
    distribution: Annotated[
        str, typer.Option(help="hybrid (OTA updates allowed) or store-only (every change via the stores).")
    ] = "hybrid",
) -> None:
    """Create an app with the deployments Production and Staging, and show their keys."""
    body: dict[str, object] = {"name": name, "distribution": distribution}
    if platform:
        body["platforms"] = [p.lower() for p in platform]
    with Api() as api:
        created = api.post("/apps", json=body)
    console.print(
        f"[green]Created app {created['name']}[/] ({', '.join(created['platforms'])}, "
        f"{created['distribution']})."
    )
    _print_deployments(created["deployments"])
    console.print(
        f'Next: overair release push-update --project-name "{created["name"]}" --target-version 1.0.0 '
        "--bundle PATH"
    )


def _print_deployments(deployments: list[dict[str, str]]) -> None:
    table = Table("Deployment", "Key", "Latest release")
    for d in deployments:
        add_text_row(table, d["name"], d["key"], d.get("latest_label") or "-")
    console.print(table)


@app.command("list")
def list_apps() -> None:
    """List the apps."""
    with Api() as api:
        apps = api.get("/apps")
    if not apps:
        console.print("No apps yet. Create one with: overair app create NAME")
        return
    table = Table("Name", "Platforms", "Distribution", "Deployments")
    for a in apps:
        add_text_row(
            table,
            a["name"],
            ", ".join(a["platforms"]),
            a["distribution"],
            ", ".join(d["name"] for d in a["deployments"]),
        )
    console.print(table)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The app to delete.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an app with all its deployments and releases."""
    if not yes and not typer.confirm(f"Delete {name} with all its deployments and releases?"):
        raise typer.Exit(1)
    with Api() as api:
        api.delete(f"/apps/{quote(name)}")
    console.print(f"[green]Removed app {name}.[/]")


@app.command("set-distribution")
def set_distribution(
    name: Annotated[str, typer.Argument(help="The app.")],
    distribution: Annotated[str, typer.Argument(help="hybrid or store-only.")],
) -> None:
    """Switch an app between hybrid (OTA allowed) and store-only updates."""
    with Api() as api:
        updated = api.patch(f"/apps/{quote(name)}", json={"distribution": distribution})
    console.print(f"[green]{updated['name']} is now {updated['distribution']}.[/]")
