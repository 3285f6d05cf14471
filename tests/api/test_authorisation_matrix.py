"""The authorisation matrix (issue 16): every route of the management API, of both CodePush management
dialects and of the console, for every role and every key state, answers what the tables below say;
and no answer to anyone but a server admin names the other app ("Secret") or shows its keys.

The routes are read from the running app's own route tables: a route added without a rule here fails
:func:`test_every_route_has_a_rule`. The expectations are written out here from the issue's words, not
imported from ``overair.auth.roles``, so that the test checks the rules rather than repeats them.

A cell is "allow" when the answer is neither 401 nor 403 nor an unknown app/organisation: the request
got past the rights check (it may still fail on its own merits, e.g. a release that does not exist).
Requests are chosen so that allowed ones change little: removals name a deployment that does not exist,
renames keep the name, and an app is removed or transferred only as a fresh copy made for that cell.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from conftest import MovableClock, bundle, publish
from overair.app import OverairApp
from overair.auth.actions import Action as A
from overair.auth.throttle import FailureThrottle

pytestmark = pytest.mark.slow  # about two thousand requests

# -- the expectation tables ------------------------------------------------------------------------------

VIEWER = {A.READ}
DEVELOPER = {A.READ, A.PUBLISH, A.CHANGE_RELEASES, A.MANAGE_BINARIES}  # releases: not to production
RELEASE_MANAGER = {A.READ, A.PUBLISH, A.CHANGE_RELEASES, A.MANAGE_BINARIES}
ADMIN = RELEASE_MANAGER | {A.MANAGE_APPS, A.MANAGE_DEPLOYMENTS, A.MANAGE_SIGNING_KEYS, A.MANAGE_COLLABORATORS}
OWNER = ADMIN | {A.REMOVE_APPS, A.TRANSFER_APPS}
ROLE_MAY = {
    "owner": OWNER,
    "admin": ADMIN,
    "release-manager": RELEASE_MANAGER,
    "developer": DEVELOPER,
    "viewer": VIEWER,
}
"""What each app role may do on its app (the issue's item 2)."""
ON_PRODUCTION_DEVELOPERS_MAY_NOT = {A.PUBLISH, A.CHANGE_RELEASES}
EVERY_ACCOUNT_MAY = {A.CREATE_APPS, A.MANAGE_ACCESS_KEYS, A.MANAGE_ORGANISATIONS}
"""What any account may do without a role: create apps and organisations, manage its own keys."""

ROLES = list(ROLE_MAY)
ACCOUNT_OF = {
    "owner": "olivia",
    "admin": "adam",
    "release-manager": "rita",
    "developer": "dev",
    "viewer": "vera",
}
"""The account that holds each role on Shop."""
PRINCIPALS = ["server-admin", *ROLES, "outsider", "narrow", "expired", "revoked", "disabled"]
"""Who asks: a server admin, each app role, an account without a role, the owner's key limited to Shop,
Staging and publish ("narrow"), and keys that are expired, revoked, or of a disabled account."""
BAD_KEYS = {"expired", "revoked", "disabled"}
DEPLOYMENTS = ("Staging", "Production")


@dataclass(frozen=True)
class Rule:
    """Who may call a route: ``kind`` is one of

    - ``open``: anyone, the answer does not depend on who asks;
    - ``any``: every valid key (reads what the account itself has);
    - ``account``: every account, with ``action`` (no app);
    - ``server``: server admins only;
    - ``app``/``deployment``: ``action`` on Shop (on Staging and on Production);
    - ``org-read``/``org-admin``: members/admins of the organisation Crew;
    - ``key``: the admin's key "victim" (server admins; others do not see it).
    """

    kind: str
    action: A | None = None
    fresh: bool = False
    """The request removes or gives away the app: each cell gets its own copy of Shop."""


OPEN = Rule("open")
ANY = Rule("any")
SERVER = Rule("server")
KEY = Rule("key")
ORG_READ, ORG_ADMIN = Rule("org-read"), Rule("org-admin")


def app(action: A, fresh: bool = False) -> Rule:
    return Rule("app", action, fresh)


def deployment(action: A) -> Rule:
    return Rule("deployment", action)


def account(action: A) -> Rule:
    return Rule("account", action)


MANAGEMENT: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/whoami"): ANY,
    ("GET", "/api/v1/account"): ANY,
    ("GET", "/api/v1/access-keys"): account(A.MANAGE_ACCESS_KEYS),
    ("POST", "/api/v1/access-keys"): account(A.MANAGE_ACCESS_KEYS),
    ("DELETE", "/api/v1/access-keys/{name}"): KEY,
    ("GET", "/api/v1/accounts"): SERVER,
    ("POST", "/api/v1/accounts"): SERVER,
    ("PATCH", "/api/v1/accounts/{name}"): SERVER,
    ("GET", "/api/v1/organisations"): ANY,
    ("POST", "/api/v1/organisations"): account(A.MANAGE_ORGANISATIONS),
    ("GET", "/api/v1/organisations/{name}"): ORG_READ,
    ("POST", "/api/v1/organisations/{name}/members"): ORG_ADMIN,
    ("DELETE", "/api/v1/organisations/{name}/members/{account}"): ORG_ADMIN,
    ("GET", "/api/v1/apps"): ANY,
    ("POST", "/api/v1/apps"): account(A.CREATE_APPS),
    ("GET", "/api/v1/apps/{app}"): app(A.READ),
    ("PATCH", "/api/v1/apps/{app}"): app(A.MANAGE_APPS),
    ("DELETE", "/api/v1/apps/{app}"): app(A.REMOVE_APPS, fresh=True),
    ("GET", "/api/v1/apps/{app}/binaries"): app(A.READ),
    ("POST", "/api/v1/apps/{app}/binaries"): app(A.MANAGE_BINARIES),
    ("GET", "/api/v1/apps/{app}/deployments"): app(A.READ),
    ("POST", "/api/v1/apps/{app}/deployments"): app(A.MANAGE_DEPLOYMENTS),
    ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}"): deployment(A.MANAGE_DEPLOYMENTS),
    ("DELETE", "/api/v1/apps/{app}/deployments/{deployment}"): app(A.MANAGE_DEPLOYMENTS),  # "Ghost"
    ("PUT", "/api/v1/apps/{app}/deployments/{deployment}/production"): deployment(A.MANAGE_DEPLOYMENTS),
    ("GET", "/api/v1/apps/{app}/collaborators"): app(A.READ),
    ("POST", "/api/v1/apps/{app}/collaborators"): app(A.MANAGE_COLLABORATORS),
    ("PATCH", "/api/v1/apps/{app}/collaborators/{account}"): app(A.MANAGE_COLLABORATORS),
    ("DELETE", "/api/v1/apps/{app}/collaborators/{account}"): app(A.MANAGE_COLLABORATORS),
    ("POST", "/api/v1/apps/{app}/transfer"): app(A.TRANSFER_APPS, fresh=True),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/releases"): deployment(A.READ),
    ("POST", "/api/v1/apps/{app}/deployments/{deployment}/releases"): deployment(A.PUBLISH),
    ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}/releases"): deployment(A.CHANGE_RELEASES),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}/manifest"): deployment(A.READ),
    ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}"): deployment(A.CHANGE_RELEASES),
    ("POST", "/api/v1/apps/{app}/promote"): deployment(A.PUBLISH),  # to {deployment}
    ("POST", "/api/v1/apps/{app}/deployments/{deployment}/rollback"): deployment(A.PUBLISH),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/next-release"): deployment(A.READ),
    ("GET", "/api/v1/apps/{app}/signing-keys"): app(A.READ),
    ("POST", "/api/v1/apps/{app}/signing-keys"): app(A.MANAGE_SIGNING_KEYS),
    ("POST", "/api/v1/apps/{app}/signing-keys/{key_id}/retire"): app(A.MANAGE_SIGNING_KEYS),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/metrics"): deployment(A.READ),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/rehearsal"): deployment(A.READ),
    ("DELETE", "/api/v1/apps/{app}/deployments/{deployment}/rehearsal"): deployment(A.CHANGE_RELEASES),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}"): deployment(A.READ),
    ("POST", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}/rollout"): deployment(
        A.CHANGE_RELEASES
    ),
    ("GET", "/api/v1/apps/{app}/deployments/{deployment}/rollout-policy"): deployment(A.READ),
    ("PUT", "/api/v1/apps/{app}/deployments/{deployment}/rollout-policy"): deployment(A.MANAGE_DEPLOYMENTS),
    ("DELETE", "/api/v1/apps/{app}/deployments/{deployment}/rollout-policy"): deployment(
        A.MANAGE_DEPLOYMENTS
    ),
    ("GET", "/api/v1/apps/{app}/webhooks"): app(A.READ),
    ("POST", "/api/v1/apps/{app}/webhooks"): app(A.MANAGE_APPS),
    ("PATCH", "/api/v1/apps/{app}/webhooks/{webhook}"): app(A.MANAGE_APPS),
    ("DELETE", "/api/v1/apps/{app}/webhooks/{webhook}"): app(A.MANAGE_APPS),
    ("POST", "/api/v1/apps/{app}/webhooks/{webhook}/test"): app(A.MANAGE_APPS),
    ("GET", "/api/v1/apps/{app}/webhooks/{webhook}/deliveries"): app(A.READ),
    ("GET", "/api/v1/audit"): ANY,  # each sees only the events of what it may read
    ("GET", "/api/v1/jobs"): SERVER,
    ("GET", "/api/v1/server-key"): OPEN,
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
}

STANDALONE: dict[tuple[str, str], Rule] = {
    ("GET", "/authenticated"): ANY,
    ("GET", "/account"): ANY,
    ("GET", "/accessKeys"): account(A.MANAGE_ACCESS_KEYS),
    ("POST", "/accessKeys"): account(A.MANAGE_ACCESS_KEYS),
    ("GET", "/accessKeys/{key}"): KEY,
    ("PATCH", "/accessKeys/{key}"): KEY,
    ("DELETE", "/accessKeys/{key}"): KEY,
    ("DELETE", "/sessions/{machine}"): ANY,
    ("GET", "/apps"): ANY,
    ("POST", "/apps"): account(A.CREATE_APPS),
    ("GET", "/apps/{app}"): app(A.READ),
    ("PATCH", "/apps/{app}"): app(A.MANAGE_APPS),
    ("DELETE", "/apps/{app}"): app(A.REMOVE_APPS, fresh=True),
    ("POST", "/apps/{app}/transfer/{email}"): app(A.TRANSFER_APPS, fresh=True),
    ("GET", "/apps/{app}/collaborators"): app(A.READ),
    ("POST", "/apps/{app}/collaborators/{email}"): app(A.MANAGE_COLLABORATORS),
    ("DELETE", "/apps/{app}/collaborators/{email}"): app(A.MANAGE_COLLABORATORS),
    ("GET", "/apps/{app}/deployments"): app(A.READ),
    ("POST", "/apps/{app}/deployments"): app(A.MANAGE_DEPLOYMENTS),
    ("GET", "/apps/{app}/deployments/{deployment}"): deployment(A.READ),
    ("PATCH", "/apps/{app}/deployments/{deployment}"): deployment(A.MANAGE_DEPLOYMENTS),
    ("DELETE", "/apps/{app}/deployments/{deployment}"): app(A.MANAGE_DEPLOYMENTS),  # "Ghost"
    ("POST", "/apps/{app}/deployments/{deployment}/release"): deployment(A.PUBLISH),
    ("PATCH", "/apps/{app}/deployments/{deployment}/release"): deployment(A.CHANGE_RELEASES),
    ("GET", "/apps/{app}/deployments/{deployment}/history"): deployment(A.READ),
    ("DELETE", "/apps/{app}/deployments/{deployment}/history"): app(A.MANAGE_DEPLOYMENTS),  # "Ghost"
    ("GET", "/apps/{app}/deployments/{deployment}/metrics"): deployment(A.READ),
    ("POST", "/apps/{app}/deployments/{deployment}/promote/{destination}"): deployment(A.PUBLISH),
    ("POST", "/apps/{app}/deployments/{deployment}/rollback"): deployment(A.PUBLISH),
    ("POST", "/apps/{app}/deployments/{deployment}/rollback/{label}"): deployment(A.PUBLISH),
}

APPCENTER: dict[tuple[str, str], Rule] = {
    ("GET", "/user"): ANY,
    ("GET", "/api_tokens"): account(A.MANAGE_ACCESS_KEYS),
    ("POST", "/api_tokens"): account(A.MANAGE_ACCESS_KEYS),
    ("DELETE", "/api_tokens/{key}"): KEY,
    ("GET", "/apps"): ANY,
    ("POST", "/apps"): account(A.CREATE_APPS),
    ("GET", "/orgs"): ANY,
    ("GET", "/orgs/{org}"): ORG_READ,
    ("GET", "/orgs/{org}/apps"): ORG_READ,
    ("POST", "/orgs/{org}/apps"): ORG_ADMIN,
    ("GET", "/apps/{owner}/{app}"): app(A.READ),
    ("PATCH", "/apps/{owner}/{app}"): app(A.MANAGE_APPS),
    ("DELETE", "/apps/{owner}/{app}"): app(A.REMOVE_APPS, fresh=True),
    ("GET", "/apps/{owner}/{app}/users"): app(A.READ),
    ("POST", "/apps/{owner}/{app}/invitations"): app(A.MANAGE_COLLABORATORS),
    ("DELETE", "/apps/{owner}/{app}/invitations/{email}"): app(A.MANAGE_COLLABORATORS),
    ("POST", "/apps/{owner}/{app}/transfer/{org}"): app(A.TRANSFER_APPS, fresh=True),
    ("GET", "/apps/{owner}/{app}/deployments"): app(A.READ),
    ("POST", "/apps/{owner}/{app}/deployments"): app(A.MANAGE_DEPLOYMENTS),
    ("GET", "/apps/{owner}/{app}/deployments/{deployment}"): deployment(A.READ),
    ("PATCH", "/apps/{owner}/{app}/deployments/{deployment}"): deployment(A.MANAGE_DEPLOYMENTS),
    ("DELETE", "/apps/{owner}/{app}/deployments/{deployment}"): app(A.MANAGE_DEPLOYMENTS),  # "Ghost"
    ("GET", "/apps/{owner}/{app}/deployments/{deployment}/releases"): deployment(A.READ),
    ("POST", "/apps/{owner}/{app}/deployments/{deployment}/releases"): deployment(A.PUBLISH),
    ("DELETE", "/apps/{owner}/{app}/deployments/{deployment}/releases"): app(A.MANAGE_DEPLOYMENTS),  # "Ghost"
    ("PATCH", "/apps/{owner}/{app}/deployments/{deployment}/releases/{label}"): deployment(A.CHANGE_RELEASES),
    ("POST", "/apps/{owner}/{app}/deployments/{deployment}/uploads"): deployment(A.PUBLISH),
    ("POST", "/apps/{owner}/{app}/deployments/{deployment}/promote_release/{destination}"): deployment(
        A.PUBLISH
    ),
    ("POST", "/apps/{owner}/{app}/deployments/{deployment}/rollback_release"): deployment(A.PUBLISH),
    ("GET", "/apps/{owner}/{app}/deployments/{deployment}/metrics"): deployment(A.READ),
}

CONSOLE: dict[tuple[str, str], Rule] = {
    ("GET", "/sign-in"): OPEN,
    ("POST", "/sign-in"): OPEN,  # with no key: the form again, for anyone
    ("GET", "/"): ANY,
    ("GET", "/audit"): ANY,  # each sees only the events of what it may read
    ("POST", "/apps"): account(A.CREATE_APPS),
    ("GET", "/apps/{app}"): app(A.READ),
    ("GET", "/apps/{app}/distribution/confirm"): app(A.READ),
    ("POST", "/apps/{app}/distribution"): app(A.MANAGE_APPS),
    ("POST", "/apps/{app}/deployments"): app(A.MANAGE_DEPLOYMENTS),
    ("POST", "/apps/{app}/collaborators"): app(A.MANAGE_COLLABORATORS),
    ("POST", "/apps/{app}/collaborators/{account}/role"): app(A.MANAGE_COLLABORATORS),
    ("POST", "/apps/{app}/collaborators/{account}/remove"): app(A.MANAGE_COLLABORATORS),
    ("GET", "/access-keys"): account(A.MANAGE_ACCESS_KEYS),
    ("POST", "/access-keys"): account(A.MANAGE_ACCESS_KEYS),
    ("GET", "/access-keys/{name}/confirm-revoke"): KEY,
    ("POST", "/access-keys/{name}/revoke"): KEY,
    ("GET", "/apps/{app}/deployments/{deployment}"): deployment(A.READ),
    ("GET", "/apps/{app}/deployments/{deployment}/releases/{label}"): deployment(A.READ),
    ("GET", "/apps/{app}/deployments/{deployment}/releases/{label}/confirm/{action}"): deployment(A.READ),
    ("POST", "/apps/{app}/deployments/{deployment}/releases/{label}/rollout"): deployment(A.CHANGE_RELEASES),
    ("POST", "/apps/{app}/deployments/{deployment}/releases/{label}/mandatory"): deployment(
        A.CHANGE_RELEASES
    ),
    ("POST", "/apps/{app}/deployments/{deployment}/releases/{label}/disabled"): deployment(A.CHANGE_RELEASES),
    ("POST", "/apps/{app}/deployments/{deployment}/releases/{label}/rollback"): deployment(A.PUBLISH),
    ("POST", "/apps/{app}/deployments/{deployment}/releases/{label}/promote"): deployment(A.PUBLISH),
    ("POST", "/sign-out"): OPEN,  # last: it ends the sessions the rows above use
}
CONSOLE_ACTIONS = ("rollout", "mandatory", "disabled", "rollback", "promote")
"""The values of the console's ``{action}`` route, each a rule of its own above."""

SURFACES = {"api": MANAGEMENT, "codepush": STANDALONE, "appcenter": APPCENTER, "console": CONSOLE}


def expected(who: str, rule: Rule, deployment: str | None, fresh: bool = False) -> str:
    """The answer ``who`` gets: allow, forbidden, hidden (as an unknown app) or unauthenticated."""
    if rule.kind == "open":
        return "same"
    if who in BAD_KEYS:
        return "unauthenticated"
    if who == "server-admin" or rule.kind == "any":
        return "allow"
    narrow = who == "narrow"
    holder = "owner" if narrow else who  # the narrow key is one of the owner's
    action = rule.action
    if rule.kind == "server":
        return "forbidden"
    if rule.kind == "account":
        return "forbidden" if narrow else "allow"
    if rule.kind == "key":
        return "forbidden" if narrow else "hidden"
    if rule.kind in ("org-read", "org-admin"):  # Crew: the owner is its admin, the developer a member
        org_role = {"owner": "admin", "developer": "member"}.get(holder)
        if org_role is None:
            return "hidden"
        if rule.kind == "org-read":
            return "allow"
        return "allow" if org_role == "admin" and not narrow else "forbidden"
    assert action is not None
    if who == "outsider" or (narrow and fresh):
        return "hidden"
    if narrow:
        reading = action is A.READ
        publishing_staging = action is A.PUBLISH and deployment == "Staging"
        return "allow" if reading or publishing_staging else "forbidden"
    if action not in ROLE_MAY[who]:
        return "forbidden"
    if who == "developer" and deployment == "Production" and action in ON_PRODUCTION_DEVELOPERS_MAY_NOT:
        return "forbidden"
    return "allow"


# -- the server, the team and the keys ---------------------------------------------------------------


@dataclass
class World:
    server: OverairApp
    admin: TestClient
    keys: dict[str, str]
    clients: dict[str, dict[str, TestClient]]
    csrf: dict[str, str]
    secret_key: str
    counter: Iterator[int]

    def fresh_shop(self) -> str:
        """Another app like Shop (same roles), for a cell that removes or gives away its app."""
        name = f"Shop-{next(self.counter)}"
        owner = self.clients["api"]["owner"]
        assert owner.post("/api/v1/apps", json={"name": name}).status_code == 201
        _grant_roles(owner, name)
        return name


def _client(server: OverairApp, **headers: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver", follow_redirects=False)
    client.headers.update(headers)
    return client


def _grant_roles(owner: TestClient, app_name: str) -> None:
    for role in ("admin", "release-manager", "developer", "viewer"):
        body = {"account": ACCOUNT_OF[role], "role": role}
        added = owner.post(f"/api/v1/apps/{app_name}/collaborators", json=body)
        assert added.status_code == 201, added.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from overair.app import create_app
    from overair.config import Settings

    clock = MovableClock()
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("matrix"),
        cache_recheck_seconds=60.0,
        allowed_hosts="testserver",
        console_session_minutes=60 * 24,
        _env_file=None,
    )
    server = create_app(settings, clock=clock)
    # the bad keys fail on every route: here that is the point, not an attack to slow down
    server.state.access_keys._throttle = FailureThrottle(failures=1_000_000)
    created = server.state.access_keys.ensure_initial_key()
    admin = _client(server, Authorization=f"Bearer {created.key}")
    keys = {"server-admin": created.key}
    with admin:
        for who in [*ROLES, "outsider", "gone", "extra"]:
            name = ACCOUNT_OF.get(who, who)
            made = admin.post("/api/v1/accounts", json={"name": name, "email": f"{name}@example.com"})
            assert made.status_code == 201, made.text
            keys[who] = made.json()["key"]
        keys["disabled"] = keys.pop("gone")
        owner = _client(server, Authorization=f"Bearer {keys['owner']}")
        assert owner.post("/api/v1/apps", json={"name": "Shop"}).status_code == 201
        _grant_roles(owner, "Shop")
        assert owner.post("/api/v1/apps/Shop/collaborators", json={"account": "gone"}).status_code == 201
        for deployment in DEPLOYMENTS:  # releases to patch, promote and roll back
            for text in ("one", "two"):
                assert (
                    publish(owner, "Shop", deployment, content=bundle(f"{deployment} {text}")).status_code
                    == 201
                )
        assert owner.post("/api/v1/organisations", json={"name": "Crew"}).status_code == 201
        joined = owner.post("/api/v1/organisations/Crew/members", json={"account": "dev", "role": "member"})
        assert joined.status_code == 200
        assert admin.post("/api/v1/apps", json={"name": "Secret"}).status_code == 201
        secret_key = admin.get("/api/v1/apps/Secret").json()["deployments"][0]["key"]
        narrow = owner.post(
            "/api/v1/access-keys",
            json={"name": "narrow", "apps": ["Shop"], "deployments": ["Staging"], "actions": ["publish"]},
        )
        keys["narrow"] = narrow.json()["key"]
        keys["expired"] = owner.post(
            "/api/v1/access-keys", json={"name": "soon", "expires_in_seconds": 3600}
        ).json()["key"]
        keys["revoked"] = owner.post("/api/v1/access-keys", json={"name": "revoked"}).json()["key"]
        assert admin.post("/api/v1/access-keys", json={"name": "victim"}).status_code == 201

        clients: dict[str, dict[str, TestClient]] = {
            "api": {},
            "codepush": {},
            "appcenter": {},
            "console": {},
        }
        csrf: dict[str, str] = {}
        for who in PRINCIPALS:
            key = keys[who]
            clients["api"][who] = _client(server, Authorization=f"Bearer {key}")
            clients["codepush"][who] = _client(server, Authorization=f"Bearer {key}")
            clients["appcenter"][who] = _client(server, **{"X-API-Token": key})
            browser = _client(server)
            signed_in = browser.post("/console/sign-in", data={"access_key": key})
            assert signed_in.status_code == 303, (who, signed_in.text)
            found = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/console/").text)
            assert found, who
            csrf[who] = found.group(1)
            clients["console"][who] = browser
        # then the keys go bad: sessions opened with them must end too
        assert owner.delete("/api/v1/access-keys/revoked").status_code == 204
        assert admin.patch("/api/v1/accounts/gone", json={"disabled": True}).status_code == 200
        clock.advance(2 * 3600)
        owner.close()
        yield World(server, admin, keys, clients, csrf, secret_key, itertools.count())
        for surface in clients.values():
            for client in surface.values():
                client.close()


# -- the requests --------------------------------------------------------------------------------------

PATH_VALUES = {
    "owner": "olivia",  # the App Center dialect names the app's real owner
    "label": "v1",
    "key_id": "0000000000000000",
    "account": "extra",
    "email": "extra@example.com",
    "org": "Crew",
    "machine": "laptop",
    "key": "victim",
    "action": "rollout",
    "webhook": "1",
}


def _other(deployment: str) -> str:
    return "Production" if deployment == "Staging" else "Staging"


def _path(surface: str, template: str, app_name: str, deployment: str) -> str:
    values = {**PATH_VALUES, "app": app_name, "deployment": deployment, "destination": deployment}
    if surface in ("codepush", "appcenter") and "{destination}" in template:
        values["deployment"] = _other(deployment)  # promote from the other deployment to this one
    if template.startswith("/api/v1/organisations/"):
        values["name"] = "Crew"
    elif template.startswith("/api/v1/accounts/"):
        values["name"] = "gone"
    else:
        values["name"] = "victim"
    path = template.format(**values)
    prefix = {"api": "", "codepush": "", "appcenter": "", "console": "/console"}[surface]
    return prefix + path


def _body(surface: str, method: str, template: str, deployment: str, n: int, csrf: str) -> dict[str, Any]:
    """Keyword arguments of the request: a body the route accepts, changing as little as it can."""
    unique = f"cell-{n}"
    if surface == "console":
        form: dict[str, str] = {"csrf_token": csrf}
        if template == "/sign-in":
            return {"data": {}}
        if template == "/apps":
            form.update(name=unique, platforms="ios")
        elif template.endswith("/distribution"):
            form["mode"] = "hybrid"
        elif template.endswith("/deployments") or template == "/access-keys":
            form["name"] = unique
        elif template.endswith("/rollout"):
            form["rollout"] = "100"
        elif template.endswith("/mandatory"):
            form["mandatory"] = "false"
        elif template.endswith("/disabled"):
            form["disabled"] = "false"
        elif template.endswith("/promote"):
            form["destination"] = deployment
        elif template.endswith("/collaborators"):
            form.update(account="extra", role="viewer")
        elif template.endswith("/role"):
            form["role"] = "viewer"
        return {"data": form} if method == "POST" else {}
    if surface == "api":
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/access-keys"): {"name": unique},
            ("POST", "/api/v1/accounts"): {"name": unique},
            ("PATCH", "/api/v1/accounts/{name}"): {"disabled": True},
            ("POST", "/api/v1/organisations"): {"name": unique},
            ("POST", "/api/v1/organisations/{name}/members"): {"account": "extra"},
            ("POST", "/api/v1/apps"): {"name": unique},
            ("PATCH", "/api/v1/apps/{app}"): {"distribution": "hybrid"},
            ("POST", "/api/v1/apps/{app}/binaries"): {"version": "1.0.0", "descriptor": {}},
            ("POST", "/api/v1/apps/{app}/deployments"): {"name": unique},
            ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}"): {"name": deployment},
            ("PUT", "/api/v1/apps/{app}/deployments/{deployment}/production"): {
                "production": deployment == "Production"
            },
            ("POST", "/api/v1/apps/{app}/collaborators"): {"account": "extra", "role": "viewer"},
            ("PATCH", "/api/v1/apps/{app}/collaborators/{account}"): {"role": "viewer"},
            ("POST", "/api/v1/apps/{app}/transfer"): {"account": "extra"},
            ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}/releases"): {"description": unique},
            ("PATCH", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}"): {
                "description": unique
            },
            ("POST", "/api/v1/apps/{app}/promote"): {"source": _other(deployment), "destination": deployment},
            ("POST", "/api/v1/apps/{app}/deployments/{deployment}/rollback"): {},
            ("POST", "/api/v1/apps/{app}/signing-keys"): {"public_key": "ed25519:AAAA"},
            ("POST", "/api/v1/apps/{app}/deployments/{deployment}/releases/{label}/rollout"): {
                "act": "end",
                "reason": unique,
            },
            ("PUT", "/api/v1/apps/{app}/deployments/{deployment}/rollout-policy"): {"policy": {}},
            ("POST", "/api/v1/apps/{app}/webhooks"): {
                "url": "http://127.0.0.1:9/hook",
                "events": ["release.published"],
            },
            ("PATCH", "/api/v1/apps/{app}/webhooks/{webhook}"): {},
        }
        if (method, template) == ("POST", "/api/v1/apps/{app}/deployments/{deployment}/releases"):
            return {
                "files": {"package": ("b.zip", bundle(unique), "application/zip")},
                "data": {"release": json.dumps({"target_version": "1.0.0"})},
            }
        body = bodies.get((method, template))
        return {"json": body} if body is not None else {}
    info = {"appVersion": "1.0.0", "description": unique}
    codepush: dict[tuple[str, str], Any] = {
        ("POST", "/accessKeys"): {"friendlyName": unique, "ttl": 3_600_000},
        ("PATCH", "/accessKeys/{key}"): {},
        ("POST", "/api_tokens"): {"description": unique},
        ("POST", "/apps"): {"name": unique, "os": "iOS", "platform": "React-Native"},
        ("PATCH", "/apps/{app}"): {"name": "Shop"},
        ("PATCH", "/apps/{owner}/{app}"): {"name": "Shop"},
        ("POST", "/apps/{app}/deployments"): {"name": unique},
        ("POST", "/apps/{owner}/{app}/deployments"): {"name": unique},
        # a name in other case: renames (so rights are checked) without changing how it is found
        ("PATCH", "/apps/{app}/deployments/{deployment}"): {"name": deployment.upper()},
        ("PATCH", "/apps/{owner}/{app}/deployments/{deployment}"): {"name": deployment.upper()},
        ("PATCH", "/apps/{app}/deployments/{deployment}/release"): {"packageInfo": {"description": unique}},
        ("PATCH", "/apps/{owner}/{app}/deployments/{deployment}/releases/{label}"): {"description": unique},
        ("POST", "/apps/{app}/deployments/{deployment}/promote/{destination}"): {"packageInfo": {}},
        ("POST", "/apps/{owner}/{app}/deployments/{deployment}/promote_release/{destination}"): {},
        ("POST", "/apps/{owner}/{app}/deployments/{deployment}/rollback_release"): {},
        ("POST", "/apps/{owner}/{app}/deployments/{deployment}/releases"): {
            "release_upload": {"id": "nothing", "token": "nothing"},
            "target_binary_version": "1.0.0",
        },
        ("POST", "/apps/{owner}/{app}/invitations"): {"user_email": "extra@example.com"},
        ("POST", "/orgs/{org}/apps"): {"display_name": unique, "os": "iOS", "platform": "React-Native"},
    }
    if (method, template) == ("POST", "/apps/{app}/deployments/{deployment}/release"):
        return {
            "files": {"package": ("b.zip", bundle(unique), "application/zip")},
            "data": {"packageInfo": json.dumps(info)},
        }
    body = codepush.get((method, template))
    return {"json": body} if body is not None else {}


def _deployment_of(template: str, rule: Rule) -> list[str | None]:
    if rule.kind == "deployment":
        return list(DEPLOYMENTS)
    return ["Ghost" if "{deployment}" in template else None]


HIDDEN_CODES = {"app-not-found", "no-such-organisation"}


def outcome(surface: str, response: httpx.Response) -> str:
    """What an answer says about the rights check."""
    status = response.status_code
    if surface == "console":
        location = response.headers.get("location", "")
        if (status == 303 and location.startswith("/console/sign-in")) or status == 401:
            return "unauthenticated"
        if status == 403 and "Forbidden" in response.text and "origin" not in response.text.lower():
            return "forbidden"
        page = html.unescape(response.text)
        if status == 404 and ('No app named "' in page or "No access key named" in page):
            return "hidden"
        return "allow" if status not in (401, 403) else f"status {status}"
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "forbidden"
    if status == 404:
        text, code = response.text, None
        if response.headers.get("content-type", "").endswith("json"):
            body = response.json()
            if isinstance(body, dict):
                text, code = str(body.get("detail") or body.get("message") or ""), body.get("code")
        said = re.search(
            r'App "[^"]+" does not exist|[Aa]ccess key "[^"]+" does not exist|No access key named'
            r'|Organisation "[^"]+" does not exist',
            text,
        )
        if code in HIDDEN_CODES or said:
            return "hidden"
    return "allow"


def _routes(world: World) -> dict[str, set[tuple[str, str]]]:
    """Every (method, path) of each surface, read from the app's route tables."""
    server = world.server
    management = {
        (method.upper(), path)
        for path, operations in server.management.openapi()["paths"].items()
        for method in operations
    }
    console_app = next(
        r.app for r in server.management.router.routes if isinstance(r, Mount) and r.path == "/console"
    )
    console: set[tuple[str, str]] = set()
    for path, operations in console_app.openapi()["paths"].items():
        for method in operations:
            if path.endswith("/{action}") and method == "post":
                console |= {("POST", path.replace("{action}", a)) for a in CONSOLE_ACTIONS}
            else:
                console.add((method.upper(), path))
    cpm = server.codepush_management
    assert cpm is not None

    def table(router: Any) -> set[tuple[str, str]]:
        return {(m, r.path) for r in router.routes for m in r.methods if m != "HEAD"}

    return {
        "api": management,
        "codepush": table(cpm.standalone),
        "appcenter": table(cpm.appcenter),
        "console": console,
    }


# -- the tests -----------------------------------------------------------------------------------------


def test_every_route_has_a_rule(world: World) -> None:
    """A route added to any surface without a rule in this file fails here."""
    for surface, routes in _routes(world).items():
        missing = routes - set(SURFACES[surface])
        stale = set(SURFACES[surface]) - routes
        assert not missing, f"{surface} routes without a rule: {sorted(missing)}"
        assert not stale, f"{surface} rules of routes that are gone: {sorted(stale)}"


@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_route_for_every_principal(world: World, surface: str) -> None:
    failures: list[str] = []
    for (method, template), rule in SURFACES[surface].items():
        for deployment in _deployment_of(template, rule):
            answers: dict[str, httpx.Response] = {}
            for who in PRINCIPALS:
                app_name = world.fresh_shop() if rule.fresh and who not in BAD_KEYS else "Shop"
                if rule.kind == "key" and who == "server-admin":
                    world.admin.post("/api/v1/access-keys", json={"name": "victim"})  # again, if revoked
                path = _path(surface, template, app_name, deployment or "Staging")
                kwargs = _body(
                    surface, method, template, deployment or "Staging", next(world.counter), world.csrf[who]
                )
                response = world.clients[surface][who].request(method, path, **kwargs)
                answers[who] = response
                if response.status_code >= 500:
                    failures.append(
                        f"{surface} {method} {path} as {who}: {response.status_code} {response.text[:200]}"
                    )
                    continue
                if who != "server-admin":
                    for secret in ("Secret", world.secret_key):
                        if secret in response.text:
                            failures.append(f"{surface} {method} {path} as {who} leaks {secret!r}")
                want = expected(who, rule, deployment, fresh=rule.fresh)
                if want == "same":
                    continue
                got = outcome(surface, response)
                if got != want:
                    failures.append(
                        f"{surface} {method} {path} as {who}: expected {want}, got {got} "
                        f"({response.status_code} {response.text[:300]})"
                    )
            if rule.kind == "open" and surface != "console":  # the sign-in page sends signed-in browsers on
                statuses = {who: r.status_code for who, r in answers.items()}
                if len(set(statuses.values())) != 1:
                    failures.append(f"{surface} {method} {template} answers by who asks: {statuses}")
    assert not failures, "\n".join(failures)


def test_the_table_says_what_the_issue_says() -> None:
    """A few cells read aloud, so the table itself is checked against the issue's words."""
    assert expected("developer", deployment(A.PUBLISH), "Staging") == "allow"
    assert expected("developer", deployment(A.PUBLISH), "Production") == "forbidden"
    assert expected("release-manager", deployment(A.PUBLISH), "Production") == "allow"
    assert expected("admin", app(A.MANAGE_COLLABORATORS), None) == "allow"
    assert expected("admin", app(A.TRANSFER_APPS), None) == "forbidden"
    assert expected("viewer", app(A.READ), None) == "allow"
    assert expected("outsider", app(A.READ), None) == "hidden"
    assert expected("narrow", deployment(A.PUBLISH), "Production") == "forbidden"
    assert expected("expired", app(A.READ), None) == "unauthenticated"
