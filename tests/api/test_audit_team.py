"""The audit log of who may do what (issue 16, item 5): each change to accounts, organisations, their
members, collaborators, app ownership and production deployments makes one event, with the account and
key that acted and the before and after of what changed. Table-driven: each row is one change through the
management API and the event it must make."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from overair.app import OverairApp


def _client(server: OverairApp, key: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {key}"
    return client


# (who acts, method, path, body) → (action, app, deployment, item, before, after)
CHANGES: list[tuple[tuple[str, str, str, dict[str, Any] | None], tuple[Any, ...]]] = [
    (
        ("admin", "POST", "/accounts", {"name": "dev", "email": "dev@example.com"}),
        ("account.create", None, None, "dev", {}, {"email": "dev@example.com", "server_admin": False}),
    ),
    (
        ("olivia", "POST", "/apps/Shop/collaborators", {"account": "dev", "role": "developer"}),
        ("collaborator.add", "Shop", None, "dev", {}, {"role": "developer"}),
    ),
    (
        ("olivia", "PATCH", "/apps/Shop/collaborators/dev", {"role": "release-manager"}),
        ("collaborator.role", "Shop", None, "dev", {"role": "developer"}, {"role": "release-manager"}),
    ),
    (
        ("olivia", "DELETE", "/apps/Shop/collaborators/dev", None),
        ("collaborator.remove", "Shop", None, "dev", {"role": "release-manager"}, {}),
    ),
    (
        ("olivia", "PUT", "/apps/Shop/deployments/Staging/production", {"production": True}),
        ("deployment.production", "Shop", "Staging", None, {"production": False}, {"production": True}),
    ),
    (
        ("olivia", "POST", "/organisations", {"name": "acme"}),
        ("organisation.create", None, None, "acme", {}, {"admin": "olivia"}),
    ),
    (
        ("olivia", "POST", "/organisations/acme/members", {"account": "dev", "role": "member"}),
        ("member.add", None, None, "acme/dev", {}, {"role": "member"}),
    ),
    (
        ("olivia", "POST", "/organisations/acme/members", {"account": "dev", "role": "admin"}),
        ("member.role", None, None, "acme/dev", {"role": "member"}, {"role": "admin"}),
    ),
    (
        ("olivia", "DELETE", "/organisations/acme/members/dev", None),
        ("member.remove", None, None, "acme/dev", {"role": "admin"}, {}),
    ),
    (
        ("olivia", "POST", "/apps/Shop/transfer", {"organisation": "acme"}),
        ("app.transfer", "Shop", None, None, {"owner": "olivia"}, {"owner": "acme"}),
    ),
    (
        ("admin", "PATCH", "/accounts/dev", {"disabled": True}),
        ("account.disable", None, None, "dev", {"disabled": False}, {"disabled": True}),
    ),
    (
        ("admin", "PATCH", "/accounts/dev", {"disabled": False}),
        ("account.enable", None, None, "dev", {"disabled": True}, {"disabled": False}),
    ),
]


@pytest.fixture
def people(server: OverairApp, api: TestClient) -> Iterator[dict[str, TestClient]]:
    """The server admin, and olivia, who owns Shop."""
    made = api.post("/api/v1/accounts", json={"name": "olivia"})
    assert made.status_code == 201, made.text
    olivia = _client(server, made.json()["key"])
    assert olivia.post("/api/v1/apps", json={"name": "Shop"}).status_code == 201
    yield {"admin": api, "olivia": olivia}
    olivia.close()


def newest(api: TestClient) -> dict[str, Any]:
    answer = api.get("/api/v1/audit", params={"limit": 1})
    assert answer.status_code == 200, answer.text
    event: dict[str, Any] = answer.json()["events"][0]
    return event


@pytest.mark.parametrize("upto", range(len(CHANGES)), ids=[row[1][0] for row in CHANGES])
def test_each_change_of_who_may_do_what_makes_its_event(people: dict[str, TestClient], upto: int) -> None:
    admin = people["admin"]
    for (who, method, path, body), _ in CHANGES[:upto]:  # the changes before this one, unchecked
        done = people[who].request(method, "/api/v1" + path, json=body)
        assert done.status_code < 300, done.text
    (who, method, path, body), expected = CHANGES[upto]
    before = newest(admin)["id"]
    done = people[who].request(method, "/api/v1" + path, json=body)
    assert done.status_code < 300, done.text

    events = admin.get("/api/v1/audit", params={"limit": 10}).json()["events"]
    made = [e for e in events if e["id"] > before]
    if expected[0] == "account.create":  # the new account's first key is an event of its own
        assert [e["action"] for e in made] == ["access-key.create", "account.create"]
        made = made[1:]
    assert len(made) == 1, made
    event = made[0]
    assert (
        event["action"],
        event["app"],
        event["deployment"],
        event["item"],
        event["before"],
        event["after"],
    ) == expected
    key_name = "admin" if who == "admin" else "olivia-key"
    assert (event["account"], event["actor"]) == (who, key_name)


def test_a_refused_change_of_roles_records_nothing(people: dict[str, TestClient]) -> None:
    admin, olivia = people["admin"], people["olivia"]
    before = newest(admin)["id"]
    refused = olivia.patch("/api/v1/accounts/admin", json={"disabled": True})
    assert refused.status_code == 403
    assert olivia.post("/api/v1/apps/Shop/collaborators", json={"account": "nobody"}).status_code >= 400
    assert newest(admin)["id"] == before


def test_the_account_filter_finds_every_key_of_an_account(
    server: OverairApp, people: dict[str, TestClient]
) -> None:
    admin, olivia = people["admin"], people["olivia"]
    ci = olivia.post("/api/v1/access-keys", json={"name": "olivia-ci"})
    assert ci.status_code == 201, ci.text
    with _client(server, ci.json()["key"]) as keyed:
        assert keyed.post("/api/v1/apps/Shop/deployments", json={"name": "QA"}).status_code == 201
    found = admin.get("/api/v1/audit", params={"account": "olivia"}).json()["events"]
    assert [(e["action"], e["actor"]) for e in found] == [
        ("deployment.create", "olivia-ci"),
        ("access-key.create", "olivia-key"),
        ("app.create", "olivia-key"),
    ]
    assert admin.get("/api/v1/audit", params={"account": "nobody"}).json()["events"] == []
