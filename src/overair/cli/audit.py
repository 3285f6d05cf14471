"""``overair audit``: who changed what, when, through which key and from where (the server's audit log)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.errors import CliError
from overair.cli.http import Api
from overair.cli.output import JsonOutput, add_text_row, emit, new_table, print_table, say, when

_AGO = re.compile(r"([0-9]{1,6})\s*(m|min|h|d|w)")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def moment(value: str, option: str, now: dt.datetime | None = None) -> str:
    """``--since``/``--until`` as the ISO 8601 time the server takes: a time or date (``2026-12-01``,
    ``2026-12-01T10:00``, UTC unless it says otherwise) or how long ago (``90m``, ``24h``, ``7d``, ``2w``)."""
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        seconds = int(ago.group(1)) * _UNITS[ago.group(2)]
        return ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)).isoformat()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {value!r} is not a time: give a date or time like 2026-12-01 or 2026-12-01T10:00 "
            "(UTC), or how long ago, like 90m, 24h, 7d or 2w."
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).isoformat()


def subject(event: dict[str, Any]) -> str:
    """Where a change happened: ``CoolApp/Production v3``, ``CoolApp 1.0.0``, ``ci`` (an access key)."""
    where = "/".join(str(event[k]) for k in ("app", "deployment") if event.get(k))
    return " ".join(str(part) for part in (where, event.get("label"), event.get("item")) if part)


def who(event: dict[str, Any]) -> str:
    """Who acted: ``olivia (key ci)``, or the key's name alone when no account is recorded."""
    account = event.get("account")
    return f"{account} (key {event['actor']})" if account else str(event["actor"])


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def change(event: dict[str, Any]) -> str:
    """The changed fields, ``rollout: 30 → 60``; a creation's or removal's fields alone."""
    before, after = event.get("before") or {}, event.get("after") or {}
    parts = []
    for key in dict.fromkeys([*before, *after]):
        if key in before and key in after:
            parts.append(f"{key}: {_shown(before[key])} → {_shown(after[key])}")
        else:
            parts.append(f"{key}: {_shown(after[key] if key in after else before[key])}")
    return "; ".join(parts) or "-"


def show_audit(
    project_name: Annotated[
        str | None, typer.Option("--project-name", help="Only changes of this app.")
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="Only changes of this deployment (with --project-name)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only changes made with this access key.")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only changes made by this account (any of its keys).")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action", help="Only this action (release.publish) or every action on a subject (release)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only changes at or after this time: 2026-12-01, 2026-12-01T10:00, 24h, 7d."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only changes before this time (as --since).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many changes.")] = 50,
    cursor: Annotated[
        int | None, typer.Option("--cursor", min=1, help="The page after the one that printed this cursor.")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """List recorded changes, newest first: when, who, through which surface, what, and what changed.

    The changes of an app need the right to read it; those of no app (access keys) an administrator's key.
    """
    if deployment is not None and project_name is None:
        raise CliError("--deployment needs --project-name: a deployment name is only unique within its app.")
    params: dict[str, Any] = {
        "app": project_name,
        "deployment": deployment,
        "actor": actor,
        "account": account,
        "action": action,
        "since": moment(since, "--since") if since is not None else None,
        "until": moment(until, "--until") if until is not None else None,
        "cursor": cursor,
        "limit": limit,
    }
    with Api() as api:
        page: dict[str, Any] = api.get("/audit", params={k: v for k, v in params.items() if v is not None})
    events: list[dict[str, Any]] = page["events"]

    def human() -> None:
        table = new_table("When", "Actor", "Surface", "Action", "Subject", "Change")
        for event in events:
            add_text_row(
                table,
                when(event["at"]),
                who(event),
                event["surface"],
                event["action"],
                subject(event) or "-",
                change(event),
            )
        print_table(table, "No recorded changes match.")
        if page.get("next_cursor"):
            say(f"More: add --cursor {page['next_cursor']} for the next {limit}.")

    emit(
        json_output,
        {"events": [documents.audit_event(e) for e in events], "next_cursor": page.get("next_cursor")},
        human,
    )
