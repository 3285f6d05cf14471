"""``overair deployment …``: list, add, rename and remove deployments."""

from __future__ import annotations

from typing import Annotated

import typer

from overair.cli import documents, rollouts
from overair.cli.apps import Yes, print_deployments, remove_confirmed
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, console, emit

app = typer.Typer(help="List, add, rename and remove an app's deployments.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project-name", help="The app, e.g. CoolApp.")]


@app.command("list")
def list_deployments(project_name: Project, json_output: JsonOutput = False) -> None:
    """Show the app's deployments and their keys."""
    with Api() as api:
        deployments = api.get(f"/apps/{quote(project_name)}/deployments")
    emit(
        json_output,
        {"app": project_name, "deployments": [documents.deployment(d) for d in deployments]},
        lambda: print_deployments(deployments),
    )


@app.command("add")
def add(
    project_name: Project,
    name: Annotated[str, typer.Argument(help="The new deployment's name.")],
    key: Annotated[
        str | None,
        typer.Option(
            help="Use this deployment key (to keep the keys of apps moved from elsewhere): 10-100 letters, "
            "digits, '_' or '-'."
        ),
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Add a deployment."""
    body = {"name": name, **({"key": key} if key else {})}
    with Api() as api:
        created = api.post(f"/apps/{quote(project_name)}/deployments", json=body)
    emit(
        json_output,
        {"app": project_name, "deployment": documents.deployment(created)},
        lambda: console.print(
            f"[green]Added deployment {created['name']}[/] with key {created['key']}", highlight=False
        ),
    )


@app.command("rename")
def rename(
    project_name: Project,
    name: Annotated[str, typer.Argument(help="The deployment's current name.")],
    new_name: Annotated[str, typer.Argument(help="Its new name.")],
) -> None:
    """Rename a deployment; its key does not change."""
    with Api() as api:
        api.patch(f"/apps/{quote(project_name)}/deployments/{quote(name)}", json={"name": new_name})
    console.print(f"[green]Renamed {name} to {new_name}.[/]")


@app.command("remove")
def remove(
    project_name: Project,
    name: Annotated[str, typer.Argument(help="The deployment to delete.")],
    yes: Yes = False,
) -> None:
    """Delete a deployment and its releases."""
    path = f"/apps/{quote(project_name)}/deployments/{quote(name)}"
    question = f"Delete deployment {name} of {project_name} and its releases?"
    remove_confirmed(path, question, f"Removed deployment {name}.", yes)


# guarded rollouts (overair.cli.rollouts)
app.command("show-rollout-policy")(rollouts.show_policy)
app.command("set-rollout-policy")(rollouts.set_policy)
app.command("remove-rollout-policy")(rollouts.remove_policy)
