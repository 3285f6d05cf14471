"""docs/deploy.md runs as written: its settings file loads, its systemd unit verifies, its nginx site serves
overair over TLS (uploads, cached blobs, uncached checks), and its backup, restore and upgrade commands
work on a real PostgreSQL, after which a server on the restored database answers the same releases."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, bundle, free_port
from overair.config import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
BIN = Path(sys.executable).parent


def blocks() -> dict[str, str]:
    """The page's code blocks whose first line is a ``# name`` comment, by name."""
    found = {}
    for match in re.finditer(r"```\w*\n(.*?)```", DOC.read_text(), re.S):
        first = match.group(1).splitlines()[0]
        if first.startswith("# "):
            found[first[2:].strip()] = match.group(1)
    return found


def with_values(script: str, **values: str) -> str:
    """The script with each ``NAME=value`` (or ``export NAME=value``) line's value replaced."""
    for name, value in values.items():
        script, count = re.subn(rf"^((?:export )?{name}=)\S+.*$", rf"\g<1>{value}", script, flags=re.M)
        assert count == 1, f"{name}= is not in the block"
    return script


def run(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def env_file(tmp_path: Path, **values: str) -> Path:
    """The page's settings file, with ``values`` in place of its own."""
    text = blocks()["/etc/overair/overair.env"]
    for name, value in values.items():
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.M)
    path = tmp_path / "overair.env"
    path.write_text(text)
    return path


@pytest.mark.no_database
def test_the_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in blocks()["/etc/overair/overair.env"].splitlines()[1:]:
        name, value = line.split("=", 1)
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.public_url == "https://ota.example.com" and settings.shutdown_seconds == 10
    assert "ota.example.com" in settings.host_policy().names()


@pytest.mark.no_database
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = blocks()["/etc/systemd/system/overair.service"]
    unit = unit.replace("/opt/overair/.venv/bin/overair", str(BIN / "overair"))
    unit = unit.replace("/etc/overair/overair.env", str(env_file(tmp_path)))
    unit = unit.replace("/var/lib/overair", str(tmp_path))
    (tmp_path / "overair.service").write_text(unit)
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "overair.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0 and "overair.service" not in verified.stderr, verified.stderr
    # the unit waits longer than overair takes to stop
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert stop is not None and int(stop.group(1)) > load_settings().shutdown_seconds


@contextlib.contextmanager
def nginx_in_front(tmp_path: Path, overair_port: int) -> Iterator[int]:
    """The page's nginx site on 127.0.0.1 (a self-signed certificate), proxying to ``overair_port``; the
    HTTPS port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: make system-deps installs it")
    root = tmp_path / "nginx"
    root.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=ota.example.com", "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    https, http = free_port(), free_port()
    site = blocks()["/etc/nginx/sites-available/overair"]
    for old, new in (
        ("/var/cache/nginx/overair", str(root / "cache")),
        ("/etc/letsencrypt/live/ota.example.com/fullchain.pem", str(root / "cert.pem")),
        ("/etc/letsencrypt/live/ota.example.com/privkey.pem", str(root / "key.pem")),
        ("server 127.0.0.1:3000;", f"server 127.0.0.1:{overair_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
    ):
        assert old in site
        site = site.replace(old, new)
    (root / "overair.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""  # workers must reach the test's private folder
    (root / "nginx.conf").write_text(
        f"{user} pid {root / 'nginx.pid'}; error_log {root / 'error.log'}; daemon off;\n"
        f"events {{}}\nhttp {{ access_log off; {temp} include {root / 'overair.conf'}; }}\n"
    )
    checked = subprocess.run([nginx, "-t", "-c", str(root / "nginx.conf")], capture_output=True, text=True)
    assert checked.returncode == 0 and "syntax is ok" in checked.stderr, checked.stderr
    process = subprocess.Popen([nginx, "-c", str(root / "nginx.conf")], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(
                    f"https://127.0.0.1:{https}/healthz", verify=False, headers={"Host": "ota.example.com"}
                )
                break
            process.poll()
            assert process.returncode is None, (root / "error.log").read_text()
            subprocess.run(["sleep", "0.1"], check=True)  # nginx's own start, not a test's wait for time
        yield https
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_the_nginx_site_serves_overair_with_tls_uploads_and_the_right_caching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERAIR_PUBLIC_URL", "https://ota.example.com")
    server = LiveServer(tmp_path / "data", free_port())
    try:
        with nginx_in_front(tmp_path, int(server.url.rsplit(":", 1)[1])) as https:
            base = f"https://127.0.0.1:{https}"
            with httpx.Client(
                base_url=base, verify=False, headers={"Host": "ota.example.com"}, timeout=60
            ) as web:
                assert web.get("/readyz").json() == {"status": "ready", "failing": {}}
                plain = httpx.get(f"http://127.0.0.1:{https}", timeout=5)  # TLS only on the TLS port
                assert plain.status_code == 400
                auth = {"Authorization": f"Bearer {server.key}"}
                assert web.post("/api/v1/apps", json={"name": "CoolApp"}, headers=auth).status_code == 201
                large = bundle(
                    "big", **{"padding.bin": os.urandom(2 * 1024 * 1024)}
                )  # above nginx's 1 MB default
                published = web.post(
                    "/api/v1/apps/CoolApp/deployments/Production/releases",
                    headers=auth,
                    files={"package": ("bundle.zip", large, "application/zip")},
                    data={"release": json.dumps({"target_version": "1.0.0"})},
                )
                assert published.status_code == 201, published.text
                keys = {
                    d["name"]: d["key"]
                    for d in web.get("/api/v1/apps/CoolApp/deployments", headers=auth).json()
                }
                params = {"deploymentKey": keys["Production"], "appVersion": "1.0.0"}
                checks = [web.get("/updateCheck", params=params) for _ in range(2)]
                assert all(c.status_code == 200 and "X-Cache-Status" not in c.headers for c in checks)
                assert checks[0].headers["Cache-Control"] == "private, no-store"
                url = checks[0].json()["updateInfo"]["downloadURL"]
                assert url.startswith("https://ota.example.com/v1/blobs/")
                path = url.removeprefix("https://ota.example.com")
                first, second = web.get(path), web.get(path)
                assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
                assert first.content == second.content and "immutable" in second.headers["Cache-Control"]
                management = web.get("/api/v1/apps", headers=auth)
                assert management.status_code == 200 and "X-Cache-Status" not in management.headers
    finally:
        server.stop()


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def postgres_server(postgres: Any) -> Iterator[Any]:
    """The test run's PostgreSQL, or one started for this test when the run is on SQLite."""
    if postgres is not None:
        yield postgres
        return
    from overair.db import make_engine, migrate
    from postgres_server import PostgresServer

    server = PostgresServer()
    server.start()

    def migrate_url(url: str) -> None:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()

    server.create_template(migrate_url)
    try:
        yield server
    finally:
        server.stop()


def releases(server: LiveServer, key: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.get(server.url + "/api/v1/apps/CoolApp/deployments/Production/releases", headers=headers)
    assert response.status_code == 200
    return [{k: v for k, v in r.items() if k != "id"} for r in response.json()]


@pytest.mark.slow
def test_backup_restore_and_upgrade_commands_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: Any
) -> None:
    source = postgres_server.create()
    monkeypatch.setenv("OVERAIR_DATABASE_URL", source)
    data = tmp_path / "data"
    data.mkdir()
    run(with_values(blocks()["the server key"], DATA=str(data)), tmp_path)  # once, before the first host
    monkeypatch.delenv("OVERAIR_SERVER_KEY_FILE", raising=False)  # each host finds it in its data folder
    first = LiveServer(data, free_port())
    try:
        headers = {"Authorization": f"Bearer {first.key}"}
        with httpx.Client(base_url=first.url + "/api/v1", headers=headers, timeout=30) as api:
            assert api.post("/apps", json={"name": "CoolApp"}).status_code == 201
            for text in ("one", "two"):
                published = api.post(
                    "/apps/CoolApp/deployments/Production/releases",
                    files={"package": ("bundle.zip", bundle(text), "application/zip")},
                    data={"release": json.dumps({"target_version": "1.0.0", "description": text})},
                )
                assert published.status_code == 201, published.text
        before = releases(first, first.key)
        backups = tmp_path / "backups"
        backups.mkdir()
        run(with_values(blocks()["back up"], DB=libpq(source), DATA=str(data)), backups)  # while it serves
    finally:
        first.stop()

    stamp = next(backups.glob("overair-*.dump")).name.removeprefix("overair-").removesuffix(".dump")
    restored_name = f"restored_{free_port()}"
    admin = libpq(postgres_server.url("postgres"))
    restored = postgres_server.url(restored_name)
    moved = tmp_path / "moved"
    script = with_values(
        blocks()["restore"],
        ADMIN=admin,
        RESTORED=restored_name,
        DATA=str(moved),
        STAMP=stamp,
        OVERAIR_DATABASE_URL=restored,
    )
    run(script, backups)

    settings = env_file(tmp_path, OVERAIR_DATA_DIR=str(moved), OVERAIR_DATABASE_URL=restored)
    run(blocks()["upgrade"].replace("/etc/overair/overair.env", str(settings)), tmp_path)

    monkeypatch.setenv("OVERAIR_DATABASE_URL", restored)
    again = LiveServer(moved, free_port())
    try:
        after = releases(again, first.key)  # the restored database has the keys
        assert after == before and [r["label"] for r in after] == ["v1", "v2"]
        check = httpx.get(
            again.url + "/updateCheck",
            params={"deploymentKey": _key(again, first.key), "appVersion": "1.0.0"},
        ).json()["updateInfo"]
        download = httpx.get(check["downloadURL"])
        assert download.status_code == 200 and download.content  # the blobs came back with the database
        restart = blocks()["restart a host"]
        curl = next(line for line in restart.splitlines() if line.startswith("curl "))
        port = again.url.rsplit(":", 1)[1]
        assert "ready" in run(curl.replace("127.0.0.1:3000", f"127.0.0.1:{port}"), tmp_path).stdout
    finally:
        again.stop()
        postgres_server.drop(restored)
        postgres_server.drop(source)


def _key(server: LiveServer, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    found = httpx.get(server.url + "/api/v1/apps/CoolApp/deployments", headers=headers).json()
    return str(next(d["key"] for d in found if d["name"] == "Production"))
