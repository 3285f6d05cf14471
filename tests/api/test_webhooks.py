"""Webhooks (issue 17, item 4): deliveries received by a real HTTP server on 127.0.0.1, their signatures
checked with the snippet docs/webhooks.md gives, retries on the ``clock`` fixture (nothing sleeps)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from conftest import HookReceiver, MovableClock, documented_verify, publish, receiving_webhooks
from overair.app import OverairApp, create_app
from overair.auth.principal import Action, Forbidden, Principal, Surface
from overair.config import Settings


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    with receiving_webhooks() as state:
        yield state


def add_hook(api: TestClient, url: str, events: list[str] | None = None, **spec: object) -> dict:
    body = {"url": url, "events": events or ["release.published"], **spec}
    response = api.post("/api/v1/apps/CoolApp/webhooks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliveries(api: TestClient, hook: dict) -> list[dict]:
    response = api.get(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.fixture
def app(server: OverairApp, admin_key: str) -> TestClient:
    """The management API with CoolApp; no lifespan, so no worker thread: the test runs the jobs."""
    api = TestClient(server, base_url="http://testserver")
    api.headers["Authorization"] = f"Bearer {admin_key}"
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    return api


def published(api: TestClient, n: int = 1) -> None:
    response = publish(api, description=f"release {n}")
    assert response.status_code == 201, response.text


def test_a_published_release_is_delivered_signed_to_a_real_receiver(
    app: TestClient, server: OverairApp, receiver: HookReceiver
) -> None:
    hook = add_hook(app, receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["format"] == "json" and hook["enabled"]
    [listed] = app.get("/api/v1/apps/CoolApp/webhooks").json()
    assert "secret" not in listed and listed["id"] == hook["id"]  # shown once

    published(app)
    assert receiver.received == []  # queued with the release, sent by the background job
    server.state.jobs.run_pending()

    [got] = receiver.received
    assert got.path == "/hook" and got.headers["Content-Type"] == "application/json"
    assert got.headers["Overair-Event"] == "release.published"
    assert documented_verify()(hook["secret"], got.headers, got.body)
    assert not documented_verify()("whsec_another", got.headers, got.body)
    assert not documented_verify()(hook["secret"], got.headers, got.body + b" ")
    document = json.loads(got.body)
    assert document["event"] == "release.published" and document["app"] == "CoolApp"
    assert document["id"] == int(got.headers["Overair-Delivery"])
    release = document["data"]["release"]
    assert document["data"]["deployment"] == "Production"
    assert (release["label"], release["method"], release["rollout"]) == ("v1", "upload", 100)
    assert release["description"] == "release 1"

    [log] = deliveries(app, hook)
    assert (log["status"], log["attempts"], log["last_status_code"], log["last_error"]) == (
        "delivered",
        1,
        200,
        "",
    )
    assert log["id"] == document["id"] and log["delivered_at"] is not None


def test_the_slack_format_posts_a_readable_sentence(
    app: TestClient, server: OverairApp, receiver: HookReceiver
) -> None:
    hook = add_hook(app, receiver.url, format="slack")
    published(app)
    server.state.jobs.run_pending()
    [got] = receiver.received
    assert json.loads(got.body) == {"text": "CoolApp/Production: v1 was published at 100% (by admin)."}
    assert documented_verify()(hook["secret"], got.headers, got.body)


def test_another_module_emits_a_rollout_event_with_one_call(
    app: TestClient, server: OverairApp, receiver: HookReceiver
) -> None:
    add_hook(app, receiver.url, ["rollout.paused"], format="slack")
    add_hook(app, receiver.url, ["rollout.halted"])  # not subscribed to the event: gets nothing
    webhooks = server.state.webhooks
    payload = {"deployment": "Production", "release": "v3", "percentage": 5, "reason": "failure rate 4%"}
    assert webhooks.emit("CoolApp", "rollout.paused", payload) == 1
    assert webhooks.emit("OtherApp", "rollout.paused", payload) == 0  # no hooks there
    server.state.jobs.run_pending()
    [got] = receiver.received
    assert json.loads(got.body)["text"] == (
        "CoolApp/Production: the rollout of v3 was paused at 5%: failure rate 4%."
    )
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhooks.emit("CoolApp", "rollout.exploded", payload)


def test_a_failed_try_is_retried_after_its_backoff_then_delivered(
    app: TestClient, server: OverairApp, receiver: HookReceiver, clock: MovableClock
) -> None:
    hook = add_hook(app, receiver.url)
    receiver.answers = [500]
    published(app)
    server.state.jobs.run_pending()
    [log] = deliveries(app, hook)
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("pending", 1, 500)
    assert log["last_error"] == "answered 500 Internal Server Error"
    waited = parse(log["next_attempt_at"]) - parse(log["last_attempt_at"])
    assert round(waited.total_seconds()) == 30  # counted from the try's end (a moment after its start)

    clock.advance(29)
    server.state.jobs.run_pending()
    assert len(receiver.received) == 1  # not before its time
    clock.advance(1)
    server.state.jobs.run_pending()
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["Overair-Delivery"] == second.headers["Overair-Delivery"]
    assert int(second.headers["Overair-Timestamp"]) >= int(first.headers["Overair-Timestamp"]) + 30
    [log] = deliveries(app, hook)
    assert (log["status"], log["attempts"], log["last_status_code"], log["last_error"]) == (
        "delivered",
        2,
        200,
        "",
    )
    assert log["next_attempt_at"] is None


def test_a_receiver_failing_for_a_day_ends_failed(
    app: TestClient, server: OverairApp, receiver: HookReceiver, clock: MovableClock
) -> None:
    hook = add_hook(app, receiver.url)
    receiver.always = 503
    published(app)
    waits = []
    for _ in range(40):
        server.state.jobs.run_pending()
        [log] = deliveries(app, hook)
        if log["status"] != "pending":
            break
        wait = (parse(log["next_attempt_at"]) - parse(log["last_attempt_at"])).total_seconds()
        waits.append(round(wait))
        clock.advance(wait)
    assert log["status"] == "failed" and log["next_attempt_at"] is None
    assert log["last_status_code"] == 503 and log["last_error"] == "answered 503 Service Unavailable"
    assert waits[:5] == [30, 60, 120, 240, 480] and max(waits) == 4 * 3600
    assert log["attempts"] == len(receiver.received) == len(waits) + 1
    assert parse(log["last_attempt_at"]) >= parse(log["gives_up_at"])  # the last try is at the day's end
    assert parse(log["gives_up_at"]) - parse(log["created_at"]) == dt.timedelta(days=1)
    clock.advance(86400)
    server.state.jobs.run_pending()
    assert len(receiver.received) == log["attempts"]  # given up: never tried again


def test_redirects_are_never_followed(app: TestClient, server: OverairApp, receiver: HookReceiver) -> None:
    hook = add_hook(app, receiver.url)
    receiver.answers = [302]
    answer = app.post(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/test")
    assert answer.status_code == 200, answer.text
    tried = answer.json()
    assert (tried["status"], tried["last_status_code"]) == ("failed", 302)  # a test is tried once
    assert tried["last_error"] == "answered a redirect (302) to '/elsewhere'; webhooks never follow redirects"
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_test_delivery_is_sent_at_once(app: TestClient, receiver: HookReceiver) -> None:
    hook = add_hook(app, receiver.url, ["rollout.completed"], enabled=False)
    tried = app.post(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/test").json()
    assert (tried["event"], tried["status"], tried["attempts"], tried["last_status_code"]) == (
        "webhook.test",
        "delivered",
        1,
        200,
    )
    [got] = receiver.received
    assert got.headers["Overair-Event"] == "webhook.test"
    assert documented_verify()(hook["secret"], got.headers, got.body)
    assert [d["event"] for d in deliveries(app, hook)] == ["webhook.test"]


@pytest.fixture
def silent_receiver() -> Iterator[str]:
    """A receiver that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def test_a_receiver_that_never_answers_does_not_hold_the_server(
    settings: Settings, clock: MovableClock, silent_receiver: str
) -> None:
    quick = create_app(settings.model_copy(update={"webhook_timeout_seconds": 0.3}), clock=clock)
    key = quick.state.access_keys.ensure_initial_key().key
    with TestClient(quick, base_url="http://testserver") as api:
        api.headers["Authorization"] = f"Bearer {key}"
        assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
        hook = add_hook(api, silent_receiver)
        tried = api.post(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/test").json()
    assert (tried["status"], tried["last_status_code"]) == ("failed", None)
    assert tried["last_error"] == "no answer within 0.3 s"


def test_disabled_and_removed_hooks_get_nothing(
    app: TestClient, server: OverairApp, receiver: HookReceiver, clock: MovableClock
) -> None:
    kept, disabled, removed = (add_hook(app, receiver.url + str(n)) for n in range(3))
    patched = app.patch(f"/api/v1/apps/CoolApp/webhooks/{disabled['id']}", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert app.delete(f"/api/v1/apps/CoolApp/webhooks/{removed['id']}").status_code == 204
    published(app)
    server.state.jobs.run_pending()
    assert [r.path for r in receiver.received] == ["/hook0"]
    assert deliveries(app, disabled) == []

    # disabled while a delivery waits for its next try: that delivery is not sent, and fails at once
    receiver.answers = [500]
    published(app, 2)
    server.state.jobs.run_pending()
    off = app.patch(f"/api/v1/apps/CoolApp/webhooks/{kept['id']}", json={"enabled": False})
    assert off.status_code == 200
    clock.advance(60)
    server.state.jobs.run_pending()
    assert len(receiver.received) == 2
    newest = deliveries(app, kept)[0]
    assert (newest["status"], newest["attempts"], newest["last_status_code"]) == ("failed", 1, 500)
    assert newest["last_error"] == "the webhook was disabled before this was sent"
    assert newest["next_attempt_at"] is None
    gone = app.get(f"/api/v1/apps/CoolApp/webhooks/{removed['id']}/deliveries")
    assert gone.status_code == 404
    known = f"{kept['id']}, {disabled['id']}"
    assert gone.json()["detail"] == f'App "CoolApp" has no webhook {removed["id"]} (its webhooks: {known}).'


def test_deleting_the_app_removes_its_hooks(
    app: TestClient, server: OverairApp, receiver: HookReceiver
) -> None:
    add_hook(app, receiver.url)
    published(app)
    assert app.delete("/api/v1/apps/CoolApp").status_code in (200, 204)
    server.state.jobs.run_pending()  # the queued delivery went with its hook
    assert receiver.received == []


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ({"url": "ftp://example.com/x"}, "'ftp://example.com/x' is not an http or https URL"),
        ({"url": "example.com/hook"}, "'example.com/hook' is not an http or https URL"),
        ({"url": "https:///hook"}, "'https:///hook' names no host"),
        ({"url": "https://example.com:99999/"}, "is not a URL (Port out of range 0-65535)"),
        ({"url": "https://bob:pw@example.com/"}, "holds a user name or password"),
        ({"url": "https://e.com/" + "x" * 2000}, "A webhook URL has at most 2000 characters."),
        (
            {"events": ["release.published", "release.deleted"]},
            "Unknown webhook event 'release.deleted': the events are release.published, rollout.step,",
        ),
        ({"events": []}, "A webhook subscribes to at least one event"),
        ({"format": "xml"}, "Unknown webhook format 'xml': it is one of json, slack."),
    ],
)
def test_bad_webhooks_are_refused_clearly(app: TestClient, spec: dict, detail: str) -> None:
    body = {"url": "https://example.com/hook", "events": ["release.published"], **spec}
    answer = app.post("/api/v1/apps/CoolApp/webhooks", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"], answer.json()
    assert app.get("/api/v1/apps/CoolApp/webhooks").json() == []


def test_unknown_apps_and_hooks_are_named(app: TestClient) -> None:
    spec = {"url": "https://e.com", "events": ["rollout.step"]}
    answer = app.post("/api/v1/apps/NoApp/webhooks", json=spec)
    assert answer.status_code == 404 and 'No app named "NoApp"' in answer.json()["detail"]
    assert app.post("/api/v1/apps/CoolApp/webhooks/7/test").status_code == 404
    assert app.get("/api/v1/apps/CoolApp/webhooks/x/deliveries").status_code == 422


def test_managing_webhooks_needs_the_right_to_manage_the_app(app: TestClient, server: OverairApp) -> None:
    reader = Principal("reader", None, Surface.API, rights=frozenset({Action.READ, Action.PUBLISH}))
    webhooks = server.state.webhooks
    assert webhooks.hooks(reader, "CoolApp") == []
    from overair.webhooks.schemas import WebhookCreate

    with pytest.raises(Forbidden, match='"reader" may not manage apps on CoolApp'):
        webhooks.add(reader, "CoolApp", WebhookCreate(url="https://e.com", events=["rollout.step"]))
    assert TestClient(server).get("/api/v1/apps/CoolApp/webhooks").status_code == 401


def parse(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_promotions_and_rollbacks_are_published_releases_too(
    app: TestClient, server: OverairApp, receiver: HookReceiver
) -> None:
    add_hook(app, receiver.url)
    published(app, 1)
    published(app, 2)
    promotion = {"source": "Production", "destination": "Staging"}
    promoted = app.post("/api/v1/apps/CoolApp/promote", json=promotion)
    assert promoted.status_code == 201, promoted.text
    rolled = app.post("/api/v1/apps/CoolApp/deployments/Production/rollback", json={})
    assert rolled.status_code == 201, rolled.text
    refused = publish(app, description="release 1")  # v3's content again: refused, so nothing is told
    assert refused.status_code == 409
    server.state.jobs.run_pending()
    told = [json.loads(r.body)["data"] for r in receiver.received]
    assert [(d["deployment"], d["release"]["label"], d["release"]["method"]) for d in told] == [
        ("Production", "v1", "upload"),
        ("Production", "v2", "upload"),
        ("Staging", "v1", "promote"),
        ("Production", "v3", "rollback"),
    ]
