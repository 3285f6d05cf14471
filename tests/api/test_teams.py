"""Accounts, collaborators, scoped keys, transfer and disabling, through the management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conftest import publish
from overair.app import OverairApp


def _client(server: OverairApp, key: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def team(server: OverairApp, api: TestClient) -> Iterator[dict[str, TestClient]]:
    """alice owns Shop, bob is its developer, carol has nothing; the admin also owns Secret."""
    clients = {"admin": api}
    for name in ("alice", "bob", "carol"):
        made = api.post("/api/v1/accounts", json={"name": name, "email": f"{name}@example.com"})
        assert made.status_code == 201, made.text
        clients[name] = _client(server, made.json()["key"])
    assert clients["alice"].post("/api/v1/apps", json={"name": "Shop"}).status_code == 201
    assert api.post("/api/v1/apps", json={"name": "Secret"}).status_code == 201
    added = clients["alice"].post(
        "/api/v1/apps/Shop/collaborators", json={"account": "bob", "role": "developer"}
    )
    assert added.status_code == 201, added.text
    yield clients
    for client in clients.values():
        if client is not api:
            client.close()


def test_an_app_is_owned_by_its_creator_and_others_do_not_see_it(team: dict[str, TestClient]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    assert [(a["name"], a["owner"]) for a in alice.get("/api/v1/apps").json()] == [("Shop", "alice")]
    assert [a["name"] for a in bob.get("/api/v1/apps").json()] == ["Shop"]
    assert carol.get("/api/v1/apps").json() == []
    hidden = carol.get("/api/v1/apps/Shop")
    assert hidden.status_code == 404 and hidden.json()["code"] == "app-not-found"
    assert hidden.json()["detail"] == 'No app named "Shop" (apps: none yet).'
    # the same answer as for an app that does not exist: nothing tells them apart
    assert carol.get("/api/v1/apps/Nothing").json()["detail"] == 'No app named "Nothing" (apps: none yet).'
    assert "Secret" not in bob.get("/api/v1/apps/Nope").text
    collaborators = alice.get("/api/v1/apps/Shop/collaborators").json()
    assert [(c["account"], c["role"], c["source"]) for c in collaborators] == [
        ("alice", "owner", "owner"),
        ("bob", "developer", "grant"),
    ]


def test_a_developer_releases_to_staging_but_not_to_production(team: dict[str, TestClient]) -> None:
    alice, bob = team["alice"], team["bob"]
    assert publish(bob, "Shop", "Staging").status_code == 201
    refused = publish(bob, "Shop", "Production")
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == (
        '"bob-key" may not publish on Shop/Production (publish is missing: the account "bob" is a developer '
        "of Shop, and Production is a production deployment). Who can grant it: the owners and admins of "
        "Shop (alice)."
    )
    promoted = bob.post("/api/v1/apps/Shop/promote", json={"source": "Staging", "destination": "Production"})
    assert promoted.status_code == 403, promoted.text
    assert bob.delete("/api/v1/apps/Shop").status_code == 403
    # which deployments count as production is a deployment setting
    flagged = alice.put("/api/v1/apps/Shop/deployments/Staging/production", json={"production": True})
    assert flagged.status_code == 200 and flagged.json()["production"] is True
    assert publish(bob, "Shop", "Staging", content=b"x").status_code == 403
    assert (
        bob.put("/api/v1/apps/Shop/deployments/Staging/production", json={"production": False}).status_code
        == 403
    )
    # a release manager may
    assert (
        alice.patch("/api/v1/apps/Shop/collaborators/bob", json={"role": "release-manager"}).status_code
        == 200
    )
    assert publish(bob, "Shop", "Production").status_code == 201


def test_admins_manage_collaborators_but_only_owners_make_owners(team: dict[str, TestClient]) -> None:
    alice, bob = team["alice"], team["bob"]
    assert bob.post("/api/v1/apps/Shop/collaborators", json={"account": "carol"}).status_code == 403
    assert alice.patch("/api/v1/apps/Shop/collaborators/bob", json={"role": "admin"}).status_code == 200
    assert (
        bob.post("/api/v1/apps/Shop/collaborators", json={"account": "carol", "role": "viewer"}).status_code
        == 201
    )
    refused = bob.patch("/api/v1/apps/Shop/collaborators/carol", json={"role": "owner"})
    assert refused.status_code == 403 and "Only an owner of Shop" in refused.json()["detail"]
    assert alice.delete("/api/v1/apps/Shop/collaborators/alice").status_code == 409  # the owner stays
    duplicate = alice.post("/api/v1/apps/Shop/collaborators", json={"account": "carol"})
    assert duplicate.status_code == 409
    assert (
        team["carol"].delete("/api/v1/apps/Shop/collaborators/carol").status_code == 204
    )  # anyone may leave
    assert team["carol"].get("/api/v1/apps/Shop").status_code == 404


def test_a_scoped_key_publishes_to_staging_only_and_never_sees_another_app(
    server: OverairApp, team: dict[str, TestClient]
) -> None:
    alice = team["alice"]
    assert alice.post("/api/v1/apps", json={"name": "Other"}).status_code == 201
    made = alice.post(
        "/api/v1/access-keys",
        json={"name": "ci", "apps": ["Shop"], "deployments": ["Staging"], "actions": ["publish"]},
    )
    assert made.status_code == 201, made.text
    assert (made.json()["account"], made.json()["apps"], made.json()["actions"]) == (
        "alice",
        ["Shop"],
        ["publish"],
    )
    with _client(server, made.json()["key"]) as ci:
        assert publish(ci, "Shop", "Staging").status_code == 201
        refused = publish(ci, "Shop", "Production")
        assert refused.status_code == 403 and "the key is limited to apps Shop" in refused.json()["detail"]
        patched = ci.patch("/api/v1/apps/Shop/deployments/Staging/releases", json={"rollout": 50})
        assert patched.status_code == 403 and "actions publish" in patched.json()["detail"]
        assert [a["name"] for a in ci.get("/api/v1/apps").json()] == ["Shop"]
        assert ci.get("/api/v1/apps/Other").status_code == 404
        assert publish(ci, "Other", "Staging").status_code == 404
        assert ci.post("/api/v1/apps", json={"name": "Mine"}).status_code == 403
        # a scoped key makes no wider key
        wider = ci.post("/api/v1/access-keys", json={"name": "wider"})
        assert wider.status_code == 403
    # and never more than its account: a viewer's publish key cannot publish
    assert (
        alice.post("/api/v1/apps/Shop/collaborators", json={"account": "carol", "role": "viewer"}).status_code
        == 201
    )
    carol_ci = team["carol"].post(
        "/api/v1/access-keys", json={"name": "carol-ci", "apps": ["Shop"], "actions": ["publish"]}
    )
    with _client(server, carol_ci.json()["key"]) as key:
        assert publish(key, "Shop", "Staging").status_code == 403


def test_keys_belong_to_their_account(team: dict[str, TestClient]) -> None:
    me = team["admin"].get("/api/v1/account").json()  # the first admin key is the first admin account's
    assert (me["name"], me["server_admin"]) == ("admin", True)
    bob = team["bob"]
    assert [k["name"] for k in bob.get("/api/v1/access-keys").json()] == ["bob-key"]
    assert bob.delete("/api/v1/access-keys/admin").status_code == 404  # not its key: as if there were none
    assert bob.post("/api/v1/access-keys", json={"name": "bob-2", "account": "alice"}).status_code == 403
    names = {k["name"] for k in team["admin"].get("/api/v1/access-keys").json()}
    assert {"admin", "alice-key", "bob-key", "carol-key"} <= names
    assert bob.get("/api/v1/accounts").status_code == 403
    assert bob.get("/api/v1/jobs").status_code == 403
    assert bob.get("/api/v1/account").json()["name"] == "bob"


def test_disabling_an_account_stops_its_keys_at_once(team: dict[str, TestClient]) -> None:
    admin, bob = team["admin"], team["bob"]
    assert admin.patch("/api/v1/accounts/bob", json={"disabled": True}).json()["disabled"] is True
    refused = bob.get("/api/v1/apps")
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    assert admin.patch("/api/v1/accounts/bob", json={"disabled": False}).status_code == 200
    assert bob.get("/api/v1/apps").status_code == 200
    assert admin.patch("/api/v1/accounts/admin", json={"disabled": True}).status_code == 409  # the last admin


def test_an_app_moves_to_another_owner_or_an_organisation(team: dict[str, TestClient]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    assert bob.post("/api/v1/apps/Shop/transfer", json={"account": "carol"}).status_code == 403
    org = carol.post("/api/v1/organisations", json={"name": "org-name"})
    assert org.status_code == 201 and org.json()["members"] == [{"account": "carol", "role": "admin"}]
    # alice is not a member: the organisation does not exist for her
    assert alice.post("/api/v1/apps/Shop/transfer", json={"organisation": "org-name"}).status_code == 404
    moved = alice.post("/api/v1/apps/Shop/transfer", json={"account": "carol"})
    assert moved.status_code == 200 and moved.json()["owner"] == "carol", moved.text
    roles = {c["account"]: c["role"] for c in carol.get("/api/v1/apps/Shop/collaborators").json()}
    assert roles == {"carol": "owner", "alice": "admin", "bob": "developer"}
    to_org = carol.post("/api/v1/apps/Shop/transfer", json={"organisation": "org-name"})
    assert to_org.status_code == 200 and to_org.json()["owner"] == "org-name"
    assert carol.post("/api/v1/organisations/org-name/members", json={"account": "bob"}).status_code == 200
    assert bob.post("/api/v1/organisations/org-name/members", json={"account": "alice"}).status_code == 403
    assert alice.get("/api/v1/organisations/org-name").status_code == 404
    assert carol.delete("/api/v1/apps/Shop").status_code == 204  # an organisation admin owns its apps


def test_disabling_an_account_ends_its_console_sessions_and_the_console_shows_only_its_apps(
    server: OverairApp, team: dict[str, TestClient]
) -> None:
    bob_key = team["bob"].headers["Authorization"].removeprefix("Bearer ")
    with TestClient(server, base_url="http://testserver", follow_redirects=False) as browser:
        assert browser.post("/console/sign-in", data={"access_key": bob_key}).status_code == 303
        home = browser.get("/console/")
        assert home.status_code == 200 and "Shop" in home.text and "Secret" not in home.text
        assert browser.get("/console/apps/Secret").status_code == 404
        assert team["admin"].patch("/api/v1/accounts/bob", json={"disabled": True}).status_code == 200
        ended = browser.get("/console/")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/console/sign-in")
        again = browser.post("/console/sign-in", data={"access_key": bob_key})
        assert again.status_code != 303 and "disabled" in again.text


def test_deployment_metrics_are_refused_to_an_account_without_a_role(team: dict[str, TestClient]) -> None:
    """The management API's metrics route read any app's numbers for any key (found by the matrix)."""
    assert team["bob"].get("/api/v1/apps/Shop/deployments/Staging/metrics").status_code == 200
    hidden = team["carol"].get("/api/v1/apps/Shop/deployments/Staging/metrics")
    assert hidden.status_code == 404 and hidden.json()["code"] == "app-not-found"


def test_an_account_whose_first_key_name_is_taken_is_not_made_half(api: TestClient) -> None:
    assert api.post("/api/v1/access-keys", json={"name": "zoe-key"}).status_code == 201
    refused = api.post("/api/v1/accounts", json={"name": "zoe"})
    assert refused.status_code == 409 and '"zoe-key"' in refused.json()["detail"]
    assert "zoe" not in [a["name"] for a in api.get("/api/v1/accounts").json()]


def test_team_changes_are_audited_and_giving_an_app_to_its_owner_is_refused(
    api: TestClient, team: dict[str, TestClient]
) -> None:
    alice = team["alice"]
    assert alice.patch("/api/v1/apps/Shop/collaborators/bob", json={"role": "viewer"}).status_code == 200
    # an account can be named by its e-mail, as the CodePush clients name collaborators
    assert alice.delete("/api/v1/apps/Shop/collaborators/bob@example.com").status_code == 204
    same = alice.post("/api/v1/apps/Shop/transfer", json={"account": "alice"})
    assert same.status_code == 409 and same.json()["detail"] == '"alice" already owns Shop.'
    assert alice.post("/api/v1/apps/Shop/transfer", json={"account": "carol"}).status_code == 200
    events = api.get("/api/v1/audit", params={"app": "Shop"}).json()["events"]
    team_events = [
        (e["action"], e["actor"], e["item"], e["before"], e["after"])
        for e in reversed(events)
        if e["action"].startswith(("collaborator.", "app.transfer"))
    ]
    assert team_events == [
        ("collaborator.add", "alice-key", "bob", {}, {"role": "developer"}),
        ("collaborator.role", "alice-key", "bob", {"role": "developer"}, {"role": "viewer"}),
        ("collaborator.remove", "alice-key", "bob", {"role": "viewer"}, {}),
        ("app.transfer", "alice-key", None, {"owner": "alice"}, {"owner": "carol"}),
    ]


def test_app_center_paths_name_the_apps_real_owner(server: OverairApp, team: dict[str, TestClient]) -> None:
    """``/apps/<owner>/<app>`` resolves the owner: an account or an organisation, never any other name."""
    carol_key = team["carol"].headers["Authorization"].removeprefix("Bearer ")
    bob_key = team["bob"].headers["Authorization"].removeprefix("Bearer ")
    assert team["carol"].post("/api/v1/organisations", json={"name": "org-name"}).status_code == 201
    with (
        TestClient(server, base_url="http://testserver", headers={"X-API-Token": carol_key}) as carol,
        TestClient(server, base_url="http://testserver", headers={"X-API-Token": bob_key}) as bob,
    ):
        assert bob.get("/user").json()["name"] == "bob"  # the account, not the key
        assert bob.get("/apps/alice/Shop").json()["owner"]["name"] == "alice"
        wrong = bob.get("/apps/bob/Shop")
        assert wrong.status_code == 404
        assert (
            wrong.json()["message"]
            == 'App "bob/Shop" does not exist: Shop belongs to alice, as "alice/Shop".'
        )
        # the organisation makes an app of its own; its owner is the organisation
        made = carol.post("/orgs/org-name/apps", json={"display_name": "App-iOS", "os": "iOS"})
        assert made.status_code == 201, made.text
        assert made.json()["owner"]["type"] == "org"
        assert carol.post("/apps/org-name/App-iOS/deployments", json={"name": "Staging"}).status_code == 201
        assert carol.get("/apps/carol/App-iOS").status_code == 404
        assert [a["name"] for a in carol.get("/orgs/org-name/apps").json()] == ["App-iOS"]
        # an organisation bob is not in does not exist for him, whichever way he asks
        for path in ("/orgs/org-name", "/orgs/org-name/apps", "/apps/org-name/App-iOS"):
            assert bob.get(path).status_code == 404, path
        assert "org-name" not in bob.get("/orgs").text
