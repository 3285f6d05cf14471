"""The audit log (issue 16, item 5): every change made through the management API, both CodePush
dialects and the console is recorded once, with who made it, through which key, from where, and the
before and after of what changed; in the change's own transaction; append-only; pruned by a job."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from conftest import MovableClock, bundle, publish
from overair.app import OverairApp, create_app
from overair.audit.models import AppendOnly, AuditEvent
from overair.audit.service import AuditQuery
from overair.auth.principal import Action, Forbidden, Principal, Surface
from overair.config import Settings
from overair.db import make_sessionmaker
from overair.errors import Invalid
from overair.packages import signing
from overair.releases.schemas import AppCreate

DESCRIPTOR = {"format": 1, "app_name": "CoolApp", "runtime_version": "0.74.3", "native_modules": {}}


def events(api: TestClient, **filters: Any) -> list[dict[str, Any]]:
    """Every event the filters match, oldest first (the route answers newest first)."""
    answer = api.get("/api/v1/audit", params={"limit": 500, **filters})
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["events"]))


def acts(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["action"], e["app"], e["deployment"], e["label"], e["item"]) for e in found]


def csrf_of(page: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form with a CSRF token on the page"
    return found.group(1)


# -- the management API --------------------------------------------------------------------------------


def test_every_change_through_the_management_api_is_recorded_once(api: TestClient) -> None:
    private = signing.generate_private_key()
    steps = [
        api.post("/api/v1/apps", json={"name": "CoolApp"}),
        api.post("/api/v1/apps/CoolApp/deployments", json={"name": "Beta"}),
        api.patch("/api/v1/apps/CoolApp/deployments/Beta", json={"name": "QA"}),
        publish(api, "CoolApp", "Staging", bundle("one")),
        publish(api, "CoolApp", "Staging", bundle("two"), rollout=30),
        api.patch("/api/v1/apps/CoolApp/deployments/Staging/releases/v2", json={"rollout": 60}),
        api.post("/api/v1/apps/CoolApp/deployments/Staging/rollback", json={}),
        api.post("/api/v1/apps/CoolApp/promote", json={"source": "Staging", "destination": "Production"}),
        api.patch("/api/v1/apps/CoolApp/deployments/Production/releases/v1", json={"disabled": True}),
        api.post("/api/v1/apps/CoolApp/binaries", json={"version": "1.0.0", "descriptor": DESCRIPTOR}),
        api.post("/api/v1/apps/CoolApp/signing-keys", json={"public_key": signing.public_key_text(private)}),
        api.post(f"/api/v1/apps/CoolApp/signing-keys/{signing.key_id(private)}/retire"),
        api.delete("/api/v1/apps/CoolApp/deployments/Staging/rehearsal"),
        api.delete("/api/v1/apps/CoolApp/deployments/QA"),
        api.post("/api/v1/access-keys", json={"name": "ci"}),
        api.delete("/api/v1/access-keys/ci"),
        api.patch("/api/v1/apps/CoolApp", json={"distribution": "store-only"}),
        api.delete("/api/v1/apps/CoolApp"),
    ]
    assert [s.status_code for s in steps if s.status_code >= 300] == [], [
        s.text for s in steps if s.status_code >= 300
    ]
    kid = signing.key_id(private)
    found = events(api)
    assert acts(found) == [
        ("access-key.create", None, None, None, "admin"),  # the first admin key, made by the server
        ("app.create", "CoolApp", None, None, None),
        ("deployment.create", "CoolApp", "Beta", None, None),
        ("deployment.rename", "CoolApp", "QA", None, None),
        ("release.publish", "CoolApp", "Staging", "v1", None),
        ("release.publish", "CoolApp", "Staging", "v2", None),
        ("release.patch", "CoolApp", "Staging", "v2", None),
        ("release.rollback", "CoolApp", "Staging", "v3", None),
        ("release.promote", "CoolApp", "Production", "v1", None),
        ("release.patch", "CoolApp", "Production", "v1", None),
        ("binary.register", "CoolApp", None, None, "1.0.0"),
        ("signing-key.add", "CoolApp", None, None, kid),
        ("signing-key.retire", "CoolApp", None, None, kid),
        ("rehearsal.clear", "CoolApp", "Staging", None, None),
        ("deployment.remove", "CoolApp", "QA", None, None),
        ("access-key.create", None, None, None, "ci"),
        ("access-key.revoke", None, None, None, "ci"),
        ("app.distribution", "CoolApp", None, None, None),
        ("app.remove", "CoolApp", None, None, None),
    ]
    first, *by_api = found
    assert (first["actor"], first["surface"], first["key_id"]) == ("overair serve", "system", None)
    key_id = by_api[0]["key_id"]
    assert key_id is not None
    for event in by_api:
        who = (
            event["actor"],
            event["key_id"],
            event["surface"],
            event["client_address"],
            event["user_agent"],
        )
        assert who == ("admin", key_id, "api", "testclient", "testclient"), event
    # the before and after hold what changed, and only that
    by_action = {(e["action"], e["label"], e["deployment"]): e for e in found}
    mode = by_action["app.distribution", None, None]
    assert (mode["before"], mode["after"]) == ({"distribution": "hybrid"}, {"distribution": "store-only"})
    rollout = by_action["release.patch", "v2", "Staging"]
    assert (rollout["before"], rollout["after"]) == ({"rollout": 30}, {"rollout": 60})
    disabled = by_action["release.patch", "v1", "Production"]
    assert (disabled["before"], disabled["after"]) == ({"disabled": False}, {"disabled": True})
    created = by_action["app.create", None, None]
    assert created["before"] == {}
    assert created["after"] == {
        "name": "CoolApp",
        "platforms": "android,ios",
        "distribution": "hybrid",
        "deployments": ["Production", "Staging"],
    }
    rolled = by_action["release.rollback", "v3", "Staging"]
    assert {k: rolled["after"][k] for k in ("from_label", "content_of", "from_label_disabled")} == {
        "from_label": "v2",
        "content_of": "v1",
        "from_label_disabled": True,
    }
    promoted = by_action["release.promote", "v1", "Production"]
    assert promoted["after"]["from_deployment"] == "Staging" and promoted["after"]["from_label"] == "v3"
    removed = by_action["app.remove", None, None]
    assert removed["after"] == {} and removed["before"]["name"] == "CoolApp"
    revoked = next(e for e in found if e["action"] == "access-key.revoke")
    assert revoked["before"]["name"] == "ci" and "key" not in revoked["before"]


def test_the_overair_cli_is_recorded_as_its_own_surface(api: TestClient) -> None:
    cli = api.post("/api/v1/apps", json={"name": "CoolApp"}, headers={"User-Agent": "overair-cli/1.2.3"})
    assert cli.status_code == 201
    [event] = events(api, action="app.create")
    assert (event["surface"], event["user_agent"]) == ("cli", "overair-cli/1.2.3")


def test_a_refused_change_records_nothing(api: TestClient) -> None:
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 409
    assert api.delete("/api/v1/apps/CoolApp/deployments/Nope").status_code == 404
    assert acts(events(api, app="CoolApp")) == [("app.create", "CoolApp", None, None, None)]


def test_a_change_whose_event_cannot_be_written_is_not_made(server: OverairApp, admin_key: str) -> None:
    """The event is written in the change's transaction: when it cannot be, the change is undone too."""
    admin = Principal("admin", None, Surface.API)
    with server.state.engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_events"))
    with pytest.raises(Exception, match="audit_events"):
        server.state.releases.apps.create_app(admin, AppCreate(name="CoolApp"))
    assert server.state.releases.apps.list_apps(admin) == []


# -- the CodePush management dialects and the console --------------------------------------------------


def test_changes_through_both_codepush_dialects_are_recorded_with_surface_codepush(
    server: OverairApp, api: TestClient, admin_key: str
) -> None:
    standalone = TestClient(server, base_url="http://testserver")
    standalone.headers.update({"Authorization": f"Bearer {admin_key}", "User-Agent": "code-push-cli/2.1.9"})
    appcenter = TestClient(server, base_url="http://testserver")
    appcenter.headers.update({"x-api-token": admin_key, "User-Agent": "appcenter-cli"})
    info = {"appVersion": "1.0.0", "description": "first", "rollout": 50}
    steps = [
        standalone.post("/apps", json={"name": "CoolApp"}),
        standalone.post("/apps/CoolApp/deployments", json={"name": "Beta"}),
        standalone.post(
            "/apps/CoolApp/deployments/Staging/release",
            files={"package": ("u.zip", bundle("one"), "application/zip")},
            data={"packageInfo": json.dumps(info)},
        ),
        standalone.patch("/apps/CoolApp/deployments/Staging/release", json={"packageInfo": {"rollout": 80}}),
        standalone.post("/apps/CoolApp/deployments/Staging/promote/Production", json={}),
        standalone.post(
            "/apps/CoolApp/deployments/Production/release",
            files={"package": ("u.zip", bundle("two"), "application/zip")},
            data={"packageInfo": json.dumps({"appVersion": "1.0.0"})},
        ),
        standalone.post("/apps/CoolApp/deployments/Production/rollback"),
        standalone.delete("/apps/CoolApp/deployments/Beta/history"),
        standalone.patch("/apps/CoolApp/deployments/Beta", json={"name": "QA"}),
        standalone.post("/accessKeys", json={"friendlyName": "ci", "ttl": 3_600_000}),
        standalone.patch("/accessKeys/ci", json={"friendlyName": "ci2", "ttl": 7_200_000}),
        appcenter.patch("/apps/admin/CoolApp/deployments/Production/releases/v1", json={"is_disabled": True}),
        appcenter.patch("/apps/admin/CoolApp", json={"name": "NiceApp"}),
        appcenter.delete("/apps/admin/NiceApp/deployments/QA"),
        appcenter.delete("/api_tokens/ci2"),
        appcenter.delete("/apps/admin/NiceApp"),
    ]
    assert [s.status_code for s in steps if s.status_code >= 300] == [], [
        s.text for s in steps if s.status_code >= 300
    ]
    found = [e for e in events(api) if e["surface"] == "codepush"]
    assert acts(found) == [
        ("app.create", "CoolApp", None, None, None),
        ("deployment.create", "CoolApp", "Beta", None, None),
        ("release.publish", "CoolApp", "Staging", "v1", None),
        ("release.patch", "CoolApp", "Staging", "v1", None),
        ("release.promote", "CoolApp", "Production", "v1", None),
        ("release.publish", "CoolApp", "Production", "v2", None),
        ("release.rollback", "CoolApp", "Production", "v3", None),
        ("deployment.clear-history", "CoolApp", "Beta", None, None),
        ("deployment.rename", "CoolApp", "QA", None, None),
        ("access-key.create", None, None, None, "ci"),
        ("access-key.rename", None, None, None, "ci2"),
        ("access-key.expiry", None, None, None, "ci2"),
        ("release.patch", "CoolApp", "Production", "v1", None),
        ("app.rename", "NiceApp", None, None, None),
        ("deployment.remove", "NiceApp", "QA", None, None),
        ("access-key.revoke", None, None, None, "ci2"),
        ("app.remove", "NiceApp", None, None, None),
    ]
    assert [e["user_agent"] for e in found] == ["code-push-cli/2.1.9"] * 12 + ["appcenter-cli"] * 5
    assert {e["actor"] for e in found} == {"admin"}
    changed = {(e["action"], e["label"] or e["item"]): (e["before"], e["after"]) for e in found}
    assert changed["release.patch", "v1"] == ({"disabled": False}, {"disabled": True})
    assert found[3]["before"] == {"rollout": 50} and found[3]["after"] == {"rollout": 80}
    assert changed["app.rename", None] == ({"name": "CoolApp"}, {"name": "NiceApp"})
    assert changed["access-key.rename", "ci2"] == ({"name": "ci"}, {"name": "ci2"})
    before, after = changed["access-key.expiry", "ci2"]
    assert dt.datetime.fromisoformat(after["expires_at"]) > dt.datetime.fromisoformat(before["expires_at"])
    assert [e["surface"] for e in events(api)] == ["system", *["codepush"] * 17]


def test_changes_through_the_console_are_recorded_with_surface_console(
    server: OverairApp, api: TestClient, admin_key: str
) -> None:
    console = TestClient(server, base_url="http://testserver", follow_redirects=False)
    console.headers["User-Agent"] = "Mozilla/5.0 (console test)"
    assert console.post("/console/sign-in", data={"access_key": admin_key}).status_code == 303
    token = csrf_of(console.get("/console/").text)

    def post(path: str, **form: Any) -> None:
        answer = console.post("/console" + path, data={"csrf_token": token, **form})
        assert answer.status_code in (201, 303), answer.text

    post("/apps", name="CoolApp", platforms="ios")
    post("/apps/CoolApp/distribution", mode="store-only")
    post("/apps/CoolApp/deployments", name="Beta")
    post("/access-keys", name="ci")
    post("/access-keys/ci/revoke")
    found = events(api)[1:]
    assert acts(found) == [
        ("app.create", "CoolApp", None, None, None),
        ("app.distribution", "CoolApp", None, None, None),
        ("deployment.create", "CoolApp", "Beta", None, None),
        ("access-key.create", None, None, None, "ci"),
        ("access-key.revoke", None, None, None, "ci"),
    ]
    assert {(e["actor"], e["surface"], e["user_agent"]) for e in found} == {
        ("admin", "console", "Mozilla/5.0 (console test)")
    }
    assert (found[1]["before"], found[1]["after"]) == (
        {"distribution": "hybrid"},
        {"distribution": "store-only"},
    )


# -- append-only and retention -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_route_changes_or_deletes_events(api: TestClient, method: str) -> None:
    assert api.request(method, "/api/v1/audit").status_code == 405
    assert api.request(method, "/api/v1/audit/1").status_code == 404
    assert len(events(api)) == 1


def test_the_database_layer_refuses_to_update_or_delete_an_event(server: OverairApp, admin_key: str) -> None:
    with make_sessionmaker(server.state.engine)() as session:
        event = session.scalars(select(AuditEvent)).one()
        event.actor = "someone else"
        with pytest.raises(AppendOnly):
            session.flush()
        session.rollback()
        session.delete(session.scalars(select(AuditEvent)).one())
        with pytest.raises(AppendOnly):
            session.flush()


def test_the_audit_reads_have_no_method_that_changes_events(server: OverairApp) -> None:
    public = {name for name in dir(server.state.audit) if not name.startswith("_")}
    assert public == {"events", "prune", "retention_days"}


def make_server(settings: Settings, clock: MovableClock, days: int) -> OverairApp:
    return create_app(settings.model_copy(update={"audit_retention_days": days}), clock=clock)


def count(server: OverairApp) -> int:
    with make_sessionmaker(server.state.engine)() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_events_older_than_the_retention_are_pruned_by_a_job(settings: Settings, clock: MovableClock) -> None:
    server = make_server(settings, clock, days=30)
    admin = Principal("admin", None, Surface.API)
    server.state.releases.apps.create_app(admin, AppCreate(name="OldApp"))
    server.state.jobs.run_pending()
    assert count(server) == 1  # not old yet
    clock.advance(20 * 86400)
    server.state.releases.apps.create_app(admin, AppCreate(name="NewApp"))
    clock.advance(11 * 86400)
    server.state.jobs.run_pending()
    with make_sessionmaker(server.state.engine)() as session:
        assert list(session.scalars(select(AuditEvent.app))) == ["NewApp"]


def test_a_retention_of_zero_keeps_every_event(settings: Settings, clock: MovableClock) -> None:
    server = make_server(settings, clock, days=0)
    server.state.releases.apps.create_app(Principal("admin", None, Surface.API), AppCreate(name="OldApp"))
    clock.advance(5000 * 86400)
    server.state.jobs.run_pending()
    assert count(server) == 1


# -- reading -------------------------------------------------------------------------------------------


@pytest.fixture
def story(api: TestClient, clock: MovableClock) -> dict[str, str]:
    """Two apps changed over three days by two keys; the moments between the days."""
    ci = api.post("/api/v1/access-keys", json={"name": "ci"}).json()["key"]
    as_ci = {"Authorization": f"Bearer {ci}"}
    moments = {}
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    api.post("/api/v1/apps", json={"name": "OtherApp"})
    clock.advance(86400)
    moments["day2"] = (dt.datetime.now(dt.UTC) + clock.offset).isoformat()
    assert publish(api, "CoolApp", "Staging", bundle("one")).status_code == 201
    assert api.post("/api/v1/apps/CoolApp/promote", json={}, headers=as_ci).status_code == 201
    clock.advance(86400)
    moments["day3"] = (dt.datetime.now(dt.UTC) + clock.offset).isoformat()
    api.patch("/api/v1/apps/OtherApp/deployments/Staging", json={"name": "Beta"}, headers=as_ci)
    return moments


def test_filters_narrow_the_events(api: TestClient, story: dict[str, str]) -> None:
    assert acts(events(api, app="CoolApp")) == [
        ("app.create", "CoolApp", None, None, None),
        ("release.publish", "CoolApp", "Staging", "v1", None),
        ("release.promote", "CoolApp", "Production", "v1", None),
    ]
    assert [e["action"] for e in events(api, app="CoolApp", deployment="Production")] == ["release.promote"]
    assert [e["action"] for e in events(api, actor="ci")] == ["release.promote", "deployment.rename"]
    assert [e["action"] for e in events(api, action="release")] == ["release.publish", "release.promote"]
    assert [e["app"] for e in events(api, action="app.create")] == ["CoolApp", "OtherApp"]
    assert [e["action"] for e in events(api, since=story["day2"], until=story["day3"])] == [
        "release.publish",
        "release.promote",
    ]
    assert [e["action"] for e in events(api, since=story["day3"])] == ["deployment.rename"]


def test_pages_go_from_the_newest_to_the_oldest(api: TestClient, story: dict[str, str]) -> None:
    every = [e["id"] for e in reversed(events(api))]
    seen: list[int] = []
    cursor = None
    while True:
        page = api.get("/api/v1/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every and len(every) == 7


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"action": "release.delete"}, 'There is no audit action "release.delete": give a subject'),
        ({"deployment": "Staging"}, "A deployment filter needs the app it belongs to."),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_a_bad_filter_is_refused_with_what_to_give(api: TestClient, params: dict, detail: str) -> None:
    answer = api.get("/api/v1/audit", params=params)
    assert answer.status_code == 422, answer.text
    assert detail in answer.json()["detail"]


def test_events_of_no_app_need_the_right_to_operate_the_server(
    server: OverairApp, api: TestClient, story: dict[str, str]
) -> None:
    reader = Principal("reader", None, Surface.API, rights=frozenset({Action.READ}))
    seen = server.state.audit.events(reader, AuditQuery())
    assert {e.app for e in seen.events} == {"CoolApp", "OtherApp"}  # no access-key events
    operator = Principal("op", None, Surface.API, rights=frozenset({Action.OPERATE_SERVER}))
    assert {e.action for e in server.state.audit.events(operator, AuditQuery()).events} == {
        "access-key.create"
    }
    with pytest.raises(Forbidden):
        server.state.audit.events(operator, AuditQuery(app="CoolApp"))
    with pytest.raises(Invalid):
        server.state.audit.events(reader, AuditQuery(action="nothing"))


def test_old_events_stay_readable_after_their_app_is_gone(api: TestClient) -> None:
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    assert api.delete("/api/v1/apps/CoolApp").status_code == 204
    assert [e["action"] for e in events(api, app="CoolApp")] == ["app.create", "app.remove"]


# -- the console's page --------------------------------------------------------------------------------


def console_of(server: OverairApp, key: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver", follow_redirects=False)
    assert client.post("/console/sign-in", data={"access_key": key}).status_code == 303
    return client


def test_the_console_page_lists_changes_newest_first_with_the_same_filters(
    server: OverairApp, api: TestClient, admin_key: str, story: dict[str, str]
) -> None:
    import html
    import re

    with console_of(server, admin_key) as console:
        every = console.get("/console/audit").text
        assert 'href="/console/audit">Audit log</a>' in every  # in the navigation
        rows = re.findall(r'<tr data-event="(\d+)" data-action="([a-z.-]+)">', every)
        assert [a for _, a in rows] == [
            "deployment.rename",
            "release.promote",
            "release.publish",
            "app.create",
            "app.create",
            "access-key.create",
            "access-key.create",
        ]
        assert "OtherApp/Beta" in every and "<code>name</code>: &#34;Staging&#34; → &#34;Beta&#34;" in every
        releases = console.get("/console/audit", params={"app": "CoolApp", "action": "release"}).text
        assert re.findall(r'data-action="([a-z.-]+)"', releases) == ["release.promote", "release.publish"]
        assert '<option value="release" selected>' in releases and "Clear the filters" in releases
        app_page = console.get("/console/apps/CoolApp").text
        assert '<a href="/console/audit?app=CoolApp">Changes to CoolApp</a>' in app_page
        by_ci = console.get("/console/audit", params={"actor": "ci", "since": story["day3"][:16]}).text
        assert re.findall(r'data-action="([a-z.-]+)"', by_ci) == ["deployment.rename"]
        first = console.get("/console/audit?limit=2").text
        assert "Older changes" not in first  # one page of 50 holds them all
        none = console.get("/console/audit", params={"actor": "nobody"}).text
        assert "No recorded change matches these filters." in none
        bad = console.get("/console/audit", params={"since": "yesterday"})
        assert bad.status_code == 422
        assert (
            "Since must be a date and time like 2026-12-01T10:00 (UTC), not &#39;yesterday&#39;." in bad.text
        )
        unknown = console.get("/console/audit", params={"action": "release.delete"})
        assert unknown.status_code == 422
        assert 'There is no audit action "release.delete"' in html.unescape(unknown.text)
        wrong_page = console.get("/console/audit", params={"cursor": "²"})
        assert wrong_page.status_code == 422


def test_the_console_pages_older_changes(server: OverairApp, api: TestClient, admin_key: str) -> None:
    import re

    for n in range(55):
        assert api.post("/api/v1/access-keys", json={"name": f"k{n}"}).status_code == 201
    with console_of(server, admin_key) as console:
        first = console.get("/console/audit").text
        older = re.search(r'<a href="([^"]+)" rel="next">Older changes</a>', first)
        assert older
        rest = console.get(older.group(1).replace("&amp;", "&")).text
    shown = re.findall(r'<tr data-event="(\d+)"', first) + re.findall(r'<tr data-event="(\d+)"', rest)
    assert len(shown) == 56 == len(set(shown))
    assert "Newest changes" in rest and "Older changes" not in rest
