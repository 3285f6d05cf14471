"""A rollout policy stored before min_sample had to reach min_failures still works after the upgrade:
migration 0025 raises its min_sample to min_failures, so reading it is never refused."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import add_old_app, database_at
from overair.app import create_app
from overair.config import Settings
from overair.db import make_engine, migrate


def _database_at_0024(url: str, policies: dict[str, dict[str, object]]) -> None:
    """A database at 0024 with the app OldApp whose deployments hold ``policies`` (by name)."""
    with database_at(url, "0024") as connection:
        app_id = add_old_app(connection, "OldApp")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for name, policy in policies.items():
            connection.execute(
                text(
                    "INSERT INTO deployments (app_id, name, key, generation, production, created_at) "
                    "VALUES (:app, :name, :key, 0, false, :now)"
                ),
                {"app": app_id, "name": name, "key": f"key-{name}", "now": now},
            )
            deployment = connection.execute(
                text("SELECT id FROM deployments WHERE name = :name"), {"name": name}
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO rollout_policies (deployment_id, policy, set_by, set_at, reason) "
                    "VALUES (:d, :policy, 'admin', :now, '')"
                ),
                {"d": deployment, "policy": json.dumps(policy), "now": now},
            )


def test_a_policy_with_a_sample_below_its_failures_is_raised_and_others_are_left_alone(
    another_database: Callable[..., str], tmp_path: Path
) -> None:
    url = another_database(empty=True)
    _database_at_0024(
        url,
        {
            "Small": {"steps": [10, 50, 100], "min_sample": 3},  # min_failures defaulted to 5
            "Strict": {"min_sample": 4, "min_failures": 6},
            "Timed": {"min_sample": 0},
            "Fine": {"min_sample": 20, "min_failures": 2},
        },
    )
    engine = make_engine(url)
    assert migrate(engine).before == "0024"
    engine.dispose()

    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, allowed_hosts="testserver", _env_file=None
    )
    server = create_app(settings)
    with TestClient(server, base_url="http://testserver") as client:
        created = server.state.access_keys.ensure_initial_key()  # a server admin: sees every app
        assert created is not None
        client.headers["Authorization"] = f"Bearer {created.key}"
        read = {}
        for name in ("Small", "Strict", "Timed", "Fine"):
            answer = client.get(f"/api/v1/apps/OldApp/deployments/{name}/rollout-policy")
            assert answer.status_code == 200, answer.text
            policy = answer.json()["policy"]
            read[name] = (policy["min_sample"], policy["min_failures"])
    assert read == {"Small": (5, 5), "Strict": (6, 6), "Timed": (0, 5), "Fine": (20, 2)}


def test_a_policy_an_older_host_stores_after_the_upgrade_is_still_read(api: TestClient, server: Any) -> None:
    """During a rolling upgrade, hosts of the version before 0025 keep serving and may store a policy the
    new rule refuses; the new hosts read it as the nearest valid one instead of refusing to show it."""
    api.post("/api/v1/apps", json={"name": "RollingApp"}).raise_for_status()
    answer = api.put(
        "/api/v1/apps/RollingApp/deployments/Production/rollout-policy",
        json={"policy": {"min_sample": 20}, "reason": "small fleet"},
    )
    assert answer.status_code == 200, answer.text
    with server.state.engine.begin() as connection:  # what an older host would have stored
        connection.execute(
            text("UPDATE rollout_policies SET policy = :policy"),
            {"policy": json.dumps({"min_sample": 3, "min_failures": 5})},
        )
    shown = api.get("/api/v1/apps/RollingApp/deployments/Production/rollout-policy")
    assert shown.status_code == 200, shown.text
    assert (shown.json()["policy"]["min_sample"], shown.json()["policy"]["min_failures"]) == (5, 5)
