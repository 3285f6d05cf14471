"""The real CodePush acquisition SDKs from npm (code-push 4.2.3 on the v0.1 paths, 2.0.7 on the legacy
paths) against `overair serve` on 127.0.0.1, driven by a small Node harness as an app would drive them."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import zipfile
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, admin_api, codepush_harness, ensure_npm_packages, running_server
from overair.packages import ManifestEntry, package_hash
from overair.selection import RolloutHash, rollout_bucket

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SDKS = ["4.2.3", "2.0.7"]
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(HERE, "code-push", "code-push-2")
    with running_server(tmp_path_factory.mktemp("codepush")) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """overair's own API, with the admin key."""
    with admin_api(server) as client:
        yield client


class App:
    def __init__(self, api: httpx.Client, server: LiveServer) -> None:
        self.api = api
        self.server = server
        self.name = f"App{next(_names)}"
        created = api.post("/apps", json={"name": self.name}).json()
        self.key = {d["name"]: d["key"] for d in created["deployments"]}["Production"]
        self.zips: dict[str, bytes] = {}

    def publish(self, text: str, extra: dict[str, bytes] | None = None, **options: object) -> dict:
        options.setdefault("target_version", "1.0.0")
        files = {
            "CodePush/index.android.bundle": f"console.log({text!r});".encode(),
            "CodePush/assets/a.txt": b"a",
            **(extra or {}),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        response = self.api.post(
            f"/apps/{self.name}/deployments/Production/releases",
            files={"package": ("b.zip", buffer.getvalue())},
            data={"release": json.dumps(options)},
        )
        assert response.status_code == 201, response.text
        self.zips[response.json()["package_hash"]] = buffer.getvalue()
        return response.json()

    def zip_of(self, release: dict) -> bytes:
        return self.zips[release["package_hash"]]

    def history(self) -> list[dict]:
        return self.api.get(f"/apps/{self.name}/deployments/Production/releases").json()

    def sdk(self, version: str, *steps: dict) -> list[dict]:
        results: list[dict] = codepush_harness(self.server.url, self.key, list(steps), version)
        return results


@pytest.fixture
def app(api: httpx.Client, server: LiveServer) -> App:
    return App(api, server)


@pytest.mark.parametrize("sdk", SDKS)
def test_no_update(app: App, sdk: str) -> None:
    assert app.sdk(sdk, {"op": "check"}) == [{"update": None}]
    app.publish("one")
    v1 = app.history()[0]
    current = {"op": "check", "label": "v1", "packageHash": v1["package_hash"]}
    assert app.sdk(sdk, current) == [{"update": None}]


@pytest.mark.parametrize("sdk", SDKS)
def test_update_available_and_downloadable(app: App, sdk: str) -> None:
    release = app.publish("one", description="first", mandatory=False)
    (result,) = app.sdk(sdk, {"op": "check", "clientUniqueId": "device-1"})
    update = result["update"]
    assert update["label"] == "v1" and update["packageHash"] == release["package_hash"]
    assert update["isMandatory"] is False and update["description"] == "first"
    assert update["packageSize"] == release["size"] and update["deploymentKey"] == app.key
    (fetched,) = app.sdk(sdk, {"op": "fetch", "url": update["downloadUrl"]})
    assert fetched["status"] == 200 and fetched["contentEncoding"] is None
    assert int(fetched["contentLength"]) == fetched["length"] == release["size"]
    data = b64decode(fetched["base64"])
    assert data[:4] == b"PK\x03\x04"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        import hashlib

        entries = [
            ManifestEntry(i.filename, hashlib.sha256(zf.read(i)).hexdigest(), i.file_size)
            for i in zf.infolist()
        ]
    assert package_hash(entries) == update["packageHash"]  # the client's own recipe over the files


@pytest.mark.parametrize("sdk", SDKS)
def test_mandatory_conversion_over_skipped_releases(app: App, sdk: str) -> None:
    app.publish("one")
    app.publish("two", mandatory=True)
    app.publish("three")
    v1 = app.history()[0]
    (on_v1,) = app.sdk(sdk, {"op": "check", "label": "v1", "packageHash": v1["package_hash"]})
    assert (on_v1["update"]["label"], on_v1["update"]["isMandatory"]) == ("v3", True)
    v2 = app.history()[1]
    (on_v2,) = app.sdk(sdk, {"op": "check", "label": "v2", "packageHash": v2["package_hash"]})
    assert (on_v2["update"]["label"], on_v2["update"]["isMandatory"]) == ("v3", False)


@pytest.mark.parametrize("sdk", SDKS)
def test_ranges_short_versions_and_prereleases(app: App, sdk: str) -> None:
    app.publish("range", target_version="^1.0.0")
    results = app.sdk(
        sdk,
        {"op": "check", "appVersion": "1"},
        {"op": "check", "appVersion": "1.0"},
        {"op": "check", "appVersion": "1.4.2"},
        {"op": "check", "appVersion": "1.0.0-beta.1"},
        {"op": "check", "appVersion": "1.1.0-beta.1"},
        {"op": "check", "appVersion": "2.0.0"},
    )
    labels = [r["update"] and r["update"].get("label") for r in results]
    assert labels[:3] == ["v1", "v1", "v1"]
    assert results[0]["update"]["appVersion"] == "1" and results[1]["update"]["appVersion"] == "1.0"
    # pre-releases never match a plain range; below it, the app is told a newer binary exists
    assert results[3]["update"] == {"updateAppVersion": True, "appVersion": "^1.0.0"}
    # node-semver's gtr() counts 1.1.0-beta.1 as above ^1.0.0, so the reference sends no hint: neither do we
    assert results[4]["update"] is None
    assert results[5]["update"] is None  # newer binary: runs its own bundle


@pytest.mark.parametrize("sdk", SDKS)
def test_short_versions_in_a_partial_rollout(app: App, sdk: str) -> None:
    """A deliberate difference (docs/migrating-from-codepush.md §6): the SDK hands the app the version it
    sent even inside a partial rollout with nothing outside it, where the reference would send "1.0.0"."""
    app.publish("half", target_version="^1.0.0", rollout=50)
    steps = [{"op": "check", "appVersion": "1.0", "clientUniqueId": f"phone-{i}"} for i in range(30)]
    updates = [r["update"] for r in app.sdk(sdk, *steps) if r["update"]]
    assert 0 < len(updates) < 30  # some devices are in the rollout, some are not
    assert {(u["label"], u["appVersion"]) for u in updates} == {("v1", "1.0")}


@pytest.mark.parametrize("sdk", SDKS)
def test_update_app_version_hint(app: App, sdk: str) -> None:
    app.publish("for 2.0", target_version="2.0.0")
    (result,) = app.sdk(sdk, {"op": "check", "appVersion": "1.0.0"})
    assert result["update"] == {"updateAppVersion": True, "appVersion": "2.0.0"}


@pytest.mark.parametrize("sdk", SDKS)
def test_rollout_matches_the_reference_bucketing(app: App, sdk: str) -> None:
    app.publish("full")
    app.publish("partial", rollout=30)
    ids = [f"{i:08x}-1c2d-4e5f-8a9b-{i * 7919:012x}" for i in range(10_000)]
    (result,) = app.sdk(sdk, {"op": "checkMany", "clientIds": ids})
    expected = ["v2" if rollout_bucket(c, "v2", RolloutHash.CODEPUSH) < 30 else "v1" for c in ids]
    assert result["labels"] == expected
    assert 0.27 < expected.count("v2") / len(ids) < 0.33


@pytest.mark.parametrize("sdk", SDKS)
def test_reports_reach_the_metrics(app: App, sdk: str) -> None:
    app.publish("one")
    package = {
        "appVersion": "1.0.0",
        "label": "v1",
        "packageHash": app.history()[0]["package_hash"],
        "deploymentKey": app.key,
    }
    results = app.sdk(
        sdk,
        {"op": "download", "package": package, "clientUniqueId": "u1"},
        {
            "op": "deploy",
            "package": package,
            "status": "DeploymentSucceeded",
            "clientUniqueId": "u1",
            "previousLabelOrAppVersion": "1.0.0",
        },
        {"op": "deploy", "package": package, "status": "DeploymentFailed", "clientUniqueId": "u2"},
        {"op": "deploy", "package": None, "clientUniqueId": "u3"},  # the binary itself is running
    )
    assert all(r["error"] is None for r in results), results
    release = app.history()[0]
    assert (release["downloads"], release["installs"], release["failures"]) == (1, 1, 1)
    # u1 installed v1 (by its clientUniqueId): the metrics store counts it as active there
    metrics = app.api.get(f"/apps/{app.name}/deployments/Production/metrics").json()
    assert metrics["active_devices"] == {"v1": 1}
    assert sum(p["installs"] for p in metrics["series"]) == 1


@pytest.mark.parametrize("sdk", SDKS)
def test_diff_package_served_and_applied(app: App, sdk: str, tmp_path: Path) -> None:
    import hashlib
    import time

    from overair.packages import apply_diff

    image = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(2000))
    v1 = app.publish("one", extra={"CodePush/assets/big.png": image, "CodePush/assets/old.txt": b"old"})
    v2 = app.publish("two", extra={"CodePush/assets/big.png": image})
    step = {"op": "check", "label": "v1", "packageHash": v1["package_hash"]}
    deadline = time.monotonic() + 20
    while True:  # diff archives are built in the background after the publish
        (result,) = app.sdk(sdk, step)
        if result["update"]["packageSize"] < v2["size"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    update = result["update"]
    assert update["label"] == "v2" and update["packageSize"] < v2["size"] / 4
    (fetched,) = app.sdk(sdk, {"op": "fetch", "url": update["downloadUrl"]})
    assert fetched["status"] == 200 and int(fetched["contentLength"]) == update["packageSize"]
    current = tmp_path / "current"
    with zipfile.ZipFile(io.BytesIO(app.zip_of(v1))) as zf:
        zf.extractall(current)
    archive = tmp_path / "diff.zip"
    archive.write_bytes(b64decode(fetched["base64"]))
    apply_diff(current, archive, tmp_path / "updated")
    files = [
        ManifestEntry(
            p.relative_to(tmp_path / "updated").as_posix(),
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_size,
        )
        for p in (tmp_path / "updated").rglob("*")
        if p.is_file()
    ]
    assert package_hash(files) == update["packageHash"] == v2["package_hash"]


@pytest.mark.parametrize("sdk", ["4.2.3"])
def test_signed_release_verifies_with_the_public_key(app: App, sdk: str, tmp_path: Path) -> None:
    import hashlib
    import os
    import sys

    subprocess.run(
        ["openssl", "genrsa", "-out", str(tmp_path / "private.pem"), "2048"], check=True, capture_output=True
    )
    subprocess.run(
        [
            "openssl",
            "rsa",
            "-pubout",
            "-in",
            str(tmp_path / "private.pem"),
            "-out",
            str(tmp_path / "public.pem"),
        ],
        check=True,
        capture_output=True,
    )
    build = tmp_path / "build" / "CodePush"  # as `react-native bundle` output for CodePush is laid out
    (build / "assets").mkdir(parents=True)
    (build / "index.android.bundle").write_text("console.log('signed');")
    (build / "assets" / "logo.png").write_bytes(b"png")
    (tmp_path / "config.json").write_text(
        json.dumps({"server": app.server.url, "access_key": app.server.key})
    )
    env = {**os.environ, "OVERAIR_CONFIG": str(tmp_path / "config.json"), "NO_COLOR": "1"}
    pushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "overair.main",
            "release",
            "push-update",
            "--project-name",
            app.name,
            "--target-version",
            "1.0.0",
            "--bundle",
            str(tmp_path / "build"),
            "--private-key",
            str(tmp_path / "private.pem"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "Signed with" in pushed.stdout

    (result,) = app.sdk(sdk, {"op": "check"})
    update = result["update"]
    (fetched,) = app.sdk(sdk, {"op": "fetch", "url": update["downloadUrl"]})
    folder = tmp_path / "device"
    with zipfile.ZipFile(io.BytesIO(b64decode(fetched["base64"]))) as zf:
        zf.extractall(folder)
    token = (folder / "CodePush" / ".codepushrelease").read_text()
    (verified,) = app.sdk(
        sdk, {"op": "verifyJwt", "token": token, "publicKey": (tmp_path / "public.pem").read_text()}
    )
    assert verified["valid"] is True and verified["header"] == {"alg": "RS256", "typ": "JWT"}
    assert verified["claims"]["claimVersion"] == "1.0.0"
    files = [
        ManifestEntry(
            p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size
        )
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".codepushrelease"
    ]
    assert verified["claims"]["contentHash"] == package_hash(files) == update["packageHash"]
    # a key that did not sign it does not verify
    subprocess.run(
        ["openssl", "genrsa", "-out", str(tmp_path / "other.pem"), "2048"], check=True, capture_output=True
    )
    other = subprocess.run(
        ["openssl", "rsa", "-pubout", "-in", str(tmp_path / "other.pem")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (wrong,) = app.sdk(sdk, {"op": "verifyJwt", "token": token, "publicKey": other})
    assert wrong["valid"] is False
