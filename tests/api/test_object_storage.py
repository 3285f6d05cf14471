"""Object storage and where devices download from, through HTTP: a CDN (``OVERAIR_DOWNLOAD_URL``), presigned
URLs of the S3 bucket (``OVERAIR_S3_PRESIGN``) or overair itself; the headers that let a CDN cache every
download and no answer; and what devices and publishers get while the object store is down."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from conftest import MovableClock, bundle, publish
from overair.app import OverairApp, create_app
from overair.config import Settings, SettingsError, load_settings

IMMUTABLE = "public, max-age=31536000, immutable"
CDN = "https://cdn.example.com/overair"


def build(settings: Settings, clock: MovableClock, **changes: Any) -> OverairApp:
    """The server for ``settings`` with ``changes`` (OVERAIR_* names in lower case)."""
    return create_app(Settings(**{**settings.model_dump(), **changes, "_env_file": None}), clock=clock)


@pytest.fixture
def clients(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``open(app)``: the management client (admin key) and a device client of ``app``."""
    opened: list[TestClient] = []

    def open_(app: OverairApp) -> tuple[TestClient, TestClient]:
        created = app.state.access_keys.ensure_initial_key()
        api, device = (
            TestClient(app, base_url="http://testserver"),
            TestClient(app, base_url="http://testserver"),
        )
        api.__enter__()
        device.__enter__()
        opened.extend((api, device))
        api.headers["Authorization"] = f"Bearer {created.key}"
        return api, device

    yield open_
    for client in opened:
        client.__exit__(None, None, None)


def keys_of(api: TestClient) -> dict[str, str]:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}


def native_check(device: TestClient, key: str) -> httpx.Response:
    return device.get("/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0"})


def codepush_check(device: TestClient, key: str) -> httpx.Response:
    return device.get(
        "/v0.1/public/codepush/update_check", params={"deployment_key": key, "app_version": "1.0.0"}
    )


def test_answers_point_at_the_cdn_when_a_download_url_is_set(
    settings: Settings, clock: MovableClock, clients: Any
) -> None:
    api, device = clients(build(settings, clock, download_url=CDN + "/"))
    key = keys_of(api)["Production"]
    assert publish(api, content=bundle("cdn")).status_code == 201
    update = native_check(device, key).json()["update"]
    digest = update["package_hash"] and update["download_url"].rsplit("/", 1)[1]
    assert update["download_url"] == f"{CDN}/sha256/{digest[:2]}/{digest}"
    assert update["manifest_url"].startswith(CDN + "/sha256/")
    codepush = codepush_check(device, key)
    assert codepush.headers["cache-control"] == "private, no-store"
    assert codepush.json()["update_info"]["download_url"] == update["download_url"]
    deployment = api.get("/apps/CoolApp/deployments/Production").json()["deployment"]
    assert deployment["package"]["blobUrl"] == update["download_url"]  # the CodePush management API too
    assert native_check(device, key).headers["cache-control"] == "private, no-store"


def test_overair_serves_blobs_itself_cacheable_forever(
    settings: Settings, clock: MovableClock, clients: Any
) -> None:
    api, device = clients(build(settings, clock))
    key = keys_of(api)["Production"]
    publish(api, content=bundle("self"))
    url = native_check(device, key).json()["update"]["download_url"]
    assert url.startswith("http://testserver/v1/blobs/")
    downloaded = device.get(url)
    assert downloaded.status_code == 200 and downloaded.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize("digest", ["0" * 64, "not-a-digest"])
def test_a_missing_blob_is_never_cached(
    settings: Settings, clock: MovableClock, clients: Any, digest: str
) -> None:
    # a CDN that kept a 404 would go on refusing a blob that an upload in flight is about to store
    _api, device = clients(build(settings, clock))
    missing = device.get(f"/v1/blobs/sha256/00/{digest}")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"


def _signed(url: str) -> tuple[dt.datetime, int]:
    """When a presigned URL was signed and for how many seconds."""
    query = parse_qs(urlsplit(url).query)
    signed = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return signed, int(query["X-Amz-Expires"][0])


def test_presigned_answers_are_rebuilt_before_their_urls_expire(
    settings: Settings, clock: MovableClock, clients: Any, s3_settings: dict[str, str]
) -> None:
    lifetime = 3600
    app = build(settings, clock, **s3_settings, s3_presign=True, s3_presign_seconds=lifetime)
    api, device = clients(app)
    key = keys_of(api)["Production"]
    content = bundle("presigned")
    publish(api, content=content)
    first = native_check(device, key).json()["update"]["download_url"]
    downloaded = httpx.get(first)  # straight from the bucket, not through overair
    assert downloaded.status_code == 200 and downloaded.content == content
    assert downloaded.headers["cache-control"] == IMMUTABLE
    seen = set()
    for _ in range(12):  # four lifetimes, in steps of a third of one
        url = native_check(device, key).json()["update"]["download_url"]
        cp_url = codepush_check(device, key).json()["update_info"]["download_url"]
        for each in (url, cp_url):
            signed, expires = _signed(each)
            assert expires == lifetime
            # a URL handed out now stays valid at least half its lifetime
            assert signed + dt.timedelta(seconds=expires) - clock() >= dt.timedelta(seconds=lifetime / 2)
            assert signed <= clock()
        seen.add(url)
        clock.advance(lifetime / 3)
    assert len(seen) >= 7  # the cached answers were rebuilt as time went on


def test_bad_storage_settings_are_one_line_each() -> None:
    cases = {
        "blob_url": ("ftp://x", "s3://bucket/prefix"),
        "download_url": ("cdn.example.com", "https://cdn.example.com"),
    }
    for name, (value, hint) in cases.items():
        with pytest.raises(SettingsError) as exc:
            load_settings(**{name: value})
        assert f"OVERAIR_{name.upper()}" in exc.value.message and hint in exc.value.message
    with pytest.raises(SettingsError, match=r"OVERAIR_S3_PRESIGN.*OVERAIR_BLOB_URL=s3://"):
        load_settings(s3_presign=True)
    with pytest.raises(SettingsError, match="not both"):
        load_settings(blob_url="s3://b/p", download_url=CDN, s3_presign=True)


class Relay:
    """A TCP relay to the S3 server that a test can cut, as a network or bucket outage does."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        relay = self

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection((target.hostname, target.port)) as other:
                    relay.sockets.extend((self.request, other))

                    def pump(a: socket.socket, b: socket.socket) -> None:
                        try:
                            while data := a.recv(65536):
                                b.sendall(data)
                        except OSError:
                            pass
                        finally:
                            for s in (a, b):
                                with contextlib.suppress(OSError):
                                    s.shutdown(socket.SHUT_RDWR)

                    back = threading.Thread(target=pump, args=(other, self.request), daemon=True)
                    back.start()
                    pump(self.request, other)
                    back.join()

        self.sockets: list[socket.socket] = []
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Pipe)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cut(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def test_an_object_store_outage_leaves_update_checks_answering_and_explains_the_rest(
    settings: Settings, clock: MovableClock, clients: Any, s3_settings: dict[str, str]
) -> None:
    relay = Relay(s3_settings["s3_endpoint"])
    try:
        api, device = clients(build(settings, clock, **{**s3_settings, "s3_endpoint": relay.url}))
        key = keys_of(api)["Production"]
        assert publish(api, content=bundle("before")).status_code == 201
        update = native_check(device, key).json()["update"]
        assert device.get(update["download_url"]).status_code == 200
        relay.cut()
        # devices: the update check never touches the object store; downloads say when to come back
        assert native_check(device, key).json()["update"]["label"] == "v1"
        assert codepush_check(device, key).status_code == 200
        down = device.get(update["download_url"])
        assert down.status_code == 503 and down.headers["retry-after"] == "30"
        assert "Traceback" not in down.text
        # publishers: problem+json naming the object store
        refused = publish(api, content=bundle("during"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["code"] == "storage-unavailable" and refused.headers["retry-after"] == "30"
        assert "object store" in problem["detail"] and relay.url in problem["detail"]
        assert api.get("/api/v1/apps/CoolApp/deployments/Production/releases").status_code == 200
        documented = api.get("/api/v1/openapi.json").json()["paths"]
        releases = documented["/api/v1/apps/{app}/deployments/{deployment}/releases"]
        assert "503" in releases["post"]["responses"]
    finally:
        relay.cut()


@pytest.mark.parametrize("fault", ["unreachable", "wrong secret"])
def test_serve_refuses_to_start_on_an_unusable_object_store_in_one_line(
    tmp_path: Any, s3_settings: dict[str, str], fault: str
) -> None:
    import os
    import subprocess
    import sys

    from conftest import free_port

    env = {**os.environ, **{f"OVERAIR_{k.upper()}": v for k, v in s3_settings.items()}}
    env |= {"OVERAIR_DATA_DIR": str(tmp_path / "data"), "OVERAIR_PORT": str(free_port()), "NO_COLOR": "1"}
    if fault == "unreachable":
        env["OVERAIR_S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    else:
        env["OVERAIR_S3_SECRET_ACCESS_KEY"] = "wrong"
    done = subprocess.run(
        [sys.executable, "-m", "overair.main", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert any(
        ("cannot be reached" if fault == "unreachable" else "refused the credentials") in line
        and "s3://" in line
        for line in lines
    ), output


def test_update_checks_say_no_update_when_presigning_loses_its_credentials(
    settings: Settings,
    clock: MovableClock,
    clients: Any,
    s3_settings: dict[str, str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Temporary credentials (a role, SSO) are refreshed as they expire; a refresh that fails must not turn
    update checks into errors."""
    import json
    import shlex
    import sys

    secret = tmp_path / "credentials.json"
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret.write_text(
        json.dumps(
            {
                "Version": 1,
                "AccessKeyId": s3_settings["s3_access_key_id"],
                "SecretAccessKey": s3_settings["s3_secret_access_key"],
                "Expiration": expiry,  # within botocore's refresh window: read again on every use
            }
        )
    )
    reader = f"{sys.executable} -c 'import sys; print(open(sys.argv[1]).read())' {shlex.quote(str(secret))}"
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\ncredential_process = {reader}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    changes = {**s3_settings, "s3_access_key_id": "", "s3_secret_access_key": "", "s3_presign": True}
    api, device = clients(build(settings, clock, **changes))
    key = keys_of(api)["Production"]
    assert publish(api, content=bundle("role")).status_code == 201
    assert native_check(device, key).json()["status"] == "update"
    secret.unlink()  # the credentials can no longer be refreshed
    clock.advance(86_400)  # a new presigning window: the answers are built again
    for check in (native_check, codepush_check):
        answer = check(device, key)
        assert answer.status_code == 200, answer.text
    ours = [r.getMessage() for r in caplog.records if r.name == "overair"]
    assert ours and all("credentials could not be obtained" in m and "Traceback" not in m for m in ours)
    assert native_check(device, key).json()["status"] == "no_update"
    assert codepush_check(device, key).json()["update_info"]["is_available"] is False
    secret.write_text(json.dumps({"Version": 1, "AccessKeyId": s3_settings["s3_access_key_id"],
                                  "SecretAccessKey": s3_settings["s3_secret_access_key"],
                                  "Expiration": expiry}))  # fmt: skip
    assert native_check(device, key).json()["status"] == "update"  # the "no update" was never cached


def test_fsck_checks_a_bucket_like_a_folder(
    settings: Settings,
    clock: MovableClock,
    clients: Any,
    s3_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from conftest import run_cli

    app = build(settings, clock, **s3_settings)
    api, _device = clients(app)
    keys_of(api)
    for text in ("Welcome", "Welcome back"):
        assert publish(api, content=bundle(text)).status_code == 201
    app.state.releases.drain()
    for name, value in s3_settings.items():
        monkeypatch.setenv(f"OVERAIR_{name.upper()}", value)
    code, out, _ = run_cli(capsys, "fsck", "--data-dir", str(settings.data_dir))
    assert code == 0 and "Everything is consistent." in out, out
    assert not (settings.data_dir / "blobs").exists()  # nothing went to the local folder
    release = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[0]
    manifest = api.get(f"/api/v1/apps/CoolApp/deployments/Production/releases/{release['label']}/manifest")
    lost = f"sha256/{manifest.json()[0]['sha256'][:2]}/{manifest.json()[0]['sha256']}"
    app.state.blobs.delete(lost)
    code, out, _ = run_cli(capsys, "fsck", "--data-dir", str(settings.data_dir))
    assert code == 1 and lost in out, out
