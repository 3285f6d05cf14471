"""``overair access-key …`` and ``overair login``."""

from __future__ import annotations

from typing import Annotated

import typer

from overair.cli import documents
from overair.cli.config import Login, save_login, server_url
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, add_text_row, console, emit, new_table, plain, say, when

app = typer.Typer(help="Create, list and revoke access keys.", no_args_is_help=True)


def login(
    server: Annotated[
        str,
        typer.Option(
            help="The server's URL, e.g. https://ota.example.com or http://127.0.0.1:3000 (a loopback "
            "address may leave out http://)."
        ),
    ],
    access_key: Annotated[
        str, typer.Option("--access-key", help="An access key (overair access-key create).")
    ],
) -> None:
    """Check the key against the server and save both for the next commands."""
    url, note = server_url(server)
    key = access_key.strip()
    if not key:
        raise CliError("--access-key is empty: give the key overair access-key create printed.")
    credentials = Login(server=url, access_key=key, key_source="--access-key")
    with Api(credentials) as api:
        me = api.get("/whoami")
    path = save_login(Login(server=url, access_key=key))
    if note:
        say(f"Note: {note}")
    console.print(
        f"[green]Logged in to {url} as {plain(me['name'])}.[/] Saved in {plain(str(path))}", highlight=False
    )


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. ci or alice.")],
    expires_in_days: Annotated[
        float | None,
        typer.Option(
            "--expires-in-days",
            min=0.001,
            max=36500,
            help="Refuse the key after this many days (the API and the console); default: never.",
        ),
    ] = None,
    app_scope: Annotated[
        list[str] | None, typer.Option("--app", help="Limit the key to this app (repeat for more).")
    ] = None,
    deployment_scope: Annotated[
        list[str] | None,
        typer.Option("--deployment", help="Limit the key's changes to this deployment (repeat for more)."),
    ] = None,
    action_scope: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="Limit the key to this action besides reading (repeat): publish, change-releases, "
            "manage-binaries, manage-deployments, ...",
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Make the key for this account (server admins); default: yours.")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Create a key, limited to some apps, deployments and actions if asked. It is shown once: store it
    now. A key never does more than its account may."""
    body: dict[str, object] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_seconds"] = max(1, round(expires_in_days * 86400))
    for field, values in (("apps", app_scope), ("deployments", deployment_scope), ("actions", action_scope)):
        if values:
            body[field] = values
    if account:
        body["account"] = account
    with Api() as api:
        created = api.post("/access-keys", json=body)

    def human() -> None:
        console.print(f"[green]Created access key {created['name']}:[/]")
        say(created["key"])
        say("It is shown only this once.")
        if created.get("expires_at"):
            say(f"It expires on {when(created['expires_at'])}.")

    emit(json_output, {"access_key": {**documents.access_key(created), "key": created["key"]}}, human)


@app.command("list")
def list_keys(json_output: JsonOutput = False) -> None:
    """List the keys (names and dates; keys themselves are never shown again)."""
    with Api() as api:
        keys = api.get("/access-keys")

    def human() -> None:
        table = new_table("Name", "Created by", "Created", "Last used", "Expires")
        for k in keys:
            add_text_row(
                table,
                k["name"],
                k["created_by"],
                when(k["created_at"]),
                when(k["last_used_at"]) if k["last_used_at"] else "never",
                when(k["expires_at"]) if k.get("expires_at") else "never",
            )
        console.print(table)

    emit(json_output, {"access_keys": [documents.access_key(k) for k in keys]}, human)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key at once."""
    with Api() as api:
        api.delete(f"/access-keys/{quote(name)}")
    console.print(f"[green]Revoked access key {name}.[/]")
