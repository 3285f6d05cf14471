"""Guarded rollouts through the server (issue 17): a deployment's policy, the background evaluation run as
a job of the shared queue, and people's acts, with device reports posted to the report routes.

The clock fixture moves through a day of ramping; the job runs when the test drains the queue.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from starlette.testclient import TestClient

from conftest import HookReceiver, MovableClock, bundle, documented_verify, publish, receiving_webhooks
from overair.app import OverairApp
from overair.db import make_sessionmaker
from overair.releases.models import RolloutEvent
from overair.webhooks import EVENTS

DEPLOYMENTS = "/api/v1/apps/CoolApp/deployments"
PRODUCTION = f"{DEPLOYMENTS}/Production"
HALF_A_DAY = 12 * 3600


@pytest.fixture
def key(api: TestClient) -> str:
    """CoolApp with v1 on Production (100%, no policy yet); Production's deployment key."""
    created = api.post("/api/v1/apps", json={"name": "CoolApp"})
    assert created.status_code == 201, created.text
    assert publish(api, content=bundle("one")).status_code == 201
    return str(next(d["key"] for d in created.json()["deployments"] if d["name"] == "Production"))


def set_policy(api: TestClient, deployment: str = "Production", **policy: Any) -> dict[str, Any]:
    response = api.put(
        f"{DEPLOYMENTS}/{deployment}/rollout-policy", json={"policy": policy, "reason": "test"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def report(device: TestClient, key: str, label: str, installed: int, failed: int, start: int = 0) -> None:
    """``installed`` devices report an install of ``label``, ``failed`` ones a failure (engine reports)."""
    for n in range(start, start + installed + failed):
        status = "installed" if n < start + installed else "failed"
        body = {"deployment_key": key, "label": label, "status": status, "client_id": f"{label}-{n}"}
        assert device.post("/v1/report", json=body).status_code == 200


def evaluate(server: OverairApp, clock: MovableClock) -> None:
    """Write the reports accepted (as the flusher does every second: that queues their evaluation for the
    end of the minute), let the minute pass, and run the background jobs due, waiting for any the worker
    thread holds."""
    server.state.metrics.flush()
    clock.advance(60)
    assert server.state.jobs.drain(30)


def release(api: TestClient, label: str, deployment: str = "Production") -> dict[str, Any]:
    response = api.get(f"{DEPLOYMENTS}/{deployment}/releases/{label}")
    assert response.status_code == 200, response.text
    return dict(response.json())


ROLLOUT_EVENTS = [event for event in EVENTS if event.startswith("rollout.")]


@pytest.fixture
def hook(api: TestClient, key: str) -> Iterator[tuple[HookReceiver, str]]:
    """A real receiver on 127.0.0.1 subscribed to every rollout event of CoolApp; its signing secret."""
    with receiving_webhooks() as receiver:
        added = api.post(
            "/api/v1/apps/CoolApp/webhooks", json={"url": receiver.url, "events": ROLLOUT_EVENTS}
        )
        assert added.status_code == 201, added.text
        yield receiver, added.json()["secret"]


def told(hook: tuple[HookReceiver, str], clock: MovableClock) -> list[tuple[str, dict[str, Any]]]:
    """The events the receiver got, in order, each signature checked as docs/webhooks.md says (fresh
    within the time the test moved the server's clock); a delivery tried again (its answer was slow on a
    busy machine) counts once, by its ``Overair-Delivery``, as the docs tell receivers to do."""
    receiver, secret = hook
    verify = documented_verify()
    got = []
    seen: set[str] = set()
    for delivery in receiver.received:
        if delivery.headers["Overair-Delivery"] in seen:
            continue
        seen.add(delivery.headers["Overair-Delivery"])
        assert verify(secret, delivery.headers, delivery.body, clock.offset.total_seconds() + 300)
        assert not verify(
            "whsec_another", delivery.headers, delivery.body, clock.offset.total_seconds() + 300
        )
        document = json.loads(delivery.body)
        assert document["event"] == delivery.headers["Overair-Event"] and document["app"] == "CoolApp"
        got.append((document["event"], document["data"]))
    return got


def events(server: OverairApp) -> list[tuple[str, str, str]]:
    with make_sessionmaker(server.state.engine)() as session:
        rows = session.scalars(select(RolloutEvent).order_by(RolloutEvent.id))
        return [(row.label, row.kind, row.actor) for row in rows]


def test_a_bad_release_is_halted_at_its_first_step_with_the_reason_shown(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    key: str,
    clock: MovableClock,
    admin_key: str,
    hook: tuple[HookReceiver, str],
) -> None:
    set_policy(api)  # the defaults: 1, 5, 25, 50, 100; halt above 5%
    published = publish(api, content=bundle("two"))
    assert published.status_code == 201, published.text
    assert published.json()["rollout"] == 1
    assert published.json()["guarded_rollout"]["phase"] == "ramping"
    assert published.json()["guarded_rollout"]["next_step"] == 5

    report(device, key, "v2", installed=70, failed=30)  # 30% of installs fail
    evaluate(server, clock)

    v2 = release(api, "v2")
    ramp = v2["guarded_rollout"]
    assert (v2["disabled"], v2["rollout"], ramp["phase"], ramp["active"]) == (True, 1, "halted", False)
    assert v2["disabled_by"] == "rollout policy"
    assert ramp["halt_reason"].startswith("Halted at 1%: failure rate (lower bound)")
    assert "30 failed of 100 install attempts" in ramp["halt_reason"]
    assert v2["disabled_reason"] == ramp["halt_reason"]
    gate = next(g for g in ramp["gates"] if g["gate"] == "failure-rate")
    assert gate["fails"] and gate["value"] > gate["threshold"] == 0.05
    assert ("v2", "rollout-halted", "rollout policy") in events(server)
    # told to the app's webhook, signed, with the numbers that triggered it (item 4)
    [(event, data)] = told(hook, clock)
    assert event == "rollout.halted"
    assert (data["deployment"], data["release"], data["percentage"]) == ("Production", "v2", 1)
    assert (data["reason"], data["actor"], data["verdict"]) == (ramp["halt_reason"], "rollout policy", "halt")
    assert data["counts"]["release"] == {"installs": 70, "failures": 30, "failure_rate": 0.3}
    assert next(g for g in data["gates"] if g["gate"] == "failure-rate")["value"] == gate["value"]

    # the console's release page shows the same, in text
    with TestClient(server, base_url="http://testserver", follow_redirects=False) as console:
        assert console.post("/console/sign-in", data={"access_key": admin_key}).status_code == 303
        page = html.unescape(console.get("/console/apps/CoolApp/deployments/Production/releases/v2").text)
    shown = page[page.index("data-guarded-rollout") :].split("</section>")[0]
    assert "halted at 1% (steps 1, 5, 25, 50, 100)" in shown
    assert ramp["halt_reason"] in shown and gate["text"] in shown


def test_a_healthy_release_ramps_through_every_step_as_the_clock_moves(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    key: str,
    clock: MovableClock,
    hook: tuple[HookReceiver, str],
) -> None:
    report(device, key, "v1", installed=199, failed=1)  # the previous release: 0.5%
    set_policy(api, min_sample=20)
    assert publish(api, content=bundle("two")).status_code == 201
    shares, start = [], 0
    for _step in range(5):
        report(device, key, "v2", installed=25, failed=0, start=start)
        start += 25
        evaluate(server, clock)
        waiting = release(api, "v2")
        shares.append(waiting["rollout"])
        if waiting["guarded_rollout"]["phase"] == "ramping":
            assert waiting["guarded_rollout"]["last_reason"] == "waiting-for-dwell"
        clock.advance(HALF_A_DAY)
        evaluate(server, clock)
    v2 = release(api, "v2")
    assert shares == [1, 5, 25, 50, 100]
    ramp = v2["guarded_rollout"]
    assert (v2["rollout"], v2["disabled"], ramp["phase"], ramp["active"]) == (100, False, "completed", False)
    assert {g["gate"]: g["fails"] for g in ramp["gates"]} == {
        "failure-rate": False,
        "previous-release": False,
    }
    kinds = [kind for label, kind, _actor in events(server) if label == "v2"]
    assert kinds == ["rollout-started"] + ["rollout-step"] * 4 + ["rollout-completed"]
    assert [(event, data["percentage"]) for event, data in told(hook, clock)] == [
        ("rollout.step", 5),
        ("rollout.step", 25),
        ("rollout.step", 50),
        ("rollout.step", 100),
        ("rollout.completed", 100),
    ]


def test_codepush_deployment_failed_reports_count_as_failures(
    server: OverairApp, api: TestClient, device: TestClient, key: str, clock: MovableClock
) -> None:
    set_policy(api)
    assert publish(api, content=bundle("two")).status_code == 201
    for n in range(20):
        body = {
            "deployment_key": key,
            "app_version": "1.0.0",
            "label": "v2",
            "status": "DeploymentFailed" if n % 2 else "DeploymentSucceeded",
            "client_unique_id": f"cp-{n}",
            "previous_label_or_app_version": "v1",
        }
        assert device.post("/v0.1/public/codepush/report_status/deploy", json=body).status_code == 200
    evaluate(server, clock)
    ramp = release(api, "v2")["guarded_rollout"]
    assert ramp["phase"] == "halted"
    assert "10 failed of 20 install attempts" in ramp["halt_reason"]


def audited(api: TestClient) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    """The audit log's rollout events, oldest first: (action, label, actor, after)."""
    answer = api.get("/api/v1/audit", params={"action": "rollout", "limit": 100})
    assert answer.status_code == 200, answer.text
    return [(e["action"], e["label"], e["actor"], e["after"]) for e in reversed(answer.json()["events"])]


def test_a_person_resumes_overrides_and_ends_a_rollout_and_each_act_says_who_and_why(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    key: str,
    clock: MovableClock,
    hook: tuple[HookReceiver, str],
) -> None:
    set_policy(api, action="pause", min_sample=0)
    assert publish(api, content=bundle("two")).status_code == 201
    report(device, key, "v2", installed=10, failed=10)
    evaluate(server, clock)
    assert release(api, "v2")["guarded_rollout"]["phase"] == "paused"
    assert release(api, "v2")["rollout"] == 1  # a pause keeps the share

    act = f"{PRODUCTION}/releases/v2/rollout"
    assert api.post(act, json={"act": "resume"}).status_code == 422  # no reason
    overridden = api.post(act, json={"act": "override", "step": 25, "reason": "the crash is a test device"})
    assert overridden.status_code == 200, overridden.text
    assert (overridden.json()["rollout"], overridden.json()["guarded_rollout"]["phase"]) == (25, "ramping")
    ended = api.post(act, json={"act": "end", "reason": "holding at 25% over the weekend"})
    ramp = ended.json()["guarded_rollout"]
    assert (ended.json()["rollout"], ramp["active"], ramp["ended"]) == (25, False, True)
    assert [(a["act"], a["reason"], a["step"]) for a in ramp["acts"]] == [
        ("override", "the crash is a test device", 25),
        ("end", "holding at 25% over the weekend", None),
    ]
    assert all(a["by"] for a in ramp["acts"])
    clock.advance(HALF_A_DAY)
    evaluate(server, clock)
    assert release(api, "v2")["rollout"] == 25  # an ended policy takes no step

    resumed = api.post(act, json={"act": "resume", "reason": "the weekend is over"})
    assert resumed.json()["guarded_rollout"]["active"], resumed.text
    refused = api.post(act, json={"act": "resume", "reason": "again"})
    assert refused.status_code == 409, refused.text  # it is ramping: nothing to resume

    # the pause was told to the webhook; people's acts are in the audit log, with who and why
    [(event, data)] = told(hook, clock)
    assert (event, data["release"], data["percentage"], data["verdict"]) == (
        "rollout.paused",
        "v2",
        1,
        "pause",
    )
    assert data["reason"].startswith("Paused at 1%")
    who = ramp["acts"][0]["by"]
    assert [(action, label, actor, after.get("reason")) for action, label, actor, after in audited(api)] == [
        ("rollout.policy", None, who, "test"),
        ("rollout.override", "v2", who, "the crash is a test device"),
        ("rollout.end", "v2", who, "holding at 25% over the weekend"),
        ("rollout.resume", "v2", who, "the weekend is over"),
    ]
    assert audited(api)[1][3]["step"] == 25 and audited(api)[0][3]["policy"]["action"] == "pause"


def test_a_hotfix_ends_the_running_rollout_in_one_push_and_starts_its_own_ramp(
    server: OverairApp, api: TestClient, key: str
) -> None:
    set_policy(api)
    assert publish(api, content=bundle("two")).status_code == 201
    assert publish(api, content=bundle("three")).status_code == 409  # v2 is still ramping

    no_reason = publish(api, content=bundle("three"), end_rollout="disable")
    assert no_reason.status_code == 422, no_reason.text
    hotfix = publish(
        api, content=bundle("three"), end_rollout="disable", end_rollout_reason="v2 crashes on login"
    )
    assert hotfix.status_code == 201, hotfix.text
    assert (hotfix.json()["label"], hotfix.json()["rollout"]) == ("v3", 1)
    v2 = release(api, "v2")
    assert v2["disabled"] and "v2 crashes on login" in v2["disabled_reason"]
    assert v2["guarded_rollout"]["acts"][0]["act"] == "end-for-publish (disable)"
    assert v2["guarded_rollout"]["acts"][0]["reason"] == "v2 crashes on login"

    kept = publish(api, content=bundle("four"), end_rollout="keep", end_rollout_reason="ship the fix")
    assert kept.status_code == 201, kept.text
    v3 = release(api, "v3")
    assert (v3["disabled"], v3["rollout"], v3["guarded_rollout"]["active"]) == (False, 1, False)
    assert ("v3", "rollout-ended", v3["guarded_rollout"]["acts"][0]["by"]) in events(server)
    ends = [(label, after) for action, label, _actor, after in audited(api) if action == "rollout.end"]
    assert ends == [
        (
            "v2",
            {
                "act": "end-for-publish (disable)",
                "reason": "v2 crashes on login",
                "rollout": 1,
                "disabled": True,
            },
        ),
        ("v3", {"act": "end-for-publish (keep)", "reason": "ship the fix", "rollout": 1, "disabled": False}),
    ]


def test_a_release_brings_its_own_policy_and_a_failing_one_is_rolled_back(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    key: str,
    clock: MovableClock,
    hook: tuple[HookReceiver, str],
) -> None:
    own = {"steps": "10,100", "action": "roll-back", "max_failure_rate": 0.1}
    published = publish(api, content=bundle("two"), rollout_policy=own)
    assert published.status_code == 201, published.text
    assert published.json()["rollout"] == 10
    assert published.json()["guarded_rollout"]["steps"] == [10, 100]
    report(device, key, "v2", installed=20, failed=20)
    evaluate(server, clock)
    listed = api.get(f"{PRODUCTION}/releases").json()
    assert [(r["label"], r["method"], r["released_by"]) for r in listed][-1] == (
        "v3",
        "rollback",
        "rollout policy",
    )
    assert listed[1]["guarded_rollout"]["phase"] == "rolled-back"
    assert listed[1]["disabled"]
    got = told(hook, clock)
    assert len(got) == 1, [(e, d.get("release"), d.get("percentage")) for e, d in got]
    [(event, data)] = got
    assert (event, data["release"], data["percentage"]) == ("rollout.rolled_back", "v2", 10)
    assert data["reason"] == listed[1]["guarded_rollout"]["halt_reason"]


def test_a_staging_release_that_held_its_gates_is_promoted_and_told(
    server: OverairApp,
    api: TestClient,
    device: TestClient,
    key: str,
    clock: MovableClock,
    hook: tuple[HookReceiver, str],
) -> None:
    set_policy(api, "Staging", steps="50,100", min_sample=0, promote_to="Production", promote_after=3600)
    assert publish(api, deployment="Staging", content=bundle("two")).status_code == 201
    for _ in range(3):
        clock.advance(HALF_A_DAY)
        evaluate(server, clock)
    staged = release(api, "v1", "Staging")["guarded_rollout"]
    assert staged["phase"] == "promoted", staged
    assert release(api, "v2")["origin_deployment"] == "Staging"
    assert [(event, data["deployment"], data["percentage"]) for event, data in told(hook, clock)] == [
        ("rollout.step", "Staging", 100),
        ("rollout.completed", "Staging", 100),
        ("rollout.promoted", "Staging", 100),
    ]
    assert told(hook, clock)[-1][1]["to_deployment"] == "Production"


def test_bad_policies_get_clear_errors(api: TestClient, key: str) -> None:
    response = api.put(f"{PRODUCTION}/rollout-policy", json={"policy": {"steps": [10, 5, 100]}})
    assert response.status_code in (400, 422), response.text
    assert "must rise" in response.json()["detail"]
    bad = publish(api, content=bundle("two"), rollout_policy={"max_failure_rate": 5})
    assert bad.status_code in (400, 422) and "max_failure_rate" in bad.json()["detail"], bad.text
    assert api.get(f"{PRODUCTION}/rollout-policy").json()["policy"] is None
    shown = api.put(f"{PRODUCTION}/rollout-policy", json={"policy": {"min_dwell": 3600}, "reason": "fast"})
    assert shown.json()["policy"]["min_dwell"] == 3600 and shown.json()["reason"] == "fast"
    assert api.delete(f"{PRODUCTION}/rollout-policy").json()["policy"] is None


def test_a_ramp_whose_stored_policy_an_older_host_wrote_goes_on(
    server: OverairApp, api: TestClient, device: TestClient, key: str, clock: MovableClock
) -> None:
    """A host of the version before migration 0025 may still store a min_sample below min_failures during
    a rolling upgrade: the new hosts read it as min_failures and go on evaluating (they refused it)."""
    set_policy(api, min_sample=20)
    assert publish(api, content=bundle("two")).status_code == 201
    with server.state.engine.begin() as connection:
        connection.execute(
            text("UPDATE release_rollouts SET policy = :policy"),
            {"policy": json.dumps({"steps": [1, 5, 25, 50, 100], "min_sample": 3, "min_dwell": 3600})},
        )
    report(device, key, "v2", installed=5, failed=0)
    clock.advance(3600)
    evaluate(server, clock)
    v2 = release(api, "v2")
    assert (v2["rollout"], v2["guarded_rollout"]["phase"]) == (5, "ramping"), v2["guarded_rollout"]
