"""A deployment with known device reports, and how each surface shows its failure rates.

``seed_known_reports`` publishes two releases and sends the reports real clients send (overair's engine
through ``/v1/report``, CodePush SDKs through ``report_status``), failures with and without rollbacks
included, so the expected failure rates are known. Each ``*_rates`` reader returns label → rate as one
surface shows it; a test checks that every surface agrees with :func:`overair.metrics.rules.failure_rate`.
Add a reader to :data:`SURFACES` and every test that uses it checks one more surface.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conftest import publish, scrape_headers
from overair.metrics.rules import ReleaseHealth, failure_rate


@dataclass(frozen=True)
class KnownReports:
    """What :func:`seed_known_reports` made and the health each release must show."""

    app: str
    deployment: str
    key: str
    expected: dict[str, ReleaseHealth]
    """Label → its installs and failures (rollbacks are not failures: see ``overair.metrics.rules``)."""
    rollbacks: dict[str, int]


def _native(device: TestClient, key: str, label: str, client: str, *statuses: str) -> None:
    for status in statuses:
        body = {"deployment_key": key, "label": label, "status": status, "client_id": client}
        if status == "failed":
            body["reason"] = "the app did not confirm the update (notify_app_ready)"
        response = device.post("/v1/report", json=body)
        assert response.status_code == 200, response.text


def _codepush(device: TestClient, key: str, label: str, client: str, status: str, previous: str) -> None:
    body = {
        "deploymentKey": key,
        "appVersion": "1.0.0",
        "label": label,
        "status": status,
        "clientUniqueId": client,
        "previousLabelOrAppVersion": previous,
    }
    response = device.post("/v0.1/public/codepush/report_status/deploy", json=body)
    assert response.status_code == 200, response.text


def seed_known_reports(api: TestClient, device: TestClient, app: str = "RateApp") -> KnownReports:
    """``app`` with v1 and v2 on Production and a known mix of native and CodePush reports on both.

    v1: 4 engine installs, 1 engine update never confirmed (failed + rolled_back), 1 refused download
    (failed), 2 CodePush DeploymentSucceeded, 1 CodePush DeploymentFailed: 6 installs, 3 failures, 1 rollback.
    v2: 1 engine install, 1 engine update never confirmed: 1 install, 1 failure, 1 rollback.
    """
    created = api.post("/api/v1/apps", json={"name": app})
    assert created.status_code == 201, created.text
    for text in ("one", "two"):
        assert publish(api, app, description=text).status_code == 201
    key = next(d["key"] for d in created.json()["deployments"] if d["name"] == "Production")

    for n in range(1, 5):
        _native(device, key, "v1", f"phone-{n}", "downloaded", "installed")
    _native(device, key, "v1", "phone-5", "downloaded", "failed", "rolled_back")  # engine: trial rollback
    _native(device, key, "v1", "phone-6", "failed")  # engine: a refused download
    for client in ("cp-1", "cp-2"):
        _codepush(device, key, "v1", client, "DeploymentSucceeded", "1.0.0")
    _codepush(device, key, "v1", "cp-3", "DeploymentFailed", "1.0.0")

    _native(device, key, "v2", "phone-1", "downloaded", "installed")
    _native(device, key, "v2", "phone-2", "downloaded", "failed", "rolled_back")
    return KnownReports(
        app=app,
        deployment="Production",
        key=key,
        expected={"v1": ReleaseHealth(installs=6, failures=3), "v2": ReleaseHealth(installs=1, failures=1)},
        rollbacks={"v1": 1, "v2": 1},
    )


def api_rates(api: TestClient, device: TestClient, known: KnownReports) -> dict[str, float]:
    """The management API's metrics: ``failure_rates``, checked against each label's ``failure_rate``."""
    path = f"/api/v1/apps/{known.app}/deployments/{known.deployment}/metrics"
    body = api.get(path).json()
    per_label = {entry["label"]: entry["failure_rate"] for entry in body["labels"]}
    assert per_label == body["failure_rates"]
    return dict(body["failure_rates"])


def prometheus_rates(api: TestClient, device: TestClient, known: KnownReports) -> dict[str, float]:
    """``overair_release_failure_ratio`` of the deployment, from a scrape of ``/metrics``."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(device.get("/metrics", headers=scrape_headers(device)).text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "overair_release_failure_ratio" and (labels["app"], labels["deployment"]) == (
                known.app,
                known.deployment,
            ):
                found[labels["label"]] = sample.value
    return found


def console_rates(api: TestClient, device: TestClient, known: KnownReports) -> dict[str, float]:
    """Each release page of the console: its "Failure rate" line, as a share (the page shows a percentage
    to one decimal, so the value is rounded that way)."""
    key = api.headers["Authorization"].removeprefix("Bearer ")
    found: dict[str, float] = {}
    with TestClient(api.app, base_url="http://testserver", follow_redirects=False) as console:
        assert console.post("/console/sign-in", data={"access_key": key}).status_code == 303
        for label in known.expected:
            page = console.get(f"/console/apps/{known.app}/deployments/{known.deployment}/releases/{label}")
            assert page.status_code == 200, page.text
            shown = re.search(r"<dt>Failure rate</dt><dd>([\d.]+)%", page.text)
            assert shown, "no failure rate on the release page"
            charted = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text)
            assert charted, "no failure-rate chart on the release page"
            rate_chart = json.loads(html.unescape(charted.group(1)))["rate"]
            assert rate_chart["series"][0]["values"][-1] == float(shown.group(1))  # the chart agrees
            found[label] = float(shown.group(1)) / 100
    return found


def codepush_rates(api: TestClient, device: TestClient, known: KnownReports) -> dict[str, float]:
    """The CodePush management dialect's ``GET …/metrics``, turned into rates by the one rule: its ``failed``
    must be the release's failures (not failures + rollbacks) for this to agree."""
    found = api.get(f"/apps/{known.app}/deployments/{known.deployment}/metrics").json()["metrics"]
    return {
        label: failure_rate(installs=counts["installed"], failures=counts["failed"])
        for label, counts in found.items()
    }


Reader = Callable[[TestClient, TestClient, KnownReports], dict[str, float]]

SURFACES: dict[str, tuple[Reader, int]] = {
    "management API": (api_rates, 15),
    "/metrics": (prometheus_rates, 15),
    "console release page": (console_rates, 3),
    "CodePush management": (codepush_rates, 15),
}
"""Surface → (its reader, the decimal places it shows the rate with)."""
