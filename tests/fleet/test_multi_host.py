"""Two overair servers behind Debian's nginx, as a team with a fleet runs them (issue 15, item 9).

Two ``overair serve`` processes with separate, empty data folders share one PostgreSQL database, one bucket
on a real S3-compatible server (Swift with s3api, ``s3_server.py``) and one server key; nginx balances
round-robin in front of them and caches blob downloads as a CDN would. Every request of these tests goes
through nginx, so each lands on either host; the tests show from nginx's log that both hosts served them.
The last test kills a host with SIGKILL in the middle of a large upload: the retry goes through the other
host, and no partial release or referenced-but-missing object is left behind.

PostgreSQL is the run's own server on the PostgreSQL run, else one this module starts; the module is
marked ``no_database`` so that it runs once per ``make test`` (in the SQLite run), not twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import overair
from conftest import LiveServer, codepush_harness, ensure_npm_packages, free_port
from nginx_server import NginxServer
from overair.client import CheckStatus, UpdateEngine
from overair.packages import signing
from postgres_server import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.no_database]

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "compat"
SOURCE = str(Path(overair.__file__).resolve().parents[1])


@dataclass
class Fleet:
    """The deployment under test: hosts by name, nginx in front, the admin key and the server's public key."""

    hosts: dict[str, LiveServer]
    nginx: NginxServer
    admin_key: str
    server_key: str
    env: dict[str, str]
    root: Path

    @property
    def url(self) -> str:
        return self.nginx.url

    def api(self, base: str | None = None) -> httpx.Client:
        """overair's management API through nginx (or straight to one host, given its URL)."""
        return httpx.Client(
            base_url=(base or self.url) + "/api/v1",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=60,
        )

    def upstream(self, name: str) -> str:
        return self.hosts[name].url.removeprefix("http://")

    def served_by_both(self, path_prefix: str) -> None:
        seen = self.nginx.upstreams_seen(path_prefix)
        assert seen == {self.upstream("a"), self.upstream("b")}, (path_prefix, self.nginx.access_log())


def _host(fleet_root: Path, name: str, port: int, env: dict[str, str]) -> LiveServer:
    return LiveServer(fleet_root / f"host-{name}", port, env=env)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres: Any, s3_server: Any) -> Iterator[Fleet]:
    from s3_server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

    own = None
    if postgres is None:
        own = PostgresServer()
        own.start()
    database = (postgres or own).create(template=None)  # empty: the hosts migrate it themselves
    root = tmp_path_factory.mktemp("fleet")
    # one key for the whole deployment, made once by the operator and given to every host
    key_file = root / "server-key.pem"
    server_key = signing.public_key_text(signing.load_or_create_key_file(key_file))
    ports = {"a": free_port(), "b": free_port()}
    nginx = NginxServer([f"127.0.0.1:{port}" for port in ports.values()])
    env = {
        "OVERAIR_DATABASE_URL": database,
        "OVERAIR_BLOB_URL": f"s3://{BUCKET}/fleet-{time.monotonic_ns()}",
        "OVERAIR_S3_ENDPOINT": s3_server.endpoint,
        "OVERAIR_S3_REGION": REGION,
        "OVERAIR_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "OVERAIR_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "OVERAIR_SERVER_KEY_FILE": str(key_file),
        "OVERAIR_PUBLIC_URL": nginx.url,
    }
    hosts: dict[str, LiveServer] = {}
    try:
        for name, port in ports.items():
            hosts[name] = _host(root, name, port, env)
        admin_key = hosts["a"].key
        assert admin_key and not hosts["b"].key  # one first admin key for the deployment, shown once
        yield Fleet(hosts, nginx, admin_key, server_key, env, root)
    finally:
        for host in hosts.values():
            host.stop()
        print("nginx access log (method, path, status, upstream, cache):")
        for line in nginx.access_log():
            print("   ", " ".join(line))
        nginx.stop()
        (postgres or own).drop(database)
        if own is not None:
            own.stop()


def _bundle(folder: Path, text: str, padding: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.js").write_text(f"showWelcome({text!r});\n")
    if padding:
        # incompressible, so the upload really is this large
        (folder / "assets.bin").write_bytes(os.urandom(padding))
    return folder


def _cli(fleet: Fleet, *args: str, server: str | None = None) -> dict[str, Any]:
    config = fleet.root / f"cli-{abs(hash(server or fleet.url))}.json"
    config.write_text(json.dumps({"server": server or fleet.url, "access_key": fleet.admin_key}))
    done = subprocess.run(
        [sys.executable, "-m", "overair.main", *args, "--json"],
        env={**_clean_env(), "OVERAIR_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERAIR_")}
    env["PYTHONPATH"] = os.pathsep.join([SOURCE, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def test_the_release_story_through_the_cli_reaches_every_host(fleet: Fleet, tmp_path: Path) -> None:
    _cli(fleet, "app", "create", "CoolApp")
    pushed = _cli(
        fleet,
        "release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0",
        "--deployment", "Staging", "--bundle", str(_bundle(tmp_path / "v1", "Welcome to CoolApp")),
    )  # fmt: skip
    assert pushed["release"]["label"] == "v1"
    _cli(
        fleet,
        "release", "promote", "--project-name", "CoolApp", "--from", "Staging", "--to", "Production",
        "--rollout-percentage", "50",
    )  # fmt: skip
    _cli(
        fleet,
        "release", "patch-update", "--project-name", "CoolApp", "--target-version", "1.0.0",
        "--deployment", "Production", "--rollout-percentage", "100",
    )  # fmt: skip
    _cli(
        fleet,
        "release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0",
        "--bundle", str(_bundle(tmp_path / "v2", "Broken welcome")),
    )  # fmt: skip
    _cli(fleet, "release", "rollback-update", "--project-name", "CoolApp")
    histories = [
        _cli(fleet, "release", "list", "--project-name", "CoolApp", server=host.url)
        for host in fleet.hosts.values()
    ]
    assert histories[0] == histories[1]
    releases = histories[0]["releases"]
    assert [(r["label"], r["method"]) for r in releases][:3] == [
        ("v3", "rollback"),
        ("v2", "upload"),
        ("v1", "promote"),
    ]
    fleet.served_by_both("/api/v1/apps/CoolApp")


def _codepush_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("CodePush/index.android.bundle", f"console.log({text!r});")
        zf.writestr("CodePush/assets/a.txt", text * 100)
    return buffer.getvalue()


def _sdk(fleet: Fleet, deployment_key: str, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    ensure_npm_packages(COMPAT, "code-push")
    results: list[dict[str, Any]] = codepush_harness(fleet.url, deployment_key, list(steps), "4.2.3")
    return results


def _release_row(api: httpx.Client, app: str, label: str) -> dict[str, Any]:
    for row in api.get(f"/apps/{app}/deployments/Production/releases").json():
        if row["label"] == label:
            return dict(row)
    raise AssertionError(f"no release {label} of {app}")


def _eventually(read: Any, expected: Any, seconds: float = 20.0) -> None:
    """Reports may wait in a host's buffer for one flush interval: read until they are counted."""
    deadline = time.monotonic() + seconds
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert value == expected


def test_the_codepush_sdk_checks_downloads_and_reports_through_either_host(fleet: Fleet) -> None:
    with fleet.api() as api:
        created = api.post("/apps", json={"name": "SdkApp"})
        assert created.status_code == 201, created.text
        key = {d["name"]: d["key"] for d in created.json()["deployments"]}["Production"]
        content = _codepush_zip("hello from the fleet")
        published = api.post(
            "/apps/SdkApp/deployments/Production/releases",
            files={"package": ("b.zip", content)},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text
        # several devices, so the checks alternate between the hosts
        checks = _sdk(fleet, key, *({"op": "check", "clientUniqueId": f"device-{i}"} for i in range(4)))
        updates = [result["update"] for result in checks]
        assert all(u and u["label"] == "v1" for u in updates), checks
        assert updates[0]["downloadUrl"].startswith(fleet.url + "/")
        first, second = _sdk(
            fleet,
            key,
            {"op": "fetch", "url": updates[0]["downloadUrl"]},
            {"op": "fetch", "url": updates[1]["downloadUrl"]},
        )
        assert first["status"] == second["status"] == 200
        assert first["sha256"] == second["sha256"] == hashlib.sha256(content).hexdigest()
        reported = _sdk(
            fleet,
            key,
            *(
                {
                    "op": "deploy",
                    "package": updates[i],
                    "status": "DeploymentSucceeded",
                    "clientUniqueId": f"device-{i}",
                }
                for i in range(4)
            ),
        )
        assert all(r["error"] is None for r in reported), reported
        _eventually(lambda: _release_row(api, "SdkApp", "v1")["installs"], 4)
    fleet.served_by_both("/v0.1/public/codepush/update_check")
    fleet.served_by_both("/v0.1/public/codepush/report_status/deploy")
    # the CDN stand-in answered the second download from its cache
    cached = [line for line in fleet.nginx.access_log() if line[1].startswith("/v1/blobs/")]
    assert [line[4] for line in cached][-2:] == ["MISS", "HIT"], cached


def test_a_chunked_codepush_upload_lands_on_both_hosts(fleet: Fleet) -> None:
    with fleet.api() as api:
        assert api.post("/apps", json={"name": "ChunkApp"}).status_code == 201
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("CodePush/index.android.bundle", "console.log('chunked');")
        zf.writestr("CodePush/assets/big.bin", os.urandom(9 * 1024 * 1024), compress_type=zipfile.ZIP_STORED)
    content = package.getvalue()
    headers = {"x-api-token": fleet.admin_key}
    with httpx.Client(base_url=fleet.url, timeout=60) as http:
        start = http.post("/apps/admin/ChunkApp/deployments/Staging/uploads", headers=headers)
        assert start.status_code == 201, start.text
        upload = start.json()
        query = {"token": upload["token"]}
        meta = http.post(
            f"/upload/set_metadata/{upload['id']}",
            params={**query, "file_name": "update.zip", "file_Size": str(len(content))},
        )
        assert meta.status_code == 200, meta.text
        size = meta.json()["chunk_size"]
        chunks = meta.json()["chunk_list"]
        assert len(chunks) >= 3
        for number in chunks:
            piece = content[(number - 1) * size : number * size]
            sent = http.post(
                f"/upload/upload_chunk/{upload['id']}",
                params={**query, "block_number": str(number)},
                content=piece,
            )
            assert sent.status_code == 200, sent.text
        finished = http.post(f"/upload/finished/{upload['id']}", params=query)
        assert finished.json()["state"] == "Done", finished.text
        released = http.post(
            "/apps/admin/ChunkApp/deployments/Staging/releases",
            headers=headers,
            json={"release_upload": upload, "target_binary_version": "1.0.0", "deployment_name": "Staging"},
        )
        assert released.status_code == 201, released.text
    fleet.served_by_both(f"/upload/upload_chunk/{upload['id']}")
    for host in fleet.hosts.values():
        with fleet.api(host.url) as api:
            (release,) = api.get("/apps/ChunkApp/deployments/Staging/releases").json()
            assert release["size"] == len(content)


def test_a_device_engine_updates_through_either_host(fleet: Fleet, tmp_path: Path) -> None:
    with fleet.api() as api:
        created = api.post("/apps", json={"name": "EngineApp"})
        key = {d["name"]: d["key"] for d in created.json()["deployments"]}["Production"]
        bundle = io.BytesIO()
        with zipfile.ZipFile(bundle, "w") as zf:
            zf.writestr("index.js", "showWelcome('Welcome to EngineApp');\n")
        published = api.post(
            "/apps/EngineApp/deployments/Production/releases",
            files={"package": ("b.zip", bundle.getvalue())},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    (embedded / "index.js").write_text("showWelcome('embedded');\n")

    def engine() -> UpdateEngine:
        # the server key: answers signed by either host are accepted only because both hold the same key
        return UpdateEngine(
            fleet.url,
            key,
            "1.0.0",
            embedded_bundle=embedded,
            data_dir=tmp_path / "device",
            server_key=fleet.server_key,
        )

    device = engine()
    device.start()
    for _ in range(3):  # several checks: they alternate between the hosts, and each answer verifies
        result = device.check_for_update()
        assert result.status is CheckStatus.UPDATE and result.update is not None, result
    device.install(device.download(result.update))
    device.close()
    device = engine()
    folder = device.start()
    device.notify_app_ready()
    assert device.current_label == "v1" and "EngineApp" in (folder / "index.js").read_text()
    assert device.flush_reports() >= 0
    device.close()
    fleet.served_by_both("/v1/update-check")


def test_a_host_killed_during_a_large_upload_leaves_nothing_half_done(fleet: Fleet, tmp_path: Path) -> None:
    with fleet.api() as api:
        assert api.post("/apps", json={"name": "BigApp"}).status_code == 201
    big = _bundle(tmp_path / "big", "large", padding=80 * 1024 * 1024)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for file in big.iterdir():
            zf.write(file, file.name)
    victim = fleet.hosts["a"]

    boundary = "overair-fleet-test"

    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="release"\r\n\r\n'
        f"{json.dumps({'target_version': '1.0.0'})}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="package"; filename="big.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        """The multipart upload, sent a megabyte at a time; the receiving host is SIGKILLed halfway."""
        yield head
        half, sent = archive.stat().st_size // 2, 0
        with archive.open("rb") as data:
            while piece := data.read(1024 * 1024):
                if sent >= half and victim.process.poll() is None:
                    victim.kill()
                yield piece
                sent += len(piece)
        yield tail

    headers = {
        "Authorization": f"Bearer {fleet.admin_key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + archive.stat().st_size + len(tail)),
    }
    with httpx.Client(base_url=victim.url + "/api/v1", timeout=120) as straight:
        try:
            answer = straight.post(
                "/apps/BigApp/deployments/Production/releases", headers=headers, content=body()
            )
        except httpx.HTTPError:
            answer = None
    assert answer is None, answer.text
    assert victim.process.returncode == -signal.SIGKILL
    # the operator's retry, through nginx: the dead host is skipped, the other one takes the upload
    retried = _cli(
        fleet,
        "release", "push-update", "--project-name", "BigApp", "--target-version", "1.0.0",
        "--bundle", str(archive),
    )  # fmt: skip
    assert retried["release"]["label"] == "v1"
    with fleet.api() as api:
        releases = api.get("/apps/BigApp/deployments/Production/releases").json()
    assert [r["label"] for r in releases] == ["v1"]  # no partial release from the cut upload
    fsck = subprocess.run(
        [
            sys.executable,
            "-m",
            "overair.main",
            "fsck",
            "--data-dir",
            str(fleet.hosts["b"].data_dir),
            "--json",
        ],
        env={**_clean_env(), **fleet.env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(fsck.stdout)
    assert report["problems"] == [], report  # every referenced object exists and is whole
    assert fsck.returncode == 0, fsck.stderr


def test_a_cdn_may_cache_downloads_forever_and_update_checks_never(fleet: Fleet) -> None:
    with fleet.api() as api:
        created = api.post("/apps", json={"name": "CdnApp"})
        key = {d["name"]: d["key"] for d in created.json()["deployments"]}["Production"]
        published = api.post(
            "/apps/CdnApp/deployments/Production/releases",
            files={"package": ("b.zip", _codepush_zip("cdn"))},
            data={"release": json.dumps({"target_version": "1.0.0"})},
        )
        assert published.status_code == 201, published.text
    with httpx.Client(base_url=fleet.url, timeout=30) as device:
        check = device.get(
            "/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0", "client_id": "cdn-1"}
        )
        assert check.headers["cache-control"] == "private, no-store"
        download = device.get(check.json()["update"]["download_url"])
        assert download.status_code == 200
        assert download.headers["cache-control"] == "public, max-age=31536000, immutable"
        codepush = device.get(
            "/v0.1/public/codepush/update_check", params={"deployment_key": key, "app_version": "1.0.0"}
        )
        assert codepush.headers["cache-control"] == "private, no-store"
