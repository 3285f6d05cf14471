"""An Expo app from npm (SDK 51, `npx expo export`) published through the CLI, and a client that behaves as
expo-updates does (tests/fixtures/expo-app/expo-client.mjs), against `overair serve` on 127.0.0.1; the
same server serves a CodePush app to the real `code-push` SDK at the same time."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import overair
from conftest import (
    LiveServer,
    admin_api,
    codepush_harness,
    ensure_npm_packages,
    make_zip,
    running_server,
)

pytestmark = pytest.mark.slow

APP = Path(__file__).parents[1] / "fixtures" / "expo-app"
COMPAT = Path(__file__).parent
EMBEDDED = "9433b1ed-4006-46b8-8aa7-fdc7eeb203fd"
SOURCE = str(Path(overair.__file__).resolve().parents[1])
CLIENT = "6B1F0A9E-2C53-4C8E-9B8A-3F1D2E4C5A6B"  # as iOS sends it: upper-case


def export(output: Path, greeting: str) -> Path:
    """`npx expo export` of the fixture app for Android, offline, with ``greeting`` inlined."""
    env = {**os.environ, "EXPO_PUBLIC_GREETING": greeting, "EXPO_OFFLINE": "1", "CI": "1"}
    env["EXPO_NO_TELEMETRY"] = "1"
    done = subprocess.run(
        ["npx", "expo", "export", "--platform", "android", "--output-dir", str(output)],
        cwd=APP,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(APP, "expo", "@expo/multipart-body-parser", "@expo/code-signing-certificates")
    ensure_npm_packages(COMPAT, "code-push")
    with running_server(tmp_path_factory.mktemp("expo")) as live:
        yield live


class Publisher:
    """The `overair` CLI, logged in to the server."""

    def __init__(self, server: LiveServer, folder: Path) -> None:
        self.config = folder / "config.json"
        self.config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
        self.folder = folder

    def run(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "overair.main", *args, "--json"],
            env={**os.environ, "OVERAIR_CONFIG": str(self.config), "PYTHONPATH": SOURCE},
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return json.loads(done.stdout)


def client(server: LiveServer, key: str, current: str | None, **more: Any) -> dict[str, Any]:
    """One manifest request by the expo-updates-like client: what it saw, every asset hash checked."""
    request = {
        "url": f"{server.url}/expo/{key}",
        "platform": "android",
        "runtimeVersion": "1.0.0",
        "clientId": CLIENT,
        "embeddedUpdateId": EMBEDDED,
        "currentUpdateId": current,
        "keyid": "main",
        **more,
    }
    done = subprocess.run(
        ["node", "expo-client.mjs", "check", json.dumps(request)],
        cwd=APP,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def test_expo_app_updates_rolls_back_and_returns_to_the_binary_beside_a_codepush_app(
    server: LiveServer, tmp_path: Path
) -> None:
    subprocess.run(["node", "expo-client.mjs", "keys", str(tmp_path / "keys")], cwd=APP, check=True)
    certificate = (tmp_path / "keys" / "certificate.pem").read_text()
    signed = {"certificate": certificate}
    first, second = export(tmp_path / "dist-one", "one"), export(tmp_path / "dist-two", "two")
    cli = Publisher(server, tmp_path)
    cli.run("app", "create", "ExpoApp")
    push = ["release", "push-expo", "--project-name", "ExpoApp", "--runtime-version", "1.0.0"]
    sign = ["--code-signing-key", str(tmp_path / "keys" / "private-key.pem")]
    with admin_api(server) as api:
        deployments = api.get("/apps/ExpoApp/deployments").json()
    key = {d["name"]: d["key"] for d in deployments}["Production"]

    # the first update: signed by the CLI, every asset's hash as the export's files
    (one,) = cli.run(*push, "--dist", str(first), *sign, "--description", "first")["releases"]
    seen = client(server, key, None, **signed)
    assert seen["kind"] == "manifest" and seen["signed"] and seen["manifest"]["id"] == one["update_id"]
    metadata = json.loads((first / "metadata.json").read_text())["fileMetadata"]["android"]
    bundle = (first / metadata["bundle"]).read_bytes()
    assert seen["manifest"]["launchAsset"]["hash"] == b64url_sha256(bundle)
    assert {a["hash"] for a in seen["assets"].values()} == {
        b64url_sha256(bundle),
        *(b64url_sha256((first / a["path"]).read_bytes()) for a in metadata["assets"]),
    }
    assert seen["manifest"]["extra"]["overair"] == {"description": "first", "mandatory": False}
    assert client(server, key, one["update_id"], **signed)["directive"] == {"type": "noUpdateAvailable"}

    # a second update, then a rollback: the earlier content as a newer update (new id, later createdAt)
    (two,) = cli.run(*push, "--dist", str(second), *sign)["releases"]
    newer = client(server, key, one["update_id"], **signed)
    assert newer["manifest"]["id"] == two["update_id"]
    assert newer["manifest"]["launchAsset"]["hash"] != seen["manifest"]["launchAsset"]["hash"]
    (back,) = cli.run(*push, "--dist", str(first), *sign, "--description", "back to one")["releases"]
    rolled = client(server, key, two["update_id"], **signed)
    assert rolled["manifest"]["id"] == back["update_id"] not in (one["update_id"], two["update_id"])
    assert rolled["manifest"]["launchAsset"]["hash"] == seen["manifest"]["launchAsset"]["hash"]
    assert rolled["manifest"]["createdAt"] > newer["manifest"]["createdAt"]

    # the CLI's rollback of an unsigned app works the same way: a newer manifest with the earlier content
    cli.run("app", "create", "Unsigned")
    unsigned = ["release", "push-expo", "--project-name", "Unsigned", "--runtime-version", "1.0.0"]
    (u1,) = cli.run(*unsigned, "--dist", str(first))["releases"]
    (u2,) = cli.run(*unsigned, "--dist", str(second))["releases"]
    undone = cli.run("release", "rollback-update", "--project-name", "Unsigned")["release"]
    with admin_api(server) as api:
        unsigned_key = {d["name"]: d["key"] for d in api.get("/apps/Unsigned/deployments").json()}
    again = client(server, unsigned_key["Production"], u2["update_id"])
    assert again["manifest"]["id"] == undone["update_id"] != u1["update_id"]
    assert again["manifest"]["launchAsset"]["hash"] == seen["manifest"]["launchAsset"]["hash"]

    # back to the binary: every release disabled, and the device gets rollBackToEmbedded
    for label in ("v1", "v2", "v3"):
        cli.run("release", "patch-update", "--project-name", "ExpoApp", "--label", label, "--disabled")
    directive = client(server, key, back["update_id"], **signed)  # signed by the CLI with the update
    assert directive["directive"]["type"] == "rollBackToEmbedded" and directive["signed"]
    assert directive["directive"]["parameters"]["commitTime"] > rolled["manifest"]["createdAt"]
    assert client(server, key, EMBEDDED, **signed)["directive"] == {"type": "noUpdateAvailable"}

    # the same server, at the same time, serves a CodePush app to the real code-push SDK
    with admin_api(server) as api:
        created = api.post("/apps", json={"name": "CodePushApp"}).json()
        codepush_key = {d["name"]: d["key"] for d in created["deployments"]}["Production"]
        archive = make_zip({"CodePush/index.android.bundle": b"console.log('codepush');"})
        published = api.post(
            "/apps/CodePushApp/deployments/Production/releases",
            files={"package": ("b.zip", archive)},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text
    (answer,) = codepush_harness(server.url, codepush_key, [{"op": "check"}], "4.2.3")
    assert answer["update"]["label"] == "v1"
    assert client(server, key, EMBEDDED)["kind"] == "directive"  # and the Expo app still gets its answers
    assert uuid.UUID(one["update_id"])
