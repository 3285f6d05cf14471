"""The metrics store: device reports become hourly rows and active-device gauges; the management route and
``/metrics`` read them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from starlette.testclient import TestClient

from conftest import publish, scrape_headers
from overair.app import OverairApp, create_app
from overair.config import Settings
from overair.db import make_sessionmaker
from overair.errors import Invalid
from overair.metrics.models import MetricDevice, MetricHour
from overair.metrics.service import DeviceReport, MetricsService, RetentionPolicy
from release_health_fixture import SURFACES, seed_known_reports

METRICS = "/api/v1/apps/CoolApp/deployments/Production/metrics"


@pytest.fixture
def keys(api: TestClient) -> dict[str, str]:
    """CoolApp with v1 and v2 on Production; deployment name → key."""
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    for text in ("one", "two"):
        assert publish(api, description=text).status_code == 201
    return {d["name"]: d["key"] for d in api.get("/api/v1/apps/CoolApp/deployments").json()}


def report(device: TestClient, key: str, label: str, status: str, client_id: str = "") -> None:
    body = {"deployment_key": key, "label": label, "status": status, "client_id": client_id}
    response = device.post("/v1/report", json=body)
    assert response.status_code == 200, response.text


def metrics(api: TestClient, hours: int = 48) -> dict[str, Any]:
    response = api.get(METRICS, params={"hours": hours})
    assert response.status_code == 200, response.text
    return dict(response.json())


def now_points(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The points of the latest hour in the series, by label."""
    latest = max(p["hour"] for p in body["series"])
    return {p["label"]: p for p in body["series"] if p["hour"] == latest}


def test_native_reports_are_aggregated_per_label_and_hour(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    key = keys["Production"]
    for client in ("a", "b", "c"):
        report(device, key, "v1", "downloaded", client)
        report(device, key, "v1", "installed", client)
    report(device, key, "v2", "downloaded", "a")
    report(device, key, "v2", "failed", "a")
    report(device, key, "v2", "rolled_back", "a")

    body = metrics(api)
    points = now_points(body)
    assert (points["v1"]["downloads"], points["v1"]["installs"], points["v1"]["active"]) == (3, 3, 3)
    v2 = points["v2"]
    assert (v2["downloads"], v2["installs"], v2["failures"], v2["rollbacks"], v2["active"]) == (1, 0, 1, 1, 0)
    assert body["active_devices"] == {"v1": 3}
    assert body["failure_rates"] == {"v1": 0.0, "v2": 1.0}
    hour = dt.datetime.fromisoformat(v2["hour"])
    assert hour.minute == hour.second == 0 and hour.utcoffset() == dt.timedelta(0)

    # the release counters `release list` shows keep working
    releases = {r["label"]: r for r in api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()}
    assert (releases["v1"]["downloads"], releases["v1"]["installs"]) == (3, 3)
    assert (releases["v2"]["failures"], releases["v2"]["rollbacks"]) == (1, 1)


def test_active_devices_move_between_labels(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    key = keys["Production"]
    for client in ("a", "b", "c"):
        report(device, key, "v1", "installed", client)
    report(device, key, "v1", "installed", "a")  # a repeated report does not count the device twice
    report(device, key, "v1", "running", "a")
    assert metrics(api)["active_devices"] == {"v1": 3}

    report(device, key, "v2", "installed", "a")
    report(device, key, "v2", "running", "b")  # a device that reports running a label is on it
    assert metrics(api)["active_devices"] == {"v1": 1, "v2": 2}

    report(device, key, "v2", "rolled_back", "b")  # it left v2; it reports its label at the next start
    assert metrics(api)["active_devices"] == {"v1": 1, "v2": 1}
    report(device, key, "v1", "running", "b")
    assert metrics(api)["active_devices"] == {"v1": 2, "v2": 1}

    report(device, key, "v1", "installed")  # without a client id: counted, but no device to place
    body = metrics(api)
    assert body["active_devices"] == {"v1": 2, "v2": 1}
    assert now_points(body)["v1"]["installs"] == 5


def test_reports_for_unknown_labels_or_keys_record_nothing(
    api: TestClient, device: TestClient, keys: dict[str, str], server: OverairApp
) -> None:
    for key, label in ((keys["Production"], "v9"), ("no-such-key", "v1")):
        body = {"deployment_key": key, "label": label, "status": "running", "client_id": "a"}
        response = device.post("/v1/report", json=body)
        assert response.status_code == 404, response.text
    bad = device.post(
        "/v1/report", json={"deployment_key": keys["Production"], "label": "v1", "status": "launched"}
    )
    assert bad.status_code == 400 and "running" in bad.json()["error"]
    with server.state.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(MetricHour)) == 0
        assert connection.scalar(select(func.count()).select_from(MetricDevice)) == 0


@pytest.mark.parametrize("label", ["v9", "v" * 21, "ü" * 300], ids=["unknown", "too-long", "huge"])
def test_reports_for_labels_no_release_has_are_accepted_and_not_counted(
    api: TestClient, device: TestClient, keys: dict[str, str], label: str
) -> None:
    """Longer than any label column: PostgreSQL refuses such a value where SQLite stores it."""
    key = keys["Production"]
    body = {"deploymentKey": key, "label": label, "clientUniqueId": "a"}
    assert device.post("/v0.1/public/codepush/report_status/download", json=body).status_code == 200
    deploy = {**body, "appVersion": "1.0.0", "status": "DeploymentSucceeded"}
    assert device.post("/reportStatus/deploy", json=deploy).status_code == 200
    native = {"deployment_key": key, "label": label[:20], "status": "installed", "client_id": "a"}
    answer = device.post("/v1/report", json=native)
    assert answer.status_code == 404 and "has no release" in answer.text, answer.text
    assert metrics(api)["series"] == []


def test_codepush_reports_are_aggregated(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    key = keys["Production"]
    for client in ("a", "b"):
        body = {"deploymentKey": key, "label": "v1", "clientUniqueId": client}
        assert device.post("/v0.1/public/codepush/report_status/download", json=body).status_code == 200
        deploy = {
            "deploymentKey": key,
            "appVersion": "1.0.0",
            "label": "v1",
            "status": "DeploymentSucceeded",
            "clientUniqueId": client,
            "previousLabelOrAppVersion": "1.0.0",
        }
        assert device.post("/reportStatus/deploy", json=deploy).status_code == 200
    failed = {
        "deployment_key": key,
        "app_version": "1.0.0",
        "label": "v2",
        "status": "DeploymentFailed",
        "client_unique_id": "a",
        "previous_label_or_app_version": "v1",
    }
    assert device.post("/v0.1/public/codepush/report_status/deploy", json=failed).status_code == 200
    points = now_points(metrics(api))
    assert (points["v1"]["downloads"], points["v1"]["installs"], points["v1"]["active"]) == (2, 2, 2)
    assert points["v2"]["failures"] == 1

    # b moves to v2; a reports the binary's own bundle (no label): it no longer counts anywhere
    moved = {
        "deploymentKey": key,
        "appVersion": "1.0.0",
        "label": "v2",
        "status": "DeploymentSucceeded",
        "clientUniqueId": "b",
        "previousLabelOrAppVersion": "v1",
    }
    assert device.post("/reportStatus/deploy", json=moved).status_code == 200
    binary = {"deploymentKey": key, "appVersion": "1.0.0", "clientUniqueId": "a"}
    assert device.post("/reportStatus/deploy", json=binary).status_code == 200
    assert metrics(api)["active_devices"] == {"v2": 1}

    # the CodePush management dialect's metrics now carry the active devices too
    codepush = api.get("/apps/CoolApp/deployments/Production/metrics").json()["metrics"]
    assert codepush["v2"] == {"active": 1, "downloaded": 0, "failed": 1, "installed": 1}
    assert codepush["v1"]["active"] == 0 and codepush["v1"]["installed"] == 2


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, hour: int, minute: int = 0, day: int = 1) -> Clock:
        self.now = dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)
        return self


def at(hour: int, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def clocked(server: OverairApp, keys: dict[str, str]) -> tuple[MetricsService, Clock, str]:
    """A metrics service over the test server's database whose clock the test sets."""
    clock = Clock(at(0))
    service = MetricsService(
        make_sessionmaker(server.state.engine), clock=clock, policy=RetentionPolicy(active_days=7)
    )
    return service, clock, keys["Production"]


def table(points: list[Any]) -> list[tuple[int, str, int, int, int]]:
    return [(p.hour.hour, p.label, p.downloads, p.installs, p.active) for p in points]


def test_reports_fall_into_the_hour_they_arrive_in(clocked: tuple[MetricsService, Clock, str]) -> None:
    service, clock, key = clocked
    service.record_report(DeviceReport(key, "v1", "installed", "a"))  # 00:00, before the window
    clock.at(10, 5)
    service.record_report(DeviceReport(key, "v1", "downloaded", "b"))
    clock.at(10, 59)
    service.record_report(DeviceReport(key, "v1", "installed", "b"))
    clock.at(11, 0)
    service.record_report(DeviceReport(key, "v2", "installed", "a"))
    clock.at(13, 30)
    service.record_report(DeviceReport(key, "v2", "downloaded", "c"))

    points = service.series("CoolApp", "Production", hours=5, now=at(13).replace(minute=59))
    assert table(points) == [
        (9, "v1", 0, 0, 1),  # a, installed before the window, carried in
        (10, "v1", 1, 1, 2),
        (11, "v1", 0, 0, 1),
        (11, "v2", 0, 1, 1),
        (12, "v1", 0, 0, 1),  # no reports: the gauges carry forward
        (12, "v2", 0, 0, 1),
        (13, "v1", 0, 0, 1),
        (13, "v2", 1, 0, 1),
    ]
    assert all(p.hour.tzinfo is not None and p.hour.minute == 0 for p in points)

    # a window in the past knows the gauges from the later rows
    assert table(service.series("CoolApp", "Production", hours=2, now=at(9))) == [
        (8, "v1", 0, 0, 1),
        (9, "v1", 0, 0, 1),
    ]
    assert service.active_devices("CoolApp", "Production") == {"v1": 1, "v2": 1}
    assert service.failure_rates("CoolApp", "Production") == {"v1": 0.0, "v2": 0.0}


def test_a_device_that_moves_on_leaves_the_label_it_came_from(
    api: TestClient, clocked: tuple[MetricsService, Clock, str]
) -> None:
    """CodePush's DeploymentSucceeded names where the device came from: ``previousLabelOrAppVersion``, and
    ``previousDeploymentKey`` when the app switched deployment keys (the reference server then takes the
    device off that deployment's label). Within one deployment the device's own row says the same."""
    service, _, production = clocked
    assert publish(api, deployment="Staging").status_code == 201
    staging = next(
        d["key"] for d in api.get("/api/v1/apps/CoolApp/deployments").json() if d["name"] == "Staging"
    )

    service.record_report(DeviceReport(production, "v1", "installed", "a"))
    service.record_report(DeviceReport(production, "v2", "installed", "a", previous_label="v1"))
    assert service.active_devices("CoolApp", "Production") == {"v2": 1}

    # b tests Staging's v1, then the app switches back to the Production key and installs v2 there
    service.record_report(DeviceReport(staging, "v1", "installed", "b"))
    assert service.active_devices("CoolApp", "Staging") == {"v1": 1}
    service.record_report(
        DeviceReport(production, "v2", "installed", "b", previous_label="v1", previous_deployment_key=staging)
    )
    assert service.active_devices("CoolApp", "Staging") == {}
    assert service.active_devices("CoolApp", "Production") == {"v2": 2}

    # the same when the app switches keys and runs the binary's own bundle
    service.record_report(DeviceReport(staging, "v1", "installed", "c"))
    service.record_binary(production, "c", previous_deployment_key=staging)
    assert service.active_devices("CoolApp", "Staging") == {}

    # a failure says nothing about where the device runs; unknown or same keys are ignored
    service.record_report(DeviceReport(staging, "v1", "installed", "d"))
    service.record_report(DeviceReport(production, "v2", "failed", "d", previous_deployment_key=staging))
    service.record_report(
        DeviceReport(production, "v2", "installed", "e", previous_deployment_key="no-such-key")
    )
    service.record_report(
        DeviceReport(production, "v2", "installed", "e", previous_deployment_key=production)
    )
    assert service.active_devices("CoolApp", "Staging") == {"v1": 1}
    assert service.active_devices("CoolApp", "Production") == {"v2": 3}


@pytest.mark.parametrize("hours", [0, -1, 24 * 90 + 1, True])
def test_series_hours_are_bounded(clocked: tuple[MetricsService, Clock, str], hours: int) -> None:
    service, _, _ = clocked
    with pytest.raises(Invalid, match="hours must be a whole number from 1 to 2160"):
        service.series("CoolApp", "Production", hours=hours)
    assert service.series("CoolApp", "Production", hours=24 * 90) == []


def test_prune_drops_old_hours_and_expires_silent_devices(
    clocked: tuple[MetricsService, Clock, str],
) -> None:
    service, clock, key = clocked
    service.record_report(DeviceReport(key, "v1", "installed", "a"))
    service.record_report(DeviceReport(key, "v1", "installed", "b"))
    clock.at(0, day=5)
    service.record_report(DeviceReport(key, "v1", "running", "b"))  # b is still there four days later
    service.policy = RetentionPolicy(retention_days=5, active_days=7)

    assert service.prune(at(23, day=7)) == (1, 0)  # day 1's hour goes; nobody silent for 7 days yet
    assert service.active_devices("CoolApp", "Production") == {"v1": 2}
    assert service.prune(at(1, day=8)) == (0, 1)  # a, silent since day 1, no longer counts
    assert service.prune(at(1, day=8)) == (0, 0)  # idempotent
    assert service.active_devices("CoolApp", "Production") == {"v1": 1}
    points = service.series("CoolApp", "Production", hours=2, now=at(1, day=8))
    assert [(p.hour.hour, p.active) for p in points] == [(0, 2), (1, 1)]


def test_the_management_route(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    assert device.get(METRICS).status_code == 401
    for hours, message in ((0, "hours must be a whole number from 1 to 2160"), ("x", "hours")):
        response = api.get(METRICS, params={"hours": hours})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert message in response.json()["detail"]
    missing = api.get("/api/v1/apps/NoApp/deployments/Production/metrics")
    assert missing.status_code == 404 and 'No app named "NoApp"' in missing.json()["detail"]
    assert api.get("/api/v1/apps/CoolApp/deployments/Nope/metrics").status_code == 404

    body = metrics(api, hours=1)
    assert body["series"] == [] and body["active_devices"] == {}
    assert [(x["label"], x["active"], x["failure_rate"]) for x in body["labels"]] == [
        ("v1", 0, 0.0),
        ("v2", 0, 0.0),
    ]
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/apps/{app}/deployments/{deployment}/metrics" in schema["paths"]
    assert "/metrics" not in schema["paths"]


def families(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_prometheus_series_stay_bounded(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    key = keys["Production"]
    for n in range(3, 11):
        assert publish(api, description=f"release {n}").status_code == 201
    for n in range(1, 11):
        for client in range(30):
            report(device, key, f"v{n}", "installed", f"device-{n}-{client}")
    response = device.get("/metrics", headers=scrape_headers(device))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = families(response.text)

    active = {s.labels["deployment"]: s.value for s in found["overair_active_devices"]}
    assert active == {"Production": 300.0, "Staging": 0.0}
    per_label = [s for s in found["overair_release_active_devices"] if s.labels["deployment"] == "Production"]
    assert sorted(s.labels["label"] for s in per_label) == ["v10", "v8", "v9"]  # the newest three only
    assert all(s.value == 30 for s in per_label)
    installs = [s for s in found["overair_reports"] if s.name == "overair_reports_total"]
    assert {(s.labels["deployment"], s.labels["status"]): s.value for s in installs}[
        ("Production", "installed")
    ] == 300
    # nothing is labelled per device, and the number of store series does not grow with devices or labels
    store = [s for name, samples in found.items() if name.startswith("overair_") for s in samples]
    assert all(set(s.labels) <= {"app", "deployment", "status", "label"} for s in store)
    # reports per deployment and status, actives, 3 labels × 3, this process's dropped and pending reports
    assert len(store) == 2 * 5 + 2 + 3 * 3 + 2


def test_metrics_key_guards_the_scrape(tmp_path: Any) -> None:
    settings = Settings(
        allowed_hosts="testserver", data_dir=tmp_path / "data", metrics_key="scrape-secret", _env_file=None
    )  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and "OVERAIR_METRICS_KEY" in refused.json()["detail"]
        assert not (tmp_path / "data" / "metrics-key").exists()  # a configured key: no file is made
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200 and "overair_active_devices" in scraped.text


def test_metrics_are_closed_by_default_with_a_key_made_on_first_start(tmp_path: Any) -> None:
    settings = Settings(allowed_hosts="testserver", data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert (
            "metrics-key" in refused.json()["detail"] and "OVERAIR_METRICS_PUBLIC" in refused.json()["detail"]
        )
        assert "overair_" not in refused.text
        key_file = tmp_path / "data" / "metrics-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert scraped.status_code == 200 and "overair_active_devices" in scraped.text
    with TestClient(create_app(settings)) as again:  # the same key after a restart
        assert again.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_metrics_can_be_opened_on_purpose(tmp_path: Any) -> None:
    settings = Settings(  # type: ignore[call-arg]
        allowed_hosts="testserver", data_dir=tmp_path / "data", metrics_public=True, _env_file=None
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
    assert not (tmp_path / "data" / "metrics-key").exists()


def test_the_last_failure_reason_of_a_release_is_kept_and_shown(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    assert publish(api).status_code == 201
    reason = "v1 is refused: the signature does not verify with any trusted key"
    body = {"deployment_key": keys["Production"], "label": "v1", "status": "failed", "reason": reason}
    assert device.post("/v1/report", json=body).status_code == 200
    long = {**body, "reason": "x" * 501}
    assert device.post("/v1/report", json=long).status_code == 400
    labels = {entry["label"]: entry for entry in metrics(api)["labels"]}
    assert labels["v1"]["failures"] == 1
    assert labels["v1"]["last_failure"] == reason and labels["v1"]["last_failure_at"]
    report(device, keys["Production"], "v1", "installed", "phone-1")  # other reports keep the reason
    assert {e["label"]: e for e in metrics(api)["labels"]}["v1"]["last_failure"] == reason


@pytest.mark.parametrize("surface", SURFACES)
def test_every_surface_shows_the_one_failure_rate(api: TestClient, device: TestClient, surface: str) -> None:
    """Engine failures send failed + rolled_back, CodePush failures DeploymentFailed: each is one failure."""
    known = seed_known_reports(api, device)
    assert {label: h.failure_rate for label, h in known.expected.items()} == {"v1": 1 / 3, "v2": 0.5}
    read, places = SURFACES[surface]
    shown = read(api, device, known)
    assert {label: round(rate, places) for label, rate in shown.items()} == {
        label: round(health.failure_rate, places) for label, health in known.expected.items()
    }


def test_a_codepush_device_that_keeps_checking_in_keeps_counting_as_active(
    api: TestClient, device: TestClient, keys: dict[str, str], server: OverairApp, clock: Any
) -> None:
    """CodePush SDKs report only when their package changes; their update checks name the label they run,
    so a device that keeps checking in is not expired as silent when no release comes for a while."""
    key = keys["Production"]
    installed = {
        "deploymentKey": key,
        "appVersion": "1.0.0",
        "label": "v2",
        "status": "DeploymentSucceeded",
        "clientUniqueId": "a",
    }
    assert device.post("/v0.1/public/codepush/report_status/deploy", json=installed).status_code == 200
    package_hash = api.get("/api/v1/apps/CoolApp/deployments/Production/releases/v2").json()["package_hash"]
    check = {
        "deployment_key": key,
        "app_version": "1.0.0",
        "label": "v2",
        "package_hash": package_hash,
        "client_unique_id": "a",
    }
    for _ in range(45):  # no release for 45 days, and the app is used every day
        assert device.get("/v0.1/public/codepush/update_check", params=check).status_code == 200
        server.state.metrics.flush()
        clock.advance(24 * 3600)
    assert server.state.metrics.prune(clock()) == (0, 0)
    assert metrics(api)["active_devices"] == {"v2": 1}
    # a check never places a device: one that reports nothing is not counted however often it checks
    other = {**check, "client_unique_id": "b", "label": "v1"}
    assert device.get("/v0.1/public/codepush/update_check", params=other).status_code == 200
    server.state.metrics.flush()
    assert metrics(api)["active_devices"] == {"v2": 1}
