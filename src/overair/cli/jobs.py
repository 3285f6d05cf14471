"""``overair jobs``: the background work of every host (diff and delta builds, metrics pruning)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.http import Api
from overair.cli.output import JsonOutput, add_text_row, emit, new_table, print_table


class State(StrEnum):
    """The states a job can be in (as the server names them)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def age(created_at: str, now: dt.datetime | None = None) -> str:
    """How long ago a job was queued: ``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    try:
        created = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def show_jobs(
    state: Annotated[
        State | None,
        typer.Option(
            "--state",
            case_sensitive=False,
            help="Only jobs in this state: queued, running, done or failed (failed: given up after "
            "their last attempt).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many jobs.")] = 50,
    json_output: JsonOutput = False,
) -> None:
    """List recent background jobs of every host, newest first: kind, state, attempts, last error, age.

    Needs an administrator's access key.
    """
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = state.value
    with Api() as api:
        jobs: list[dict[str, Any]] = api.get("/jobs", params=params)

    def human() -> None:
        table = new_table("Kind", "Key", "State", "Attempts", "Age", "Last error", numeric=("Attempts",))
        for job in jobs:
            add_text_row(
                table,
                job["kind"],
                job["key"],
                job["state"],
                str(job["attempts"]),
                age(job["created_at"]),
                job["last_error"] or "-",
            )
        print_table(table, "No jobs" + (f" in state {state.value}." if state else "."))

    emit(json_output, {"jobs": [documents.job(j) for j in jobs]}, human)
