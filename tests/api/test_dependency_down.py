"""The database goes away while the server runs (issue 15, "Bad input and faults").

Devices never see an error: an update check answers what was last known for its deployment, or "no
update" when nothing is known. Management routes (the API, the CodePush dialects, the console) answer 503
saying the database is down, and everything works again once it is back, without a restart.

The outage is real: on PostgreSQL the test database refuses connections and its sessions are ended; on
SQLite the database file is moved away (a folder takes its place, so it cannot be reopened).
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from conftest import make_zip, publish
from overair.app import OverairApp
from overair.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every update check revalidates its cached answer: the outage is met at once."""
    return settings.model_copy(update={"cache_recheck_seconds": 0.0})


@contextlib.contextmanager
def database_down(server: OverairApp, database_url: str, data_dir: Path) -> Iterator[None]:
    engine: Engine = server.state.engine
    if database_url.startswith("postgresql"):
        name = database_url.rsplit("/", 1)[1]
        admin = database_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            yield
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        return
    database = data_dir / "overair.db"
    moved = data_dir / "overair.db.away"
    engine.dispose()  # open SQLite connections would go on reading the moved file
    database.rename(moved)
    database.mkdir()
    try:
        yield
    finally:
        database.rmdir()
        moved.rename(database)
        engine.dispose()


def test_devices_get_no_update_and_management_a_503_while_the_database_is_down(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    admin_key: str,
    database_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    keys = {d["name"]: d["key"] for d in api.get("/api/v1/apps/CoolApp/deployments").json()}
    assert publish(api).status_code == 201
    known = {"deployment_key": keys["Production"], "app_version": "1.0.0", "client_id": "d1"}
    before = device.get("/v1/update-check", params=known)
    assert before.status_code == 200 and before.json()["update"]["label"] == "v1"
    console = TestClient(server, base_url="http://testserver", follow_redirects=False)
    assert console.post("/console/sign-in", data={"access_key": admin_key}).status_code == 303
    appcenter = {"x-api-token": admin_key}
    upload = device.post("/apps/admin/CoolApp/deployments/Staging/uploads", headers=appcenter).json()
    metadata = f"/upload/set_metadata/{upload['id']}?token={upload['token']}&file_size=10"

    caplog.set_level(logging.WARNING, logger="overair")
    with database_down(server, database_url, settings.data_dir):
        # a deployment the server answered before: the same answer
        during = device.get("/v1/update-check", params=known)
        assert during.status_code == 200 and during.json()["update"]["label"] == "v1", during.text
        assert during.headers["cache-control"] == "private, no-store"
        # one it never answered: no update (nothing is known, so nothing is offered and nothing undone)
        cold = {"deployment_key": keys["Staging"], "app_version": "1.0.0", "label": "v7", "client_id": "d2"}
        answer = device.get("/v1/update-check", params=cold)
        assert answer.status_code == 200, answer.text
        assert answer.json()["update"] is None and answer.json()["status"] == "no_update"
        codepush = device.get(
            "/v0.1/public/codepush/update_check",
            params={
                "deployment_key": keys["Staging"],
                "app_version": "1.0.0",
                "label": "v7",
                "package_hash": "ab",
            },
        )
        assert codepush.status_code == 200, codepush.text
        info = codepush.json()["update_info"]
        assert info["is_available"] is False and info["should_run_binary_version"] is False

        for path in ("/api/v1/apps", "/api/v1/apps/CoolApp/deployments/Production/releases"):
            refused = api.get(path)
            assert refused.status_code == 503, refused.text
            problem = refused.json()
            assert problem["code"] == "database-down" and "database" in problem["detail"]
            assert refused.headers["retry-after"] and "Traceback" not in refused.text
        standalone = device.get("/apps", headers={"Authorization": f"Bearer {admin_key}"})
        assert standalone.status_code == 503 and "database" in standalone.text
        page = console.get("/console/")
        assert page.status_code == 503 and "database" in html.unescape(page.text)
        # chunked uploads are staged in the database: App Center's format, with a 503
        staging = device.post(metadata)
        assert staging.status_code == 503 and staging.json()["error"] is True, staging.text
        assert "database" in staging.json()["message"]

    # the outage is said in one line (no traceback), not once per request
    said = [r for r in caplog.records if r.name == "overair"]
    assert said and not [r for r in said if r.exc_info], [r.getMessage() for r in said]
    assert len([r for r in said if "does not answer" in r.getMessage()]) <= 3

    assert device.post(metadata).status_code == 200  # the upload goes on once the database is back
    after = api.get("/api/v1/apps")
    assert after.status_code == 200 and [a["name"] for a in after.json()] == ["CoolApp"]
    assert device.get("/v1/update-check", params=known).json()["update"]["label"] == "v1"
    console.close()


def test_an_expo_check_while_the_database_is_down_is_recorded_once_it_is_back(
    server: OverairApp, api: TestClient, device: TestClient, database_url: str, settings: Settings
) -> None:
    """The check is answered from what is known; the report it carries cannot be checked against the
    database, so it is not taken as told: the device's next check tells it again."""
    api.post("/api/v1/apps", json={"name": "ExpoApp"})
    package = make_zip(
        {
            "bundles/app.hbc": b"bundle one",
            "expo.json": json.dumps({"launchAsset": "bundles/app.hbc", "assets": []}).encode(),
        }
    )
    release = publish(
        api,
        app="ExpoApp",
        content=package,
        target_version="*",
        expo={"platform": "ios", "runtime_version": "1.0.0"},
    ).json()
    key = {d["name"]: d["key"] for d in api.get("/api/v1/apps/ExpoApp/deployments").json()}["Production"]
    headers = {
        "Expo-Platform": "ios",
        "Expo-Protocol-Version": "1",
        "Expo-Runtime-Version": "1.0.0",
        "EAS-Client-ID": "a-device",
        "Expo-Current-Update-ID": release["update_id"],
        "Expo-Embedded-Update-ID": "9433b1ed-4006-46b8-8aa7-fdc7eeb203fd",
    }
    embedded = {
        **headers,
        "EAS-Client-ID": "another",
        "Expo-Current-Update-ID": headers["Expo-Embedded-Update-ID"],
    }
    assert device.get(f"/expo/{key}", headers=embedded).status_code == 200  # the deployment is known
    with database_down(server, database_url, settings.data_dir):
        assert device.get(f"/expo/{key}", headers=headers).status_code == 200
    server.state.metrics.flush()
    assert device.get(f"/expo/{key}", headers=headers).status_code == 200
    server.state.metrics.flush()
    series = api.get("/api/v1/apps/ExpoApp/deployments/Production/metrics").json()["series"]
    assert [hour["active"] for hour in series if hour["label"] == "v1"][-1] == 1
