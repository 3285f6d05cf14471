"""``overair access-key …`` and ``overair login``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from overair.cli.config import Login, save_login
from overair.cli.http import Api, quote
from overair.cli.output import add_text_row, console, when

app = typer.Typer(help="Create, list and revoke access keys.", no_args_is_help=True)


def login(
    server: Annotated[str, typer.Option(help="The server's URL, e.g. http://127.0.0.1:3000")],
    access_key: Annotated[
        str, typer.Option("--access-key", help="An access key (overair access-key create).")
    ],
) -> None:
    """Check the key against the server and save both for the next commands."""
    credentials = Login(server=server.rstrip("/"), access_key=access_key.strip())
    with Api(credentials) as api:
        me = api.get("/whoami")
    path = save_login(credentials)
    console.print(f"[green]Logged in to {credentials.server} as {me['name']}.[/] Saved in {path}")


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
) -> None:
    """Create a key. It is shown once: store it now."""
    body: dict[str, object] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_seconds"] = max(1, round(expires_in_days * 86400))
    with Api() as api:
        created = api.post("/access-keys", json=body)
    console.print(f"[green]Created access key {created['name']}:[/]")
    console.print(created["key"], soft_wrap=True, highlight=False)
    console.print("It is shown only this once.")
    if created.get("expires_at"):
        console.print(f"It expires on {when(created['expires_at'])}.")


@app.command("list")
def list_keys() -> None:
    """List the keys (names and dates; keys themselves are never shown again)."""
    with Api() as api:
        keys = api.get("/access-keys")
    table = Table("Name", "Created by", "Created", "Last used", "Expires")
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


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key at once."""
    with Api() as api:
        api.delete(f"/access-keys/{quote(name)}")
    console.print(f"[green]Revoked access key {name}.[/]")
