"""Guarded rollouts through a live server and real update engines (issue 17, Done when 3).

The server is :func:`overair.app.create_app` served by granian (the server ``overair serve`` runs) on
127.0.0.1 in a thread of this process, so that its clock is the test's :class:`MovableClock`: the policy's
dwell passes in a call, not hours. Its own background worker runs as in production (lifespan started by
granian); the test only asks it to finish the jobs due (``drain``) after moving the clock.

A fleet of real :class:`overair.client.UpdateEngine` devices (the ones ``overair simulate`` drives) talks
to it over HTTP. A release whose bundle crashes on every device that runs it is halted by itself at its
first step; a healthy one then ramps to every device. A real HTTP receiver on 127.0.0.1 gets the webhook
deliveries; each signature is checked with the snippet docs/webhooks.md gives, their order and numbers
against what the fleet did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from granian.constants import Interfaces
from granian.server.embed import Server

from conftest import (
    HookReceiver,
    MovableClock,
    bundle,
    documented_verify,
    free_port,
    receiving_webhooks,
)
from overair.app import OverairApp, create_app
from overair.cli.simulate import Fleet, LaunchSummary
from overair.config import Settings

pytestmark = pytest.mark.slow

DEVICES = 120
POLICY = {
    "steps": "10,50,100",
    "min_sample": 3,
    "min_dwell": 3600,
    "max_failure_rate": 0.05,
    "min_failures": 2,
}
"""Sized to a small fleet: at 10% about twelve devices get the release, enough to judge it (the devices'
client ids are random, so a step's share is drawn anew each run: with 60 devices, one run in twenty put
fewer than ``min_sample`` devices in a first step, which then waited for ever). ``min_failures``
is at most ``min_sample``: with the default 5, a step whose first three reports were all failures (the
rest delayed by a busy machine) would advance, as no gate may fail before five failures."""
EVENTS = ["release.published", "rollout.step", "rollout.halted", "rollout.completed"]


@contextlib.contextmanager
def serving(app: OverairApp, port: int) -> Iterator[str]:
    """``app`` served by granian on 127.0.0.1:``port`` in a thread (lifespan and all), for the block."""
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="granian", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # until it listens (a readiness poll, not a wait for time to pass)
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "granian did not start"
            time.sleep(0.05)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(30)


def evaluate(app: OverairApp, clock: MovableClock, seconds: float) -> None:
    """Write the reports received, let ``seconds`` pass, and let the worker finish the jobs due (the
    evaluation the reports queued, the periodic one, the webhook deliveries they queue)."""
    app.state.metrics.flush()
    clock.advance(seconds)
    assert app.state.jobs.drain(30)
    assert app.state.jobs.drain(30)  # the deliveries the evaluation queued


def release(api: httpx.Client, label: str) -> dict[str, Any]:
    answer = api.get(f"/apps/CoolApp/deployments/Production/releases/{label}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def publish(api: httpx.Client, text: str) -> dict[str, Any]:
    answer = api.post(
        "/apps/CoolApp/deployments/Production/releases",
        files={"package": ("bundle.zip", bundle(text), "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0", "description": text})},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def ran(summaries: list[LaunchSummary], label: str) -> int:
    """The most devices that ran ``label`` after any one launch."""
    return max((s.running.get(label, 0) for s in summaries), default=0)


def test_a_bad_release_halts_by_itself_and_a_good_one_reaches_every_device(
    tmp_path: Path, database_url: str, clock: MovableClock
) -> None:
    port = free_port()
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=database_url, port=port, _env_file=None
    )
    app = create_app(settings, clock=clock)
    admin_key = app.state.access_keys.ensure_initial_key()
    assert admin_key is not None
    with (
        receiving_webhooks() as receiver,
        serving(app, port) as url,
        httpx.Client(
            base_url=url + "/api/v1", headers={"Authorization": f"Bearer {admin_key.key}"}, timeout=60
        ) as api,
    ):
        created = api.post("/apps", json={"name": "CoolApp"})
        assert created.status_code == 201, created.text
        key = next(d["key"] for d in created.json()["deployments"] if d["name"] == "Production")
        hook = api.post("/apps/CoolApp/webhooks", json={"url": receiver.url, "events": EVENTS}).json()
        fleet = Fleet(
            tmp_path / "devices",
            server=url,
            deployment_key=key,
            app_version="1.0.0",
            build_number=None,
            embedded_text="CoolApp 1.0.0",
            simulated=False,  # real devices: their reports are the release's numbers the policy reads
        )

        # v1 reaches everyone without a policy (the baseline the next releases are compared to)
        publish(api, "one")
        summaries, _ = fleet.run(DEVICES, 2, None, 8)
        assert summaries[-1].running["v1"] == DEVICES
        set_policy = api.put(
            "/apps/CoolApp/deployments/Production/rollout-policy",
            json={"policy": POLICY, "reason": "guard every release"},
        )
        assert set_policy.status_code == 200, set_policy.text

        # v2 crashes on every device that runs it: halted at its first step, by itself
        assert publish(api, "two")["rollout"] == 10
        bad: list[LaunchSummary] = []
        for _round in range(3):
            runs, _ = fleet.run(DEVICES, 3, "v2", 8)  # get it, crash on it, roll back and report
            bad += runs
            evaluate(app, clock, 3600)
            if release(api, "v2")["disabled"]:
                break
        v2 = release(api, "v2")
        ramp = v2["guarded_rollout"]
        assert (v2["disabled"], v2["rollout"], ramp["phase"]) == (True, 10, "halted"), ramp
        reached = ran(bad, "v2")
        assert 0 < reached <= DEVICES * 0.25  # about the first step's share of the fleet, never more
        assert v2["failures"] == sum(s.rolled_back for s in bad) > 0
        after = fleet.run(DEVICES, 2, "v2", 8)[0]
        assert after[-1].running["v1"] == DEVICES  # everyone back on v1; nobody new gets v2

        # v3 is healthy: it ramps through 10, 50 and 100% as its dwell passes and its gates hold
        assert publish(api, "three")["rollout"] == 10
        shares = []
        for _round in range(6):
            fleet.run(DEVICES, 2, "v2", 8)
            evaluate(app, clock, 3600)
            shares.append(release(api, "v3")["rollout"])
            if release(api, "v3")["guarded_rollout"]["phase"] == "completed":
                break
        assert shares[-1] == 100 and sorted(shares) == shares and 50 in shares, shares
        v3 = release(api, "v3")
        assert (v3["disabled"], v3["guarded_rollout"]["phase"]) == (False, "completed")
        final = fleet.run(DEVICES, 2, "v2", 8)[0]
        assert final[-1].running["v3"] == DEVICES

        told = webhook_events(receiver, hook["secret"], clock)
    labels = [
        data["release"] if isinstance(data["release"], str) else data["release"]["label"] for _e, data in told
    ]
    assert list(zip([event for event, _data in told], labels, strict=True)) == [
        ("release.published", "v1"),
        ("release.published", "v2"),
        ("rollout.halted", "v2"),
        ("release.published", "v3"),
        ("rollout.step", "v3"),
        ("rollout.step", "v3"),
        ("rollout.completed", "v3"),
    ]
    halted = told[2][1]
    assert (halted["percentage"], halted["reason"]) == (10, ramp["halt_reason"])
    assert halted["counts"]["release"]["failures"] == v2["failures"]
    assert halted["counts"]["release"]["installs"] == v2["installs"]
    gate = next(g for g in halted["gates"] if g["gate"] == "failure-rate")
    assert gate["fails"] and gate["value"] > gate["threshold"] == 0.05
    assert [data["percentage"] for _event, data in told[4:]] == [50, 100, 100]
    assert all(g["fails"] is False for g in told[-1][1]["gates"])


def webhook_events(receiver: HookReceiver, secret: str, clock: MovableClock) -> list[tuple[str, Any]]:
    """Every delivery received, in order, its signature checked as docs/webhooks.md says (fresh within
    the time the test moved the server's clock)."""
    verify = documented_verify()
    tolerance = clock.offset.total_seconds() + 300
    got = []
    for delivery in receiver.received:
        assert verify(secret, delivery.headers, delivery.body, tolerance), delivery.headers
        assert not verify(secret, delivery.headers, delivery.body + b" ", tolerance)
        document = json.loads(delivery.body)
        got.append((document["event"], document["data"]))
    return got
