"""Simulated devices (reports sent with ``Overair-Simulated: 1``) are counted apart: no production number
moves (release counters, failure rates, series, active devices, Prometheus), the rehearsal route shows
them, and removing a rehearsal's traces leaves real devices' numbers as they were."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conftest import publish, scrape_headers

DEPLOYMENT = "/api/v1/apps/CoolApp/deployments/Production"
SIMULATED = {"Overair-Simulated": "1"}


@pytest.fixture
def key(api: TestClient) -> str:
    """CoolApp with v1 and v2 on Production; the Production key."""
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    for text in ("one", "two"):
        assert publish(api, description=text).status_code == 201
    return next(
        d["key"] for d in api.get("/api/v1/apps/CoolApp/deployments").json() if d["name"] == "Production"
    )


def report(device: TestClient, key: str, label: str, status: str, client_id: str, *, simulated: bool) -> None:
    body = {"deployment_key": key, "label": label, "status": status, "client_id": client_id}
    response = device.post("/v1/report", json=body, headers=SIMULATED if simulated else {})
    assert response.status_code == 200, response.text


def a_fleet(device: TestClient, key: str, prefix: str, *, simulated: bool) -> None:
    """Three devices install v1; one of them takes v2, which fails and rolls back."""
    for n in range(3):
        report(device, key, "v1", "downloaded", f"{prefix}{n}", simulated=simulated)
        report(device, key, "v1", "installed", f"{prefix}{n}", simulated=simulated)
    report(device, key, "v2", "downloaded", f"{prefix}0", simulated=simulated)
    report(device, key, "v2", "failed", f"{prefix}0", simulated=simulated)
    report(device, key, "v2", "rolled_back", f"{prefix}0", simulated=simulated)


def production(api: TestClient) -> dict[str, Any]:
    """Every production number a user sees: release counters, metrics route, Prometheus."""
    releases = api.get(f"{DEPLOYMENT}/releases").json()
    metrics = api.get(f"{DEPLOYMENT}/metrics").json()
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(api.get("/metrics", headers=scrape_headers(api)).text)
        if family.name.startswith("overair_")
        for s in family.samples
    }
    return {
        "counters": {
            r["label"]: (r["downloads"], r["installs"], r["failures"], r["rollbacks"]) for r in releases
        },
        "series": [(p["label"], p["downloads"], p["installs"], p["active"]) for p in metrics["series"]],
        "active": metrics["active_devices"],
        "failure_rates": metrics["failure_rates"],
        "labels_active": {r["label"]: r["active"] for r in metrics["labels"]},
        "prometheus": scraped,
    }


def rehearsal(api: TestClient) -> dict[str, Any]:
    response = api.get(f"{DEPLOYMENT}/rehearsal")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_simulated_devices_never_move_a_production_number(
    api: TestClient, device: TestClient, key: str
) -> None:
    untouched = production(api)
    assert untouched["counters"] == {"v1": (0, 0, 0, 0), "v2": (0, 0, 0, 0)}

    a_fleet(device, key, "sim-", simulated=True)

    assert production(api) == untouched
    seen = rehearsal(api)
    assert (seen["app"], seen["deployment"], seen["devices"], seen["reports"]) == (
        "CoolApp",
        "Production",
        3,
        9,
    )
    v1, v2 = seen["releases"]
    assert (v1["label"], v1["downloads"], v1["installs"], v1["active"], v1["failure_rate"]) == (
        "v1",
        3,
        3,
        3,
        0.0,
    )
    assert (v2["label"], v2["downloads"], v2["failures"], v2["rollbacks"], v2["active"]) == ("v2", 1, 1, 1, 0)
    assert v2["failure_rate"] == 1.0 and v2["rollout"] == 100


def test_real_devices_count_as_before_next_to_a_rehearsal(
    api: TestClient, device: TestClient, key: str
) -> None:
    a_fleet(device, key, "real-", simulated=False)
    real_only = production(api)
    assert real_only["counters"] == {"v1": (3, 3, 0, 0), "v2": (1, 0, 1, 1)}
    assert real_only["active"] == {"v1": 3}

    # the same fleet simulated, even with the real devices' ids: the production numbers stay the same
    a_fleet(device, key, "real-", simulated=True)
    a_fleet(device, key, "sim-", simulated=True)
    assert production(api) == real_only
    assert rehearsal(api)["devices"] == 6


def test_removing_a_rehearsal_leaves_the_real_devices(api: TestClient, device: TestClient, key: str) -> None:
    a_fleet(device, key, "real-", simulated=False)
    a_fleet(device, key, "sim-", simulated=True)
    before = production(api)

    removed = api.delete(f"{DEPLOYMENT}/rehearsal")

    assert removed.status_code == 200, removed.text
    assert removed.json() == {"app": "CoolApp", "deployment": "Production", "devices": 3, "reports": 9}
    after = rehearsal(api)
    assert (after["devices"], after["reports"]) == (0, 0)
    assert all((r["downloads"], r["installs"], r["active"]) == (0, 0, 0) for r in after["releases"])
    assert production(api) == before
    again = api.delete(f"{DEPLOYMENT}/rehearsal").json()
    assert (again["devices"], again["reports"]) == (0, 0)


def test_a_simulated_report_is_checked_like_any_other(api: TestClient, device: TestClient, key: str) -> None:
    body = {"deployment_key": key, "label": "v9", "status": "installed", "client_id": "sim-1"}
    refused = device.post("/v1/report", json=body, headers=SIMULATED)
    assert refused.status_code == 404 and 'no release "v9"' in refused.json()["error"]
    body = {"deployment_key": "nope", "label": "v1", "status": "installed", "client_id": "sim-1"}
    assert device.post("/v1/report", json=body, headers=SIMULATED).status_code == 404
    body = {"deployment_key": key, "label": "v1", "status": "installed", "client_id": "sim-1"}
    bad = device.post("/v1/report", json=body, headers={"Overair-Simulated": "yes"})
    assert bad.status_code == 400 and "Overair-Simulated must be 1" in bad.json()["error"]
    assert rehearsal(api)["reports"] == 0  # nothing of the refused reports was kept
    assert production(api)["counters"]["v1"] == (0, 0, 0, 0)


def test_the_rehearsal_routes_need_a_key_and_an_existing_deployment(
    api: TestClient, device: TestClient, key: str
) -> None:
    assert device.get(f"{DEPLOYMENT}/rehearsal").status_code == 401
    assert device.delete(f"{DEPLOYMENT}/rehearsal").status_code == 401
    missing = api.delete("/api/v1/apps/CoolApp/deployments/Prod/rehearsal")
    assert missing.status_code == 404 and "Production" in missing.json()["detail"]
    assert api.get("/api/v1/apps/NoApp/deployments/Production/rehearsal").status_code == 404


def test_removing_the_deployment_removes_its_rehearsal(api: TestClient, device: TestClient, key: str) -> None:
    a_fleet(device, key, "sim-", simulated=True)
    assert api.delete(f"{DEPLOYMENT}").status_code == 204
    assert api.post("/api/v1/apps/CoolApp/deployments", json={"name": "Production"}).status_code == 201
    assert rehearsal(api)["devices"] == 0
