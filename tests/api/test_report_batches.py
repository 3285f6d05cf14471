"""Device reports wait in memory and are written in batches: the numbers are the ones report-by-report
writes give, whatever the batch holds (devices moving between labels and deployments, hours passing)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import publish
from overair.app import OverairApp
from overair.db import make_sessionmaker
from overair.errors import Invalid
from overair.metrics.service import DeviceReport, MetricsService
from overair.releases.errors import ReleaseNotFound

STATUSES = ("downloaded", "installed", "failed", "rolled_back", "running")


@pytest.fixture
def keys(api: TestClient) -> dict[str, str]:
    """CoolApp with four deployments (two pairs), each with releases v1 to v3; name → key."""
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    for name in ("A1", "A2", "B1", "B2"):
        assert api.post("/api/v1/apps/CoolApp/deployments", json={"name": name}).status_code == 201
        for n in range(3):
            assert publish(api, deployment=name, description=f"{name}-{n}").status_code == 201
    return {d["name"]: d["key"] for d in api.get("/api/v1/apps/CoolApp/deployments").json()}


def numbers(service: MetricsService, api: TestClient, deployment: str) -> dict[str, Any]:
    """Everything the surfaces read of a deployment's metrics."""
    totals = [
        (t.reports, t.active) for t in service.totals() if (t.app, t.deployment) == ("CoolApp", deployment)
    ]
    releases = api.get(f"/api/v1/apps/CoolApp/deployments/{deployment}/releases").json()
    return {
        "labels": [m.model_dump() for m in service.labels("CoolApp", deployment)],
        "series": [p.model_dump() for p in service.series("CoolApp", deployment, hours=24)],
        "active": service.active_devices("CoolApp", deployment),
        "totals": totals,
        "releases": [
            (r["label"], r["downloads"], r["installs"], r["failures"], r["rollbacks"]) for r in releases
        ],
    }


def test_batched_reports_give_the_numbers_of_one_write_per_report(
    server: OverairApp, api: TestClient, keys: dict[str, str]
) -> None:
    moment = [dt.datetime(2026, 1, 1, 22, 30, tzinfo=dt.UTC)]  # both services see the same times

    def clock() -> dt.datetime:
        return moment[0]

    sessions = make_sessionmaker(server.state.engine)
    one_by_one = MetricsService(sessions, clock=clock)
    batched = MetricsService(sessions, clock=clock)
    rng = random.Random(15)
    clients = [f"device-{n}" for n in range(8)]
    for step in range(400):
        client = rng.choice(clients)
        here, there = rng.choice((("1", "2"), ("2", "1")))
        if rng.random() < 0.08:  # back on the binary's own bundle, maybe after switching keys
            previous = rng.choice((None, there))
            for service, pair in ((one_by_one, "A"), (batched, "B")):
                service.record_binary(
                    keys[pair + here], client, previous_deployment_key=previous and keys[pair + previous]
                )
        else:
            label, status = rng.choice(("v1", "v2", "v3")), rng.choice(STATUSES)
            reason = rng.choice(("", "", f"crash {step}"))
            previous = there if rng.random() < 0.2 else None
            sender = client if rng.random() < 0.9 else ""
            for service, pair in ((one_by_one, "A"), (batched, "B")):
                service.record_report(
                    DeviceReport(
                        keys[pair + here],
                        label,
                        status,
                        sender,
                        reason=reason,
                        previous_deployment_key=previous and keys[pair + previous],
                    )
                )
        one_by_one.flush()
        if step % 150 == 149:
            batched.flush()  # a few batches, some spanning an hour's end
        moment[0] += dt.timedelta(seconds=rng.choice((1, 30, 600)))
    assert batched.pending_reports > 0
    for name in ("1", "2"):
        assert numbers(batched, api, "B" + name) == numbers(one_by_one, api, "A" + name)
    assert numbers(batched, api, "B1")["active"], "some devices are counted"
    assert batched.pending_reports == 0 and batched.dropped_reports == 0
    one_by_one.close()
    batched.close()


def test_a_report_is_checked_when_it_arrives(server: OverairApp, keys: dict[str, str]) -> None:
    service = MetricsService(make_sessionmaker(server.state.engine))
    with pytest.raises(ReleaseNotFound, match="Unknown deployment key"):
        service.record_report(DeviceReport("nobody-has-this-key", "v1", "installed", "a"))
    with pytest.raises(ReleaseNotFound, match='no release "v9"'):
        service.record_report(DeviceReport(keys["A1"], "v9", "installed", "a"))
    with pytest.raises(Invalid, match="Unknown report status"):
        service.record_report(DeviceReport(keys["A1"], "v1", "exploded", "a"))
    assert service.pending_reports == 0
    service.close()


def test_closing_writes_what_waits(server: OverairApp, api: TestClient, keys: dict[str, str]) -> None:
    sessions = make_sessionmaker(server.state.engine)
    first = MetricsService(sessions)
    for client in ("a", "b", "c"):
        first.record_report(DeviceReport(keys["A1"], "v2", "installed", client))
    assert first.pending_reports == 3
    first.close()
    assert MetricsService(sessions).active_devices("CoolApp", "A1") == {"v2": 3}


def test_a_management_request_sees_the_reports_accepted_before_it(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    body = {"deployment_key": keys["A1"], "label": "v1", "status": "installed", "client_id": "a"}
    assert device.post("/v1/report", json=body).status_code == 200
    releases = api.get("/api/v1/apps/CoolApp/deployments/A1/releases").json()
    assert [r["installs"] for r in releases if r["label"] == "v1"] == [1]


def test_a_known_release_is_accepted_without_a_database_read(
    server: OverairApp, keys: dict[str, str]
) -> None:
    """The report routes accept on the event loop what needs no read, and use a thread for the rest."""
    service = MetricsService(make_sessionmaker(server.state.engine))
    report = DeviceReport(keys["A1"], "v1", "installed", "a")
    assert not service.accept_report(report)  # nothing known yet: record_report reads, on a thread
    service.record_report(report)
    assert service.accept_report(DeviceReport(keys["A1"], "v1", "running", "a"))
    assert not service.accept_report(DeviceReport(keys["A1"], "v9", "running", "a"))  # a miss reads again
    assert not service.accept_report(DeviceReport(keys["A1"], "v1", "exploded", "a"))  # refused by the read
    assert not service.accept_report(DeviceReport(keys["A1"], "v1", "running", "a", simulated=True))
    assert service.pending_reports == 2
    assert service.labels("CoolApp", "A1")[0].installs == 1 and service.active_devices("CoolApp", "A1") == {
        "v1": 1
    }
    service.close()
