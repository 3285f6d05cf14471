"""``overair webhook …``: add, list, test and remove an app's webhooks, and read their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.apps import Yes, remove_confirmed
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, add_text_row, console, emit, new_table, plain, print_table, when

app = typer.Typer(
    help="Post signed events of an app (release published, rollout steps…) to URLs; see docs/webhooks.md.",
    no_args_is_help=True,
)

App = Annotated[str, typer.Argument(help="The app, e.g. CoolApp.")]
Hook = Annotated[int, typer.Argument(help="The webhook's id (see `overair webhook list`).")]
EVENTS_HELP = (
    "An event to send (repeat): release.published, rollout.step, rollout.paused, rollout.halted, "
    "rollout.rolled_back, rollout.promoted, rollout.completed."
)


def _path(app_name: str, hook: int | None = None) -> str:
    base = f"/apps/{quote(app_name)}/webhooks"
    return base if hook is None else f"{base}/{hook}"


def _delivery_line(d: dict[str, Any]) -> str:
    answer = f"HTTP {d['last_status_code']}" if d.get("last_status_code") is not None else "no answer"
    text = f"delivery {d['id']} ({d['event']}): {d['status']} after {d['attempts']} attempt(s), {answer}"
    if d.get("last_error"):
        text += f": {d['last_error']}"
    return text


@app.command("add")
def add(
    app_name: App,
    url: Annotated[
        str, typer.Argument(help="Where to post: an http or https URL (redirects are not followed).")
    ],
    event: Annotated[list[str], typer.Option("--event", help=EVENTS_HELP)],
    format_: Annotated[
        str,
        typer.Option(
            "--format", help='json (the signed event document) or slack ({"text": …} for chat webhooks).'
        ),
    ] = "json",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    json_output: JsonOutput = False,
) -> None:
    """Add a webhook and print its signing secret, which is shown this once."""
    body = {"url": url, "events": event, "format": format_, "enabled": not disabled}
    with Api() as api:
        created: dict[str, Any] = api.post(_path(app_name), json=body)

    def human() -> None:
        console.print(
            f"[green]Added webhook {created['id']}[/] to {plain(app_name)}: {plain(created['url'])} "
            f"({', '.join(created['events'])}; {created['format']}).",
            highlight=False,
        )
        console.print(
            f"Secret (shown once; deliveries are signed with it): {created['secret']}", highlight=False
        )

    emit(json_output, {"app": app_name, "webhook": documents.webhook(created, secret=True)}, human)


@app.command("list")
def list_webhooks(app_name: App, json_output: JsonOutput = False) -> None:
    """Show the app's webhooks: id, URL, events, format, enabled."""
    with Api() as api:
        hooks: list[dict[str, Any]] = api.get(_path(app_name))

    def human() -> None:
        table = new_table("Id", "URL", "Events", "Format", "Enabled", numeric=("Id",))
        for hook in hooks:
            add_text_row(
                table,
                str(hook["id"]),
                hook["url"],
                ", ".join(hook["events"]),
                hook["format"],
                "yes" if hook["enabled"] else "no",
            )
        print_table(table, f"{app_name} has no webhooks.")

    emit(json_output, {"app": app_name, "webhooks": [documents.webhook(h) for h in hooks]}, human)


@app.command("remove")
def remove(app_name: App, hook: Hook, yes: Yes = False) -> None:
    """Remove a webhook and its delivery log."""
    question = f"Remove webhook {hook} of {app_name} and its delivery log?"
    remove_confirmed(_path(app_name, hook), question, f"Removed webhook {hook}.", yes)


@app.command("deliveries")
def deliveries(
    app_name: App,
    hook: Hook,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many.")] = 50,
    json_output: JsonOutput = False,
) -> None:
    """Show a webhook's deliveries, newest first: event, status, attempts, last answer or error, times."""
    with Api() as api:
        log: list[dict[str, Any]] = api.get(f"{_path(app_name, hook)}/deliveries", params={"limit": limit})

    def human() -> None:
        table = new_table(
            "Id",
            "Event",
            "Status",
            "Attempts",
            "Last answer",
            "Created",
            "Next try",
            numeric=("Id", "Attempts"),
        )
        for d in log:
            answer = str(d["last_status_code"]) if d["last_status_code"] is not None else "-"
            if d["last_error"]:
                answer = f"{answer}: {d['last_error']}" if answer != "-" else d["last_error"]
            add_text_row(
                table,
                str(d["id"]),
                d["event"],
                d["status"],
                str(d["attempts"]),
                answer,
                when(d["created_at"]),
                when(d["next_attempt_at"]) if d["next_attempt_at"] else "-",
            )
        print_table(table, f"No deliveries to webhook {hook} yet.")

    emit(json_output, {"app": app_name, "deliveries": [documents.delivery(d) for d in log]}, human)


@app.command("test")
def test(app_name: App, hook: Hook, json_output: JsonOutput = False) -> None:
    """Send a webhook.test event to the webhook now, once, and say how the receiver answered.

    Exits 1 when the receiver did not accept it."""
    with Api() as api:
        tried: dict[str, Any] = api.post(f"{_path(app_name, hook)}/test")

    def human() -> None:
        colour = "green" if tried["status"] == "delivered" else "red"
        console.print(f"[{colour}]{plain(_delivery_line(tried))}[/]", highlight=False)

    emit(json_output, {"app": app_name, "delivery": documents.delivery(tried)}, human)
    if tried["status"] != "delivered":
        raise typer.Exit(1)
