"""The console refuses what it must: bad, expired and revoked keys, expired sessions, forged forms and
cross-site requests, each with a page that says why, and none of them changes anything."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import MovableClock, bundle, publish
from overair.app import OverairApp, create_app
from overair.config import Settings

ROLLOUT_FORM = "/console/apps/CoolApp/deployments/Production/releases/v2/rollout"
CONFIRM_ROLLOUT = "/console/apps/CoolApp/deployments/Production/releases/v2/confirm/rollout?rollout=50"


@pytest.fixture
def coolapp(api: TestClient) -> TestClient:
    """CoolApp with v1 (100%) and v2 rolling out to 20% on Production."""
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    assert publish(api, content=bundle("one")).status_code == 201
    assert publish(api, content=bundle("two"), rollout=20).status_code == 201
    return api


def browser(server: OverairApp, base_url: str = "http://testserver") -> TestClient:
    return TestClient(server, base_url=base_url, follow_redirects=False)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in and return the CSRF token of a page's forms."""
    response = client.post("/console/sign-in", data={"access_key": key})
    assert response.status_code == 303, response.text
    page = client.get(CONFIRM_ROLLOUT)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sent_to_sign_in(client: TestClient, path: str, reason: str | None) -> str:
    """GET a page without a valid session: it redirects to the sign-in page, which says why."""
    response = client.get(path)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/console/sign-in?next=")
    assert (f"reason={reason}" in location) if reason else ("reason=" not in location)
    page = client.get(location)
    assert page.status_code == 200
    assert "<h1>Sign in</h1>" in page.text
    return page.text


def rollout(api: TestClient) -> int:
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    return int(history[-1]["rollout"])


def test_sign_in_sets_a_strict_http_only_session_cookie(server: OverairApp, admin_key: str, coolapp) -> None:
    with browser(server) as client:
        response = client.post("/console/sign-in", data={"access_key": admin_key})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/"
        cookie = response.headers["set-cookie"].lower()
        for part in ("overair_console=", "httponly", "samesite=strict", "path=/console"):
            assert part in cookie
        assert "secure" not in cookie  # plain http here
        page = client.get("/console/")
        assert page.status_code == 200
        assert "Signed in as <strong>admin</strong>" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"


def test_cookie_is_secure_over_https(server: OverairApp, admin_key: str) -> None:
    with browser(server, "https://testserver") as client:
        response = client.post("/console/sign-in", data={"access_key": admin_key})
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("key", ["", "oa_wrong", "not a key at all"])
def test_a_bad_key_is_refused(server: OverairApp, admin_key: str, key: str) -> None:
    with browser(server) as client:
        response = client.post("/console/sign-in", data={"access_key": key})
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
        assert "<h1>Sign in</h1>" in response.text
        assert "access key" in response.text.lower()
        sent_to_sign_in(client, "/console/", None)


def test_without_a_session_pages_ask_to_sign_in_and_come_back(server: OverairApp, admin_key: str, coolapp):
    with browser(server) as client:
        page = sent_to_sign_in(client, "/console/apps/CoolApp", None)
        assert "Sign in with an access key to continue." in page
        assert 'name="next" value="/console/apps/CoolApp"' in page
        response = client.post(
            "/console/sign-in", data={"access_key": admin_key, "next": "/console/apps/CoolApp"}
        )
        assert response.headers["location"] == "/console/apps/CoolApp"
        evil = client.post(
            "/console/sign-in", data={"access_key": admin_key, "next": "https://evil.example/"}
        )
        assert evil.headers["location"] == "/console/"


def test_an_expired_key_is_refused_and_ends_its_sessions(
    server: OverairApp, coolapp: TestClient, clock: MovableClock
) -> None:
    created = coolapp.post("/api/v1/access-keys", json={"name": "shortlived", "expires_in_seconds": 2})
    assert created.status_code == 201
    assert created.json()["expires_at"] is not None
    key = created.json()["key"]
    with browser(server) as page_client, browser(server) as form_client:
        sign_in(page_client, key)
        csrf = sign_in(form_client, key)
        clock.advance(2.2)
        page = sent_to_sign_in(page_client, "/console/", "key-expired")
        assert "The access key you signed in with has expired" in page
        response = form_client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"})
        assert response.status_code == 401
        assert "The access key &#34;shortlived&#34; expired on" in response.text
        again = form_client.post("/console/sign-in", data={"access_key": key})
        assert again.status_code == 401
        assert "The access key &#34;shortlived&#34; expired on" in again.text
    api_answer = coolapp.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    assert api_answer.status_code == 401
    assert "expired" in api_answer.json()["detail"]
    assert rollout(coolapp) == 20


@pytest.fixture
def short_sessions(tmp_path: Path, clock: MovableClock) -> Iterator[OverairApp]:
    settings = Settings(
        data_dir=tmp_path / "short",
        allowed_hosts="testserver",
        console_session_minutes=1.5 / 60,
        _env_file=None,  # type: ignore[call-arg]
    )
    yield create_app(settings, clock=clock)


def test_an_expired_session_is_refused_with_no_state_change(
    short_sessions: OverairApp, clock: MovableClock
) -> None:
    server = short_sessions
    key = server.state.access_keys.ensure_initial_key().key
    with TestClient(server, base_url="http://testserver") as api:
        api.headers["Authorization"] = f"Bearer {key}"
        api.post("/api/v1/apps", json={"name": "CoolApp"})
        publish(api, content=bundle("one"))
        publish(api, content=bundle("two"), rollout=20)
        with browser(server) as client:
            csrf = sign_in(client, key)
            cookie = client.cookies.get("overair_console") or ""
            clock.advance(1.7)
            response = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"})
            assert response.status_code == 401
            assert "Your session expired" in response.text
            client.cookies.set("overair_console", cookie, path="/console")
            assert "Your session expired" in sent_to_sign_in(client, "/console/", "expired")
        assert rollout(api) == 20


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_forged_form_is_refused_with_no_state_change(
    server: OverairApp, admin_key: str, coolapp: TestClient, token: str | None
) -> None:
    with browser(server) as client:
        sign_in(client, admin_key)
        data = {"rollout": "50"} | ({"csrf_token": token} if token is not None else {})
        response = client.post(ROLLOUT_FORM, data=data)
        assert response.status_code == 403
        assert "Form refused" in response.text
        assert "security token" in response.text
    assert rollout(coolapp) == 20


def test_another_sessions_token_does_not_pass(
    server: OverairApp, admin_key: str, coolapp: TestClient
) -> None:
    with browser(server) as first, browser(server) as second:
        first_token = sign_in(first, admin_key)
        sign_in(second, admin_key)
        response = second.post(ROLLOUT_FORM, data={"csrf_token": first_token, "rollout": "50"})
        assert response.status_code == 403
    assert rollout(coolapp) == 20


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_a_cross_site_request_is_refused_with_no_state_change(
    server: OverairApp, admin_key: str, coolapp: TestClient, headers: dict[str, str]
) -> None:
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        response = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"}, headers=headers)
        assert response.status_code == 403
        assert "Cross-site request refused" in response.text
        sign_out = client.post("/console/sign-out", data={"csrf_token": csrf}, headers=headers)
        assert sign_out.status_code == 403
        assert client.get("/console/").status_code == 200  # still signed in
        login = client.post("/console/sign-in", data={"access_key": admin_key}, headers=headers)
        assert login.status_code == 403
    assert rollout(coolapp) == 20


def test_same_origin_form_with_the_token_works(
    server: OverairApp, admin_key: str, coolapp: TestClient
) -> None:
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        headers = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        response = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"}, headers=headers)
        assert response.status_code == 303
    assert rollout(coolapp) == 50


def test_sign_out_ends_the_session_on_the_server(server: OverairApp, admin_key: str, coolapp) -> None:
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        cookie = client.cookies.get("overair_console")
        response = client.post("/console/sign-out", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in?reason=signed-out"
        assert "You are signed out." in client.get(response.headers["location"]).text
    with browser(server) as replay:  # the old cookie, replayed, is worth nothing
        replay.cookies.set("overair_console", cookie or "", path="/console")
        assert "Your session has ended" in sent_to_sign_in(replay, "/console/", "ended")
        replay.cookies.set("overair_console", cookie or "", path="/console")
        assert replay.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"}).status_code == 401
    assert rollout(coolapp) == 20


def test_revoking_the_key_ends_its_sessions(server: OverairApp, coolapp: TestClient) -> None:
    key = coolapp.post("/api/v1/access-keys", json={"name": "bob"}).json()["key"]
    with browser(server) as client:
        csrf = sign_in(client, key)
        assert coolapp.delete("/api/v1/access-keys/bob").status_code == 204
        assert client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "50"}).status_code == 401
        client.cookies.set("overair_console", client.cookies.get("overair_console") or "x", path="/console")
        assert "Your session has ended" in sent_to_sign_in(client, "/console/", "ended")
    assert rollout(coolapp) == 20


def test_actions_are_done_as_the_signed_in_key(server: OverairApp, coolapp: TestClient) -> None:
    key = coolapp.post("/api/v1/access-keys", json={"name": "carol"}).json()["key"]
    with browser(server) as client:
        csrf = sign_in(client, key)
        response = client.post(
            "/console/apps/CoolApp/deployments/Production/releases/v1/rollback", data={"csrf_token": csrf}
        )
        assert response.status_code == 303
        assert "done=rollback" in response.headers["location"]
        page = client.get(response.headers["location"])
        assert "Rolled back: v3 now serves the content of v1." in page.text
    history = coolapp.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    assert (history[-1]["label"], history[-1]["released_by"], history[-1]["origin_label"]) == (
        "v3",
        "carol",
        "v1",
    )
    assert history[1]["disabled"] is True  # the partial rollout it replaced


def test_domain_refusals_are_pages_not_changes(
    server: OverairApp, admin_key: str, coolapp: TestClient
) -> None:
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        shrink = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "10"})
        assert shrink.status_code == 409
        assert "can only grow" in shrink.text
        bad = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": "lots"})
        assert bad.status_code == 422
        assert "whole percentage from 1 to 100" in bad.text
        missing = client.get("/console/apps/NoSuchApp")
        assert missing.status_code == 404
        assert "NoSuchApp" in missing.text
        assert client.get("/console/nothing/here").status_code == 404
    assert rollout(coolapp) == 20


def test_signed_only_apps_send_rollbacks_to_the_cli(server: OverairApp, admin_key: str, coolapp: TestClient):
    from overair.packages import signing

    public = signing.public_key_text(signing.generate_private_key())
    assert coolapp.post("/api/v1/apps/CoolApp/signing-keys", json={"public_key": public}).status_code == 201
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        page = client.get("/console/apps/CoolApp/deployments/Production/releases/v2")
        assert "accepts signed releases only" in page.text
        assert "confirm/rollback" not in page.text
        refused = client.post(
            "/console/apps/CoolApp/deployments/Production/releases/v1/rollback", data={"csrf_token": csrf}
        )
        assert refused.status_code in (400, 403, 409, 422)
        assert "signed releases only" in refused.text
    assert len(coolapp.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()) == 2


@pytest.mark.parametrize("value", ["²", "9" * 5000, "", "50.5", " 50", "٥٠", "0", "101"])
def test_rollouts_that_are_not_a_plain_percentage_are_refused_clearly(
    coolapp: TestClient, server: OverairApp, admin_key: str, value: str
) -> None:
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        posted = client.post(ROLLOUT_FORM, data={"csrf_token": csrf, "rollout": value})
        confirm = client.get(CONFIRM_ROLLOUT.split("?")[0], params={"rollout": value})
    for response in (posted, confirm):
        assert response.status_code == 422, (value, response.status_code)
        assert "whole percentage from 1 to 100" in response.text
    assert rollout(coolapp) == 20


# -- every management form gets the same checks ----------------------------------------------------------

MANAGEMENT_FORMS = [
    ("/console/apps", {"name": "NewApp", "platforms": "ios"}),
    ("/console/apps/CoolApp/deployments", {"name": "Beta"}),
    ("/console/apps/CoolApp/distribution", {"mode": "store-only"}),
    ("/console/access-keys", {"name": "eve"}),
    ("/console/access-keys/bob/revoke", {}),
    ("/console/apps/CoolApp/deployments/Production/releases/v2/disabled", {"disabled": "true"}),
    ("/console/apps/CoolApp/deployments/Production/releases/v1/rollback", {"confirm": "v1"}),
]


def state(api: TestClient) -> tuple[object, ...]:
    """Everything the management forms could change."""
    app = api.get("/api/v1/apps/CoolApp").json()
    return (
        [a["name"] for a in api.get("/api/v1/apps").json()],
        [d["name"] for d in app["deployments"]],
        app["distribution"],
        [k["name"] for k in api.get("/api/v1/access-keys").json()],
        api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json(),
    )


@pytest.mark.parametrize(("path", "fields"), MANAGEMENT_FORMS, ids=[p for p, _ in MANAGEMENT_FORMS])
@pytest.mark.parametrize(
    ("token", "headers", "status", "title"),
    [
        (None, {}, 403, "Form refused"),
        ("forged-token", {}, 403, "Form refused"),
        ("session", {"Origin": "https://evil.example"}, 403, "Cross-site request refused"),
        ("session", {"Sec-Fetch-Site": "cross-site"}, 403, "Cross-site request refused"),
    ],
    ids=["no-token", "forged-token", "other-origin", "cross-site"],
)
def test_every_management_form_refuses_forged_and_cross_site_posts(
    server: OverairApp,
    admin_key: str,
    coolapp: TestClient,
    path: str,
    fields: dict[str, str],
    token: str | None,
    headers: dict[str, str],
    status: int,
    title: str,
) -> None:
    assert coolapp.post("/api/v1/access-keys", json={"name": "bob"}).status_code == 201
    before = state(coolapp)
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        data = dict(fields) | ({"csrf_token": csrf if token == "session" else token} if token else {})
        response = client.post(path, data=data, headers=headers)
        assert response.status_code == status, response.text
        assert title in response.text
    assert state(coolapp) == before


@pytest.mark.parametrize(("path", "fields"), MANAGEMENT_FORMS, ids=[p for p, _ in MANAGEMENT_FORMS])
def test_every_management_form_needs_a_session(
    server: OverairApp, coolapp: TestClient, path: str, fields: dict[str, str]
) -> None:
    assert coolapp.post("/api/v1/access-keys", json={"name": "bob"}).status_code == 201
    before = state(coolapp)
    with browser(server) as client:
        response = client.post(path, data={"csrf_token": "x", **fields})
        assert response.status_code == 401
        assert "<h1>Sign in</h1>" in response.text
    assert state(coolapp) == before


def test_every_management_form_works_with_its_token(
    server: OverairApp, admin_key: str, coolapp: TestClient
) -> None:
    assert coolapp.post("/api/v1/access-keys", json={"name": "bob"}).status_code == 201
    before = state(coolapp)
    with browser(server) as client:
        csrf = sign_in(client, admin_key)
        for path, fields in MANAGEMENT_FORMS:
            response = client.post(path, data={"csrf_token": csrf, **fields})
            assert response.status_code in (201, 303), (path, response.text)
    after = state(coolapp)
    assert all(a != b for a, b in zip(before, after, strict=True))  # each form changed what it says
