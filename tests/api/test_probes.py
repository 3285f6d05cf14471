"""``/healthz`` and ``/readyz``: liveness without dependencies, readiness naming what is down."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import text
from starlette.testclient import TestClient

from conftest import ON_POSTGRES
from overair.app import OverairApp
from overair.config import Settings
from overair.db import _alembic_config, head_revision


def readyz(device: TestClient) -> tuple[int, dict[str, Any]]:
    response = device.get("/readyz")
    return response.status_code, response.json()


def test_both_probes_answer_without_a_key_and_keep_the_host_check(device: TestClient) -> None:
    alive = device.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert readyz(device) == (200, {"status": "ready", "failing": {}})
    assert device.get("/readyz", headers={"Host": "127.0.0.1:3000"}).status_code == 200  # loopback: allowed
    assert device.get("/healthz", headers={"Host": "evil.example"}).status_code == 421


def test_a_schema_behind_the_code_is_not_ready(server: OverairApp, device: TestClient) -> None:
    previous = ScriptDirectory.from_config(_alembic_config()).get_revision(head_revision()).down_revision
    with server.state.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    status, body = readyz(device)
    assert status == 503 and list(body["failing"]) == ["migrations"]
    assert "overair migrate" in body["detail"] and previous in body["detail"]
    assert device.get("/healthz").status_code == 200  # alive all the same


def test_an_unreachable_database_is_named(
    server: OverairApp, device: TestClient, settings: Settings, database_url: str, postgres: Any
) -> None:
    server.state.engine.dispose()
    if ON_POSTGRES:
        postgres.drop(database_url)
    else:  # the file is gone and a folder is in its place: SQLite cannot open it
        database = Path(settings.resolved_database_url().split("///", 1)[1])
        for _ in range(50):  # the server's background work may open (and so recreate) the file meanwhile
            for leftover in database.parent.glob(database.name + "*"):
                leftover.unlink(missing_ok=True)
            try:
                database.mkdir()
                break
            except FileExistsError:
                continue
        assert database.is_dir()
    status, body = readyz(device)
    assert status == 503 and set(body["failing"]) == {"database", "migrations"}
    assert body["failing"]["database"].startswith("unreachable: ")
    assert body["title"] == "Not ready" and "database (unreachable" in body["detail"]
    assert device.get("/healthz").status_code == 200


def test_a_missing_blob_folder_is_named(device: TestClient, settings: Settings) -> None:
    folder = Path(settings.resolved_blob_url().removeprefix("file://"))
    assert folder.is_dir()
    shutil.rmtree(folder)
    status, body = readyz(device)
    assert status == 503 and list(body["failing"]) == ["blob_store"]
    assert "missing" in body["failing"]["blob_store"]


def test_a_schema_ahead_of_the_code_is_ready(server: OverairApp, device: TestClient) -> None:
    """During a rolling upgrade, an upgraded host migrates first: the old hosts keep serving meanwhile."""
    with server.state.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_version'"))
    assert readyz(device)[0] == 200
