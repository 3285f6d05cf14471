"""Metrics end to end on `overair serve`: a fleet of real engines fills the series, Prometheus scrapes
/metrics, and push-update says how many active devices the release reaches; a rehearsal (`overair simulate`)
moves none of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import LiveServer
from conftest import run_cli as overair
from overair.cli.simulate import Fleet

pytestmark = pytest.mark.slow


@pytest.fixture
def api(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """Logged in (the CLI's config file) and the management API with the admin key; CoolApp exists."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"server": live_server.url, "access_key": live_server.key}))
    monkeypatch.setenv("OVERAIR_CONFIG", str(config))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("OVERAIR_SERVER", raising=False)
    monkeypatch.delenv("OVERAIR_ACCESS_KEY", raising=False)
    with httpx.Client(
        base_url=live_server.url + "/api/v1",
        headers={"Authorization": f"Bearer {live_server.key}"},
        timeout=30,
    ) as client:
        assert client.post("/apps", json={"name": "CoolApp"}).status_code == 201
        yield client


def push(capsys: pytest.CaptureFixture[str], folder: Path, text: str, *args: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({text!r});\n")
    code, out, err = overair(
        capsys,
        "release",
        "push-update",
        "--project-name",
        "CoolApp",
        "--target-version",
        "1.0.0",
        "--bundle",
        str(folder),
        *args,
    )
    assert code == 0, out + err
    return out


def test_a_fleet_shows_in_the_series_and_in_prometheus_and_a_rehearsal_does_not(
    live_server: LiveServer, api: httpx.Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = push(capsys, tmp_path / "b1", "Welcome")
    assert "No active devices reported yet on 1.0.0." in out

    key = next(d["key"] for d in api.get("/apps/CoolApp/deployments").json() if d["name"] == "Production")
    real = Fleet(
        tmp_path / "fleet",
        server=live_server.url,
        deployment_key=key,
        app_version="1.0.0",
        build_number=None,
        embedded_text="CoolApp",
        simulated=False,  # devices as apps run them: they count in production metrics
    )
    real.run(devices=20, launches=3, crash_label=None, workers=4)
    # a rehearsal on top (marked as simulated by `overair simulate`) changes nothing below
    code, out, err = overair(
        capsys, "simulate", "--project-name", "CoolApp", "--devices", "20", "--launches", "3"
    )
    assert code == 0, out + err

    body = api.get("/apps/CoolApp/deployments/Production/metrics", params={"hours": 2}).json()
    assert body["active_devices"] == {"v1": 20}
    v1 = [p for p in body["series"] if p["label"] == "v1"]
    assert sum(p["downloads"] for p in v1) == 20 and sum(p["installs"] for p in v1) == 20
    assert v1[-1]["active"] == 20

    # Prometheus scrapes the live server and its parser reads every family
    assert f"/metrics with the metrics key {live_server.metrics_key}" in live_server.output
    scraped = httpx.get(
        live_server.url + "/metrics",
        headers={"Authorization": f"Bearer {live_server.metrics_key}"},
        timeout=30,
    )
    assert scraped.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    active = {
        (s.labels["app"], s.labels["deployment"]): s.value for s in families["overair_active_devices"].samples
    }
    assert active == {("CoolApp", "Production"): 20.0, ("CoolApp", "Staging"): 0.0}
    reports = {
        s.labels["status"]: s.value
        for s in families["overair_reports"].samples
        if s.labels["deployment"] == "Production"
    }
    assert reports["downloaded"] == reports["installed"] == 20 and reports["failed"] == 0
    assert families["overair_reports"].type == "counter"
    assert "process_cpu_seconds" in families or "python_info" in families

    # the next push says how many devices it reaches
    out = push(capsys, tmp_path / "b2", "Welcome back", "--rollout-percentage", "20")
    assert "Rolled out to 20% of 20 active devices on 1.0.0 (about 4)." in out
