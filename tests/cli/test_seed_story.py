"""The Native Builder seed's story: the real `overair` command against `overair serve` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from conftest import LiveServer

pytestmark = pytest.mark.slow


class Cli:
    def __init__(self, config: Path) -> None:
        self.env = {**os.environ, "OVERAIR_CONFIG": str(config), "NO_COLOR": "1", "COLUMNS": "200"}

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "overair.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert result.returncode == 0, (
                f"overair {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result


def write_bundle(folder: Path, title: str) -> Path:
    (folder / "styles").mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({title!r});\n")
    (folder / "styles" / "main.css").write_text("h1 { font-weight: bold }\n")
    return folder


def offered(server: LiveServer, key: str, client_ids: list[str], **params: object) -> list[dict]:
    """Ask for an update once per client id over 8 keep-alive HTTP/1.1 connections.

    A minimal client on asyncio streams: httpx would spend most of this test's time in its own overhead.
    """
    host, port = server.url.removeprefix("http://").split(":")

    async def worker(ids: list[str]) -> list[tuple[str, dict]]:
        reader, writer = await asyncio.open_connection(host, int(port))
        results = []
        try:
            for client_id in ids:
                query = {
                    "deployment_key": key,
                    "app_version": "1.0.0",
                    "build_number": 1,
                    "client_id": client_id,
                }
                target = "/v1/update-check?" + urlencode({**query, **params})
                writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                status_line = await reader.readline()
                assert b" 200 " in status_line, status_line
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                results.append((client_id, json.loads(await reader.readexactly(length))))
        finally:
            writer.close()
        return results

    async def run() -> dict[str, dict]:
        chunks = [client_ids[i::8] for i in range(8)]
        answers: dict[str, dict] = {}
        for part in await asyncio.gather(*(worker(c) for c in chunks if c)):
            answers.update(part)
        return answers

    answers = asyncio.run(run())
    return [answers[c] for c in client_ids]


def labels(answers: list[dict]) -> list[str | None]:
    return [a["update"]["label"] if a["update"] else None for a in answers]


def test_seed_story(live_server: LiveServer, tmp_path: Path) -> None:
    assert live_server.url in live_server.output and "overair login" in live_server.output
    cli = Cli(tmp_path / "config.json")
    login = cli("login", "--server", live_server.url, "--access-key", live_server.key)
    assert "Logged in" in login.stdout
    cli("app", "create", "CoolApp")
    api = httpx.Client(
        base_url=live_server.url + "/api/v1", headers={"Authorization": f"Bearer {live_server.key}"}
    )
    key = {d["name"]: d["key"] for d in api.get("/apps/CoolApp/deployments").json()}["Production"]

    # push-update 1.0.0 / build 1 / 100% / mandatory: release list shows v1
    v1_dir = write_bundle(tmp_path / "v1", "Welcome to CoolApp")
    push = [
        "release",
        "push-update",
        "--project-name",
        "CoolApp",
        "--target-version",
        "1.0.0",
        "--build-number",
        "1",
    ]
    out = cli(*push, "--rollout-percentage", "100", "--mandatory", "--bundle", str(v1_dir))
    assert "Released v1" in out.stdout and "mandatory" in out.stdout
    listing = cli("release", "list", "--project-name", "CoolApp").stdout
    assert "v1" in listing and "1.0.0" in listing and "100%" in listing

    # a device on 1.0.0 build 1 is offered v1, mandatory
    (answer,) = offered(live_server, key, ["first-device"])
    assert (
        answer["status"] == "update" and answer["update"]["label"] == "v1" and answer["update"]["mandatory"]
    )

    # v2 at 50%: between 48% and 52% of 10,000 distinct devices get v2, the rest v1
    v2_dir = write_bundle(tmp_path / "v2", "Welcome to CoolApp!")
    cli(*push, "--rollout-percentage", "50", "--mandatory", "--bundle", str(v2_dir))
    clients = [f"device-{i:05d}" for i in range(10_000)]
    got = labels(offered(live_server, key, clients))
    share = got.count("v2") / len(clients)
    assert 0.48 <= share <= 0.52, share
    assert got.count("v1") == len(clients) - got.count("v2")
    assert labels(offered(live_server, key, clients[:500])) == got[:500], "rollout must be stable per device"

    # publishing over the unfinished rollout is refused with the way out
    refused = cli(*push, "--bundle", str(write_bundle(tmp_path / "v2b", "other")), ok=False)
    assert refused.returncode == 2 and "patch-update" in refused.stderr and "Traceback" not in refused.stderr

    # patch-update to 100: everybody gets v2
    cli(
        "release",
        "patch-update",
        "--project-name",
        "CoolApp",
        "--target-version",
        "1.0.0",
        "--build-number",
        "1",
        "--rollout-percentage",
        "100",
    )
    assert set(labels(offered(live_server, key, clients))) == {"v2"}

    # rollback-update --label v1: a device on v2 is offered v1's content as v3
    history = api.get("/apps/CoolApp/deployments/Production/releases").json()
    v1_hash, v2_hash = history[0]["package_hash"], history[1]["package_hash"]
    out = cli("release", "rollback-update", "--project-name", "CoolApp", "--label", "v1")
    assert "v3" in out.stdout
    (answer,) = offered(live_server, key, ["on-v2"], label="v2", package_hash=v2_hash)
    assert answer["update"]["label"] == "v3" and answer["update"]["package_hash"] == v1_hash
    (answer,) = offered(live_server, key, ["on-v1"], label="v1", package_hash=v1_hash)
    assert answer["status"] == "no_update"

    # push-update --mandatory false: offered as optional
    v4_dir = write_bundle(tmp_path / "v4", "Welcome, optional")
    cli(*push, "--rollout-percentage", "100", "--mandatory", "false", "--bundle", str(v4_dir))
    (answer,) = offered(live_server, key, ["on-v3"], label="v3", package_hash=v1_hash)
    assert answer["update"]["label"] == "v4" and answer["update"]["mandatory"] is False

    # a build-2 binary never gets a build-1 release
    build2 = offered(live_server, key, clients[:200], build_number=2)
    assert {a["status"] for a in build2} == {"run_embedded"}

    listing = cli("release", "list", "--project-name", "CoolApp").stdout
    for label in ("v1", "v2", "v3", "v4"):
        assert label in listing
    assert "rollback of v1" in listing
