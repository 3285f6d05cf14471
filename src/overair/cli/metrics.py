"""``overair metrics``: how a deployment's releases do on devices, from the server's metrics.

Also the helpers ``release list`` and ``push-update`` read the same metrics with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, Project, add_text_row, console, emit, new_table, say, when

Deployment = Annotated[str, typer.Option("--deployment", help="The deployment.")]
OldestFirst = Annotated[
    bool, typer.Option("--oldest-first", help="List releases oldest first (the default is newest first).")
]


def deployment_metrics(api: Api, project_name: str, deployment: str, hours: int = 1) -> dict[str, Any]:
    """The server's metrics of a deployment (``GET …/metrics``)."""
    body: dict[str, Any] = api.get(
        f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/metrics", params={"hours": hours}
    )
    return body


def by_label(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each release's metrics (active devices, failure rate, last failure) by label."""
    return {str(m["label"]): dict(m) for m in metrics.get("labels", []) if isinstance(m, Mapping)}


def failure_rate(m: Mapping[str, Any] | None) -> str:
    """The failure rate as a percentage, ``-`` before any install attempt was reported."""
    if not m or not (int(m.get("installs", 0)) + int(m.get("failures", 0))):
        return "-"
    return f"{float(m.get('failure_rate', 0.0)) * 100:.1f}%"


def last_failures(releases: list[Mapping[str, Any]]) -> None:
    """One line per release that reported a failure: its reason and when."""
    for m in releases:
        if m.get("last_failure"):
            at = f" ({when(m['last_failure_at'])})" if m.get("last_failure_at") else ""
            say(f"{m['label']} last failed: {m['last_failure']}{at}")


def show_metrics(
    project_name: Project,
    deployment: Deployment = "Production",
    hours: Annotated[
        int,
        typer.Option(
            "--hours",
            min=1,
            help="Hours of hourly series in --json, the current one included (at most 2160).",
        ),
    ] = 24,
    oldest_first: OldestFirst = False,
    json_output: JsonOutput = False,
) -> None:
    """Show how each release of a deployment does on devices.

    For each release: active devices now, downloads, installs, failures, failure rate (failures / (installs
    + failures)) and rollbacks, and the last failure's reason.
    """
    with Api() as api:
        body = deployment_metrics(api, project_name, deployment, hours)
    labels = list(body.get("labels", []))
    if not oldest_first:
        labels.reverse()

    def human() -> None:
        if not labels:
            say(f"{deployment} of {project_name} has no release yet: no metrics.")
            return
        numbers = ("Active devices", "Downloads", "Installs", "Failures", "Failure rate", "Rollbacks")
        table = new_table(
            "Label",
            "Target",
            "Rollout",
            "Status",
            *numbers,
            title=f"{project_name} / {deployment}",
            numeric=numbers,
        )
        for m in labels:
            add_text_row(
                table,
                m["label"],
                m["target_version"],
                f"{m['rollout']}%",
                "disabled" if m["disabled"] else "enabled",
                str(m["active"]),
                str(m["downloads"]),
                str(m["installs"]),
                str(m["failures"]),
                failure_rate(m),
                str(m["rollbacks"]),
            )
        console.print(table)
        last_failures(labels)

    releases = [
        {
            "label": m["label"],
            "target_version": m["target_version"],
            "rollout": m["rollout"],
            "disabled": m["disabled"],
            "downloads": m["downloads"],
            "installs": m["installs"],
            "failures": m["failures"],
            "rollbacks": m["rollbacks"],
            **documents.health(m),
        }
        for m in labels
    ]
    hourly = [
        {k: p.get(k) for k in ("hour", "label", "downloads", "installs", "failures", "rollbacks", "active")}
        for p in body.get("series", [])
    ]
    emit(
        json_output,
        {
            "app": project_name,
            "deployment": deployment,
            "hours": hours,
            "releases": releases,
            "hourly": hourly,
        },
        human,
    )
