"""Access keys cannot lock the server or outlive the key that made them (issue 13, items 1-3)."""

from __future__ import annotations

from starlette.testclient import TestClient

from overair.app import OverairApp


def as_key(server: OverairApp, key: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def test_the_last_admin_key_cannot_be_revoked_and_a_key_cannot_revoke_its_creator(
    server: OverairApp, api: TestClient
) -> None:
    second = api.post("/api/v1/access-keys", json={"name": "second"}).json()["key"]
    with as_key(server, second) as other:
        refused = other.delete("/api/v1/access-keys/admin")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "creator-key"
        assert "created the key you are using" in refused.json()["detail"]
    # the admin may revoke the key it made, then not itself: nobody could make keys again
    assert api.delete("/api/v1/access-keys/second").status_code == 204
    last = api.delete("/api/v1/access-keys/admin")
    assert last.status_code == 409 and last.json()["code"] == "last-key-manager"
    assert "Create another admin key first" in last.json()["detail"]
    assert api.get("/api/v1/whoami").json() == {"name": "admin"}


def test_an_expiring_key_never_mints_a_key_that_outlives_it(server: OverairApp, api: TestClient) -> None:
    day = 24 * 3600
    ci = api.post("/api/v1/access-keys", json={"name": "ci", "expires_in_seconds": day}).json()
    assert ci["created_by"] == "admin"
    with as_key(server, ci["key"]) as bot:
        forever = bot.post("/api/v1/access-keys", json={"name": "forever"})
        assert forever.status_code == 422 and forever.json()["code"] == "key-outlives-creator"
        longer = bot.post("/api/v1/access-keys", json={"name": "longer", "expires_in_seconds": 30 * day})
        assert longer.status_code == 422 and "never outlive" in longer.json()["detail"]
        shorter = bot.post("/api/v1/access-keys", json={"name": "shorter", "expires_in_seconds": 3600})
        assert shorter.status_code == 201
        assert shorter.json()["created_by"] == "ci"
    names = [k["name"] for k in api.get("/api/v1/access-keys").json()]
    assert names == ["admin", "ci", "shorter"]


def test_wrong_keys_are_throttled_per_address_without_touching_devices(
    server: OverairApp, api: TestClient, device: TestClient
) -> None:
    """Issue 13, item 4: 60 wrong keys in 10 s all got a plain 401; now the 11th answers 429."""
    statuses = []
    for attempt in range(12):
        with as_key(server, f"oa_wrong{attempt}") as guesser:
            statuses.append(guesser.get("/api/v1/apps"))
    assert [r.status_code for r in statuses] == [401] * 10 + [429] * 2
    refused = statuses[-1]
    assert refused.json()["code"] == "too-many-attempts"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "try again in" in refused.json()["detail"]
    # devices never authenticate with keys: their routes are not throttled
    assert device.get("/v1/update-check", params={"deployment_key": "nope"}).status_code != 429
