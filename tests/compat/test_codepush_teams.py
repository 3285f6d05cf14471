"""Teams through the real CodePush clients against `overair serve` (issue 16): collaborators and app
transfer in both management dialects, and apps that lived in an App Center organisation.

* the management SDK of `code-push` 2.0.7 speaks the standalone server's dialect
  (`/apps/<app>/collaborators/<email>`, `/apps/<app>/transfer/<email>`);
* the `code-push` command of `code-push-cli` 3.0.0 speaks App Center's (`/apps/<owner>/<app>/users`,
  `…/invitations`, `POST /orgs/<org>/apps`): it is the App Center-style client, so the `code-push` 4.2.3 SDK
  is not needed for those paths. Its command line has no `app transfer` any more (removed in 2.0.0); the
  code-push 4.0.2 SDK it ships (`AccountManager.transferApp`, `…/transfer/<owner>`) transfers here.

Every act is checked through overair's own API, and the audit log records it with its actor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_codepush_management import HERE, CodePushCli, folder, json_in, ok, releases, sdk, unique

from conftest import LiveServer, admin_api, ensure_npm_packages, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(HERE, "code-push-cli", "code-push-2")
    with running_server(tmp_path_factory.mktemp("codepush-teams")) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """overair's own API, with the admin key."""
    with admin_api(server) as client:
        yield client


def account(api: httpx.Client, name: str) -> str:
    """A new account ``name`` with the e-mail ``name@example.com``; its first key."""
    made = api.post("/accounts", json={"name": name, "email": f"{name}@example.com"})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def roles(api: httpx.Client, app: str) -> dict[str, str]:
    listed = api.get(f"/apps/{app}/collaborators")
    assert listed.status_code == 200, listed.text
    return {c["account"]: c["role"] for c in listed.json()}


def audited(api: httpx.Client, app: str) -> list[tuple[str, str, str, str | None]]:
    """The app's team events, oldest first: (action, actor (the key, "<account>-key"), surface, item)."""
    events = api.get("/audit", params={"app": app, "limit": 200}).json()["events"]
    team = [e for e in reversed(events) if e["action"].startswith(("collaborator.", "app.transfer"))]
    return [(e["action"], e["actor"], e["surface"], e["item"]) for e in team]


def story(owner: str, friend: str) -> list[tuple[str, str, str, str | None]]:
    """What each test's owner did, as the audit log records it: through CodePush, with its first key."""
    return [
        ("collaborator.add", f"{owner}-key", "codepush", friend),
        ("collaborator.remove", f"{owner}-key", "codepush", friend),
        ("app.transfer", f"{owner}-key", "codepush", None),
    ]


def json_object_in(output: str) -> dict:
    """The JSON object the CLI printed (after its deprecation notice)."""
    value, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
    assert isinstance(value, dict)
    return value


def test_sdk_2_collaborators_and_transfer(server: LiveServer, api: httpx.Client, tmp_path: Path) -> None:
    """code-push 2.0.7 (standalone dialect): add, list, remove collaborators and transfer an app."""
    owner, friend, heir = unique("sam"), unique("fran"), unique("taylor")
    keys = {name: account(api, name) for name in (owner, friend, heir)}
    app = unique("TeamApp")
    mail = {name: f"{name}@example.com" for name in keys}

    def as_(name: str, call: str, *args: object) -> dict:
        return {"call": call, "args": list(args), "accessKey": keys[name]}

    added, listed, again, stranger, seen, refused = sdk(
        server,
        tmp_path,
        as_(owner, "addApp", app, "Android", "React-Native"),
        as_(owner, "addCollaborator", app, mail[friend]),
        as_(owner, "getCollaborators", app),
        as_(owner, "addCollaborator", app, mail[friend]),
        as_(owner, "addCollaborator", app, "nobody@example.com"),
        as_(friend, "getApp", app),
        as_(friend, "transferApp", app, mail[friend]),
    )[1:]
    assert ok(added) is None
    assert ok(listed) == {
        mail[owner]: {"isCurrentAccount": True, "permission": "Owner"},
        mail[friend]: {"isCurrentAccount": False, "permission": "Collaborator"},
    }
    # the reference's Collaborator is overair's release manager
    assert roles(api, app) == {owner: "owner", friend: "release-manager"}
    assert again["error"] == {
        "message": "The given account is already a collaborator for this app.",
        "statusCode": 409,
    }
    assert stranger["error"] == {
        "message": "The specified e-mail address doesn't represent a registered user",
        "statusCode": 404,
    }
    assert ok(seen)["collaborators"][mail[friend]] == {  # type: ignore[index]
        "isCurrentAccount": True,
        "permission": "Collaborator",
    }
    assert refused["error"]["statusCode"] == 403  # only the owner gives the app away
    assert "transfer apps" in refused["error"]["message"]

    removed, after, owner_stays, transferred, theirs, twice = sdk(
        server,
        tmp_path,
        as_(owner, "removeCollaborator", app, mail[friend]),
        as_(owner, "getCollaborators", app),
        as_(owner, "removeCollaborator", app, mail[owner]),
        as_(owner, "transferApp", app, mail[heir]),
        as_(heir, "getCollaborators", app),
        as_(heir, "transferApp", app, mail[heir]),
    )
    assert ok(removed) is None
    assert ok(after) == {mail[owner]: {"isCurrentAccount": True, "permission": "Owner"}}
    assert owner_stays["error"] == {
        "message": "Cannot remove the owner of the app from collaborator list.",
        "statusCode": 409,
    }
    assert ok(transferred) is None
    # the previous owner stays on the app as an admin (the reference keeps it as a collaborator)
    assert ok(theirs) == {
        mail[heir]: {"isCurrentAccount": True, "permission": "Owner"},
        mail[owner]: {"isCurrentAccount": False, "permission": "Collaborator"},
    }
    assert roles(api, app) == {heir: "owner", owner: "admin"}
    assert twice["error"] == {"message": "The given account already owns the app.", "statusCode": 409}
    assert audited(api, app) == story(owner, friend)


def test_code_push_cli_3_collaborators_and_transfer(
    server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    """code-push-cli 3.0.0 (App Center dialect): the same acts through `code-push collaborator` and
    `code-push app transfer`."""
    owner, friend, heir = unique("cli-sam"), unique("cli-fran"), unique("cli-taylor")
    keys = {name: account(api, name) for name in (owner, friend, heir)}
    app = unique("CliTeamApp")
    cli = CodePushCli(tmp_path / "owner")
    cli("login", server.url, "--accessKey", keys[owner])
    cli("app", "add", app, "android", "react-native")

    invited = cli("collaborator", "add", app, f"{friend}@example.com")
    assert f'Collaborator invitation email for "{app}" sent to "{friend}@example.com".' in invited
    assert roles(api, app) == {owner: "owner", friend: "release-manager"}
    listed = json_object_in(cli("collaborator", "ls", app, "--format", "json"))
    assert listed == {
        "collaborators": {
            f"{owner}@example.com": {"isCurrentAccount": True, "permission": "Owner"},
            f"{friend}@example.com": {"isCurrentAccount": False, "permission": "Collaborator"},
        }
    }
    again = cli("collaborator", "add", app, f"{friend}@example.com", expect=1)
    assert "The given account is already a collaborator for this app." in again

    # the collaborator works on the app under its owner's name
    theirs = CodePushCli(tmp_path / "friend")
    theirs("login", server.url, "--accessKey", keys[friend])
    assert f"{owner}/{app}" in [a["name"] for a in json_in(theirs("app", "ls", "--format", "json"))]
    out = theirs(
        "release", f"{owner}/{app}", str(folder(tmp_path, "by the friend")), "1.0.0", "-d", "Staging"
    )
    assert "Successfully released" in out

    removed = cli("collaborator", "rm", app, f"{friend}@example.com", stdin="y\n")
    assert f'Successfully removed "{friend}@example.com" as a collaborator from the app "{app}".' in removed
    assert roles(api, app) == {owner: "owner"}

    # code-push-cli 3.0.0 dropped `app transfer` from its commands (App Center moved transfers to its
    # portal); its own SDK still has transferApp, which the CLI's users script: that is what runs here
    (moved,) = sdk(
        server,
        tmp_path,
        {"call": "transferApp", "args": [app, f"{heir}@example.com"], "accessKey": keys[owner]},
        dialect="appcenter",
    )
    assert ok(moved) is None
    assert api.get(f"/apps/{app}").json()["owner"] == heir
    assert roles(api, app) == {heir: "owner", owner: "admin"}
    # the app is now the heir's: its old owner names it by the new owner
    assert f"{heir}/{app}" in [a["name"] for a in json_in(cli("app", "ls", "--format", "json"))]
    assert audited(api, app) == story(owner, friend)


def test_apps_of_an_app_center_organisation_keep_their_names(
    server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    """The seed's App Center organisation `org-name` with `App-iOS` and `App-Android`: after the move, the
    CLI names them `org-name/App-iOS` and `org-name/App-Android` as it did on App Center."""
    owner, member = unique("org-admin"), unique("org-member")
    keys = {name: account(api, name) for name in (owner, member)}
    headers = {"Authorization": f"Bearer {keys[owner]}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as mine:
        assert mine.post("/organisations", json={"name": "org-name"}).status_code == 201
        joined = mine.post("/organisations/org-name/members", json={"account": member, "role": "member"})
        assert joined.status_code == 200, joined.text
    # App-iOS is recreated with its old deployment keys, so that shipped binaries keep finding it
    with httpx.Client(base_url=server.url, headers=headers) as legacy:
        made = legacy.post(
            "/apps", json={"name": "App-iOS", "os": "iOS", "manuallyProvisionDeployments": True}
        )
        assert made.status_code == 201, made.text
        for name in ("Staging", "Production"):
            kept = legacy.post(
                "/apps/App-iOS/deployments", json={"name": name, "key": f"appcenter-{name}-key-ios"}
            )
            assert kept.status_code == 201, kept.text

    cli = CodePushCli(tmp_path / "admin")
    cli("login", server.url, "--accessKey", keys[owner])
    # one app moves into the organisation (the SDK of code-push-cli 3.0.0: its command line has no transfer);
    # the other is made there, as `code-push app add org/app` did on App Center
    (moved,) = sdk(
        server,
        tmp_path,
        {"call": "transferApp", "args": ["App-iOS", "org-name"], "accessKey": keys[owner]},
        dialect="appcenter",
    )
    assert ok(moved) is None
    assert "Successfully added" in cli("app", "add", "org-name/App-Android", "android", "react-native")
    assert {a: api.get(f"/apps/{a}").json()["owner"] for a in ("App-iOS", "App-Android")} == {
        "App-iOS": "org-name",
        "App-Android": "org-name",
    }

    names = [a["name"] for a in json_in(cli("app", "ls", "--format", "json"))]
    assert {"org-name/App-iOS", "org-name/App-Android"} <= set(names)
    listing = cli("deployment", "ls", "org-name/App-iOS", "-k")
    assert "appcenter-Staging-key-ios" in listing and "appcenter-Production-key-ios" in listing
    android = "org-name/App-Android"
    assert "Successfully released" in cli(
        "release", android, str(folder(tmp_path, "org")), "1.0.0", "-d", "Staging"
    )
    assert "Successfully promoted" in cli("promote", android, "Staging", "Production")
    assert [r["label"] for r in releases(api, "App-Android", "Production")] == ["v1"]
    history = json_in(cli("deployment", "history", android, "Production", "--format", "json"))
    assert [p["label"] for p in history] == ["v1"]
    # the organisation's admins manage its apps; the App Center CLI shows them as Managers
    users = json_object_in(cli("collaborator", "ls", "org-name/App-iOS", "--format", "json"))["collaborators"]
    assert users[f"{owner}@example.com"] == {"isCurrentAccount": True, "permission": "Manager"}
    assert users[f"{member}@example.com"] == {"isCurrentAccount": False, "permission": "Reader"}
    # another owner's name does not reach the app; the answer says whose it is
    wrong = cli("deployment", "ls", f"{owner}/App-iOS", expect=1)
    assert 'App-iOS belongs to org-name, as "org-name/App-iOS"' in wrong

    # a member sees the organisation's apps under the same names, and may not release (a viewer)
    theirs = CodePushCli(tmp_path / "member")
    theirs("login", server.url, "--accessKey", keys[member])
    assert {"org-name/App-iOS", "org-name/App-Android"} <= {
        a["name"] for a in json_in(theirs("app", "ls", "--format", "json"))
    }
    refused = theirs("release", android, str(folder(tmp_path, "member")), "1.0.0", "-d", "Staging", expect=1)
    assert "may not publish" in refused

    # App Center's /orgs routes, as the SDK's HTTP calls see them
    with httpx.Client(base_url=server.url, headers={"X-API-Token": keys[member]}) as appcenter:
        assert [o["name"] for o in appcenter.get("/orgs").json()] == ["org-name"]
        assert appcenter.get("/orgs/org-name").json()["display_name"] == "org-name"
        org_apps = appcenter.get("/orgs/org-name/apps").json()
        assert sorted(a["name"] for a in org_apps) == ["App-Android", "App-iOS"]
        assert {a["owner"]["type"] for a in org_apps} == {"org"}
        made = appcenter.post("/orgs/org-name/apps", json={"display_name": "Nope", "os": "iOS"})
        assert made.status_code == 403  # members do not add apps; its admins do
