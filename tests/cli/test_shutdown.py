"""`overair serve` stops within OVERAIR_SHUTDOWN_SECONDS of SIGTERM while devices keep it busy, and every
report it answered before is in the database afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, bundle, free_port, running_server

pytestmark = pytest.mark.slow

SHUTDOWN_SECONDS = 5
DEVICES = 64


def prepare(server: LiveServer) -> str:
    """CoolApp with release v1 on Production; the deployment key."""
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as api:
        assert api.post("/apps", json={"name": "CoolApp"}).status_code == 201
        published = api.post(
            "/apps/CoolApp/deployments/Production/releases",
            files={"package": ("bundle.zip", bundle("one"), "application/zip")},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text
        keys = {d["name"]: d["key"] for d in api.get("/apps/CoolApp/deployments").json()}
    return str(keys["Production"])


async def load(server: LiveServer, key: str) -> tuple[set[str], float, float]:
    """Devices checking and reporting until the server is gone; SIGTERM once 400 reports were answered.

    Returns the client ids whose report was answered 200, when SIGTERM was sent and when the process ended.
    """
    answered: set[str] = set()
    sent_at: list[float] = []
    limits = httpx.Limits(max_connections=DEVICES, max_keepalive_connections=DEVICES)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:

        async def device(number: int) -> None:
            for n in range(10**6):
                client_id = f"device-{number}-{n}"
                try:
                    check = await client.get(
                        "/updateCheck", params={"deploymentKey": key, "appVersion": "1.0.0"}
                    )
                    assert check.status_code == 200, check.text
                    body = {
                        "deployment_key": key,
                        "label": "v1",
                        "status": "installed",
                        "client_id": client_id,
                    }
                    report = await client.post("/v1/report", json=body)
                except httpx.TransportError:
                    return  # the server stopped accepting: this device is done
                assert report.status_code == 200, report.text
                answered.add(client_id)
                if len(answered) >= 400 and not sent_at:
                    sent_at.append(time.monotonic())
                    server.process.send_signal(signal.SIGTERM)

        await asyncio.gather(*(device(n) for n in range(DEVICES)))
    assert sent_at, "the load never reached the signal"
    exited = await asyncio.to_thread(server.process.wait, SHUTDOWN_SECONDS * 4)
    assert exited is not None
    return answered, sent_at[0], time.monotonic()


def test_sigterm_under_load_drains_writes_the_reports_and_exits_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERAIR_SHUTDOWN_SECONDS", str(SHUTDOWN_SECONDS))
    data = tmp_path / "data"
    server = LiveServer(data, free_port())
    try:
        key = prepare(server)
        answered, signalled, ended = asyncio.run(load(server, key))
        assert server.process.stdout is not None
        output = server.output + server.process.stdout.read()
    finally:
        server.stop()
    assert ended - signalled < SHUTDOWN_SECONDS + 3, f"stopped {ended - signalled:.1f} s after SIGTERM"
    assert "Traceback" not in output and "Killing worker" not in output, output

    with running_server(data) as again:
        headers = {"Authorization": f"Bearer {server.key}"}
        releases = httpx.get(
            again.url + "/api/v1/apps/CoolApp/deployments/Production/releases", headers=headers
        ).json()
    installs = releases[0]["installs"]
    assert installs >= len(answered) >= 400  # every answered report is in; more may have been answered unseen


def test_a_client_that_never_finishes_its_request_does_not_hold_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stalled upload (headers sent, the body never) used to keep `overair serve` running after SIGTERM."""
    import socket

    monkeypatch.setenv("OVERAIR_SHUTDOWN_SECONDS", str(SHUTDOWN_SECONDS))
    server = LiveServer(tmp_path / "data", free_port())
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.create_connection((host, int(port)))
    try:
        stalled.sendall(
            b"POST /api/v1/apps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{"
        )
        assert httpx.get(server.url + "/").status_code == 200  # the request above is in flight
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(SHUTDOWN_SECONDS * 4)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {SHUTDOWN_SECONDS * 4} s after SIGTERM")
        assert time.monotonic() - signalled < SHUTDOWN_SECONDS + 3
        assert server.process.stdout is not None
        output = server.process.stdout.read()
        assert "Traceback" not in output and "Killing worker-1" in output, output  # killed at the bound
    finally:
        stalled.close()
        server.stop()
