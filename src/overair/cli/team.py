"""``overair account …``, ``overair organisation …``, ``overair collaborator …`` and ``overair app
transfer``: who may do what on which app."""

from __future__ import annotations

from typing import Annotated

import typer

from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import add_text_row, console, new_table, plain, say

accounts = typer.Typer(
    help="Create, list, disable and enable accounts (server admins).", no_args_is_help=True
)
organisations = typer.Typer(help="Create organisations and manage their members.", no_args_is_help=True)
collaborators = typer.Typer(
    help="Give accounts roles on an app, list them, take them away.", no_args_is_help=True
)

ROLES = "owner, admin, release-manager, developer or viewer"
AppOption = Annotated[str, typer.Option("--app", help="The app.")]
AccountArgument = Annotated[str, typer.Argument(help="The account's name.")]


@accounts.command("create")
def create_account(
    name: AccountArgument,
    email: Annotated[str, typer.Option(help="The person's email address.")] = "",
    server_admin: Annotated[
        bool, typer.Option("--server-admin", help="May manage accounts and every app.")
    ] = False,
) -> None:
    """Create an account with its first access key, shown only this once."""
    with Api() as api:
        created = api.post("/accounts", json={"name": name, "email": email, "server_admin": server_admin})

    console.print(f"[green]Created account {plain(created['name'])}[/] with the access key:", highlight=False)
    say(created["key"])
    say(f"It is shown only this once: give it to {created['name']} (overair login --access-key …).")


@accounts.command("list")
def list_accounts() -> None:
    """List the accounts."""
    with Api() as api:
        found = api.get("/accounts")

    table = new_table("Account", "Email", "Server admin", "State")
    for a in found:
        add_text_row(
            table,
            a["name"],
            a["email"],
            "yes" if a["server_admin"] else "",
            "disabled" if a["disabled"] else "enabled",
        )
    console.print(table)


def _set_disabled(name: str, disabled: bool) -> None:
    with Api() as api:
        api.patch(f"/accounts/{quote(name)}", json={"disabled": disabled})
    done = "Disabled" if disabled else "Enabled"
    note = ": its keys and console sessions stop working at once." if disabled else "."
    console.print(f"[green]{done} the account {plain(name)}[/]{note}", highlight=False)


@accounts.command("disable")
def disable_account(name: AccountArgument) -> None:
    """Disable an account: its keys and console sessions stop working at once."""
    _set_disabled(name, True)


@accounts.command("enable")
def enable_account(name: AccountArgument) -> None:
    """Enable a disabled account again."""
    _set_disabled(name, False)


@accounts.command("show")
def show_account() -> None:
    """Show the account of the key you are logged in with."""
    with Api() as api:
        me = api.get("/account")
    say(f"{me['name']}{' (server admin)' if me['server_admin'] else ''} {me['email']}".strip())


@collaborators.command("add")
def add_collaborator(
    app: AppOption,
    account: AccountArgument,
    role: Annotated[str, typer.Option(help=f"The role: {ROLES}.")] = "developer",
) -> None:
    """Give an account a role on the app (owners and admins)."""
    with Api() as api:
        api.post(f"/apps/{quote(app)}/collaborators", json={"account": account, "role": role})
    console.print(f"[green]{plain(account)} is now {plain(role)} of {plain(app)}.[/]", highlight=False)


@collaborators.command("set-role")
def set_role(
    app: AppOption,
    account: AccountArgument,
    role: Annotated[str, typer.Argument(help=f"The new role: {ROLES}.")],
) -> None:
    """Change the role an account has on the app (owners and admins)."""
    with Api() as api:
        api.patch(f"/apps/{quote(app)}/collaborators/{quote(account)}", json={"role": role})
    console.print(f"[green]{plain(account)} is now {plain(role)} of {plain(app)}.[/]", highlight=False)


@collaborators.command("list")
def list_collaborators(app: AppOption) -> None:
    """List everyone with a role on the app, and where the role comes from."""
    with Api() as api:
        found = api.get(f"/apps/{quote(app)}/collaborators")

    table = new_table("Account", "Role", "From", "Email")
    for c in found:
        add_text_row(table, c["account"], c["role"], c["source"], c["email"])
    console.print(table)


@collaborators.command("remove")
def remove_collaborator(app: AppOption, account: AccountArgument) -> None:
    """Take an account's role on the app away (owners and admins; anyone may leave an app)."""
    with Api() as api:
        api.delete(f"/apps/{quote(app)}/collaborators/{quote(account)}")
    console.print(f"[green]{plain(account)} is no longer a collaborator of {plain(app)}.[/]", highlight=False)


def transfer(
    name: Annotated[str, typer.Argument(help="The app.")],
    to_account: Annotated[str | None, typer.Option("--to-account", help="The new owning account.")] = None,
    to_organisation: Annotated[
        str | None, typer.Option("--to-organisation", help="The new owning organisation (you are a member).")
    ] = None,
) -> None:
    """Give the app to another account or an organisation (owners); you stay an admin of it."""
    if (to_account is None) == (to_organisation is None):
        raise CliError("Name the new owner with exactly one of --to-account or --to-organisation.")
    body = {"account": to_account} if to_account else {"organisation": to_organisation}
    with Api() as api:
        moved = api.post(f"/apps/{quote(name)}/transfer", json=body)
    console.print(f"[green]{plain(name)} now belongs to {plain(moved['owner'])}.[/]", highlight=False)


@organisations.command("create")
def create_organisation(name: Annotated[str, typer.Argument(help="The organisation's name.")]) -> None:
    """Create an organisation; you become its admin."""
    with Api() as api:
        api.post("/organisations", json={"name": name})
    console.print(f"[green]Created the organisation {plain(name)}; you are its admin.[/]", highlight=False)


@organisations.command("add-member")
def add_member(
    organisation: Annotated[str, typer.Argument(help="The organisation.")],
    account: AccountArgument,
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
) -> None:
    """Add an account to the organisation, or change its role there (organisation admins)."""
    with Api() as api:
        api.post(f"/organisations/{quote(organisation)}/members", json={"account": account, "role": role})
    console.print(f"[green]{plain(account)} is {plain(role)} of {plain(organisation)}.[/]", highlight=False)


@organisations.command("remove-member")
def remove_member(
    organisation: Annotated[str, typer.Argument(help="The organisation.")], account: AccountArgument
) -> None:
    """Take an account out of the organisation (organisation admins; anyone may leave)."""
    with Api() as api:
        api.delete(f"/organisations/{quote(organisation)}/members/{quote(account)}")
    console.print(f"[green]{plain(account)} left {plain(organisation)}.[/]", highlight=False)
