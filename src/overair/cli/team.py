"""``overair account …``, ``overair organisation …``, ``overair collaborator …`` and ``overair app
transfer``: who may do what on which app."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, add_text_row, console, emit, new_table, plain, print_table, say

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
OrganisationArgument = Annotated[str, typer.Argument(help="The organisation.")]


@accounts.command("create")
def create_account(
    name: AccountArgument,
    email: Annotated[str, typer.Option(help="The person's email address.")] = "",
    server_admin: Annotated[
        bool, typer.Option("--server-admin", help="May manage accounts and every app.")
    ] = False,
    json_output: JsonOutput = False,
) -> None:
    """Create an account with its first access key, shown only this once."""
    with Api() as api:
        created = api.post("/accounts", json={"name": name, "email": email, "server_admin": server_admin})

    def human() -> None:
        console.print(
            f"[green]Created account {plain(created['name'])}[/] with the access key:", highlight=False
        )
        say(created["key"])
        say(f"It is shown only this once: give it to {created['name']} (overair login --access-key …).")

    emit(json_output, {"account": documents.account(created)}, human)


@accounts.command("list")
def list_accounts(json_output: JsonOutput = False) -> None:
    """List the accounts."""
    with Api() as api:
        found = api.get("/accounts")

    def human() -> None:
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

    emit(json_output, {"accounts": [documents.account(a) for a in found]}, human)


def _set_disabled(name: str, disabled: bool, json_output: bool) -> None:
    with Api() as api:
        changed = api.patch(f"/accounts/{quote(name)}", json={"disabled": disabled})

    def human() -> None:
        done = "Disabled" if disabled else "Enabled"
        note = ": its keys and console sessions stop working at once." if disabled else "."
        console.print(f"[green]{done} the account {plain(name)}[/]{note}", highlight=False)

    emit(json_output, {"account": documents.account(changed)}, human)


@accounts.command("disable")
def disable_account(name: AccountArgument, json_output: JsonOutput = False) -> None:
    """Disable an account: its keys and console sessions stop working at once."""
    _set_disabled(name, True, json_output)


@accounts.command("enable")
def enable_account(name: AccountArgument, json_output: JsonOutput = False) -> None:
    """Enable a disabled account again."""
    _set_disabled(name, False, json_output)


@accounts.command("show")
def show_account(json_output: JsonOutput = False) -> None:
    """Show the account of the key you are logged in with."""
    with Api() as api:
        me = api.get("/account")
    emit(
        json_output,
        {"account": documents.account(me)},
        lambda: say(f"{me['name']}{' (server admin)' if me['server_admin'] else ''} {me['email']}".strip()),
    )


def _granted(found: dict[str, Any], app: str, json_output: bool) -> None:
    emit(
        json_output,
        {"collaborator": documents.collaborator(found)},
        lambda: console.print(
            f"[green]{plain(found['account'])} is now {plain(found['role'])} of {plain(app)}.[/]",
            highlight=False,
        ),
    )


@collaborators.command("add")
def add_collaborator(
    app: AppOption,
    account: AccountArgument,
    role: Annotated[str, typer.Option(help=f"The role: {ROLES}.")] = "developer",
    json_output: JsonOutput = False,
) -> None:
    """Give an account a role on the app (owners and admins)."""
    with Api() as api:
        added = api.post(f"/apps/{quote(app)}/collaborators", json={"account": account, "role": role})
    _granted(added, app, json_output)


@collaborators.command("set-role")
def set_role(
    app: AppOption,
    account: AccountArgument,
    role: Annotated[str, typer.Argument(help=f"The new role: {ROLES}.")],
    json_output: JsonOutput = False,
) -> None:
    """Change the role an account has on the app (owners and admins)."""
    with Api() as api:
        changed = api.patch(f"/apps/{quote(app)}/collaborators/{quote(account)}", json={"role": role})
    _granted(changed, app, json_output)


@collaborators.command("list")
def list_collaborators(app: AppOption, json_output: JsonOutput = False) -> None:
    """List everyone with a role on the app, and where the role comes from."""
    with Api() as api:
        found = api.get(f"/apps/{quote(app)}/collaborators")

    def human() -> None:
        table = new_table("Account", "Role", "From", "Email")
        for c in found:
            add_text_row(table, c["account"], c["role"], c["source"], c["email"])
        console.print(table)

    emit(json_output, {"collaborators": [documents.collaborator(c) for c in found]}, human)


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
    json_output: JsonOutput = False,
) -> None:
    """Give the app to another account or an organisation (owners); you stay an admin of it."""
    if (to_account is None) == (to_organisation is None):
        raise CliError("Name the new owner with exactly one of --to-account or --to-organisation.")
    body = {"account": to_account} if to_account else {"organisation": to_organisation}
    with Api() as api:
        moved = api.post(f"/apps/{quote(name)}/transfer", json=body)
    emit(
        json_output,
        {"app": documents.app(moved)},
        lambda: console.print(
            f"[green]{plain(name)} now belongs to {plain(moved['owner'])}.[/]", highlight=False
        ),
    )


def _organisation(found: dict[str, Any], message: str, json_output: bool) -> None:
    emit(
        json_output,
        {"organisation": documents.organisation(found)},
        lambda: console.print(f"[green]{plain(message)}[/]", highlight=False),
    )


@organisations.command("create")
def create_organisation(
    name: Annotated[str, typer.Argument(help="The organisation's name.")], json_output: JsonOutput = False
) -> None:
    """Create an organisation; you become its admin."""
    with Api() as api:
        created = api.post("/organisations", json={"name": name})
    _organisation(created, f"Created the organisation {name}; you are its admin.", json_output)


@organisations.command("list")
def list_organisations(json_output: JsonOutput = False) -> None:
    """List the organisations you belong to (a server admin: every one), with their members."""
    with Api() as api:
        found = api.get("/organisations")

    def human() -> None:
        table = new_table("Organisation", "Admins", "Members")
        for o in found:
            roles = {
                role: [m["account"] for m in o["members"] if m["role"] == role]
                for role in ("admin", "member")
            }
            add_text_row(table, o["name"], ", ".join(roles["admin"]), ", ".join(roles["member"]))
        print_table(table, "You belong to no organisation: create one with overair organisation create NAME.")

    emit(json_output, {"organisations": [documents.organisation(o) for o in found]}, human)


@organisations.command("add-member")
def add_member(
    organisation: OrganisationArgument,
    account: AccountArgument,
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    json_output: JsonOutput = False,
) -> None:
    """Add an account to the organisation, or change its role there (organisation admins)."""
    with Api() as api:
        changed = api.post(
            f"/organisations/{quote(organisation)}/members", json={"account": account, "role": role}
        )
    _organisation(changed, f"{account} is {role} of {organisation}.", json_output)


@organisations.command("remove-member")
def remove_member(
    organisation: OrganisationArgument, account: AccountArgument, json_output: JsonOutput = False
) -> None:
    """Take an account out of the organisation (organisation admins; anyone may leave)."""
    with Api() as api:
        changed = api.delete(f"/organisations/{quote(organisation)}/members/{quote(account)}")
    _organisation(changed, f"{account} left {organisation}.", json_output)
