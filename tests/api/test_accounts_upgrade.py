"""A single-key installation upgrades in place: migration 0015 makes one admin account (a server admin)
owning every existing key and app, so everything that worked before keeps working."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import add_old_app, database_at
from overair.app import create_app
from overair.config import Settings
from overair.db import make_engine, migrate

OLD_KEY = "oa_an-old-key-from-before-accounts"


def _database_at_0013(url: str) -> None:
    """A database migrated to 0013 with a key and an app with Production and Staging, as an older
    overair left it."""
    with database_at(url, "0013") as connection:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        connection.execute(
            text(
                "INSERT INTO access_keys (name, key_hash, created_by, created_at) "
                "VALUES ('admin', :hash, 'overair serve', :now), ('ci', :other, 'admin', :now)"
            ),
            {"hash": hashlib.sha256(OLD_KEY.encode()).hexdigest(), "other": "0" * 64, "now": now},
        )
        app_id = add_old_app(connection, "OldApp")
        for name, key in (("Production", "k-prod"), ("Staging", "k-stag"), ("QA", "k-qa")):
            connection.execute(
                text(
                    "INSERT INTO deployments (app_id, name, key, generation, created_at) "
                    "VALUES (:app, :name, :key, 0, :now)"
                ),
                {"app": app_id, "name": name, "key": key, "now": now},
            )


def test_existing_keys_and_apps_belong_to_one_admin_account_after_the_upgrade(
    another_database: Callable[..., str], tmp_path: Path
) -> None:
    url = another_database(empty=True)
    _database_at_0013(url)
    engine = make_engine(url)
    assert migrate(engine).before == "0013"
    with engine.connect() as connection:
        accounts = connection.execute(text("SELECT id, name, server_admin, disabled FROM accounts")).all()
        assert [(a.name, bool(a.server_admin), bool(a.disabled)) for a in accounts] == [
            ("admin", True, False)
        ]
        admin_id = accounts[0].id
        keys = connection.execute(text("SELECT name, account_id FROM access_keys ORDER BY name")).all()
        assert [(k.name, k.account_id) for k in keys] == [("admin", admin_id), ("ci", admin_id)]
        assert connection.execute(text("SELECT owner_account_id FROM apps")).scalar_one() == admin_id
        production = dict(
            (r.name, r.production)
            for r in connection.execute(text("SELECT name, production FROM deployments ORDER BY name"))
        )
        assert {k: bool(v) for k, v in production.items()} == {
            "Production": True,
            "QA": False,
            "Staging": False,
        }
    engine.dispose()

    # the old key still does everything it did: list, publish, add deployments, make keys, read jobs
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, allowed_hosts="testserver", _env_file=None
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {OLD_KEY}"
        assert [a["name"] for a in client.get("/api/v1/apps").json()] == ["OldApp"]
        assert client.post("/api/v1/apps/OldApp/deployments", json={"name": "Beta"}).status_code == 201
        made = client.post("/api/v1/access-keys", json={"name": "new"})
        assert made.status_code == 201 and made.json()["account"] == "admin", made.text
        assert client.get("/api/v1/jobs").status_code == 200
        assert client.post("/api/v1/apps", json={"name": "NewApp"}).status_code == 201
