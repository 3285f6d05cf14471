"""`overair serve` as `make run` starts it: URL, first key once, a new key on request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import ON_POSTGRES, LiveServer, free_port

pytestmark = pytest.mark.slow


def whoami(server: LiveServer, key: str) -> int:
    return httpx.get(server.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code


def test_first_key_is_shown_once_and_a_new_one_on_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = LiveServer(data, free_port())
    try:
        assert first.key and f"overair login --server {first.url} --access-key {first.key}" in first.output
        assert f"Web console: {first.url}/console/" in first.output
        assert httpx.get(first.url + "/console/sign-in").status_code == 200
        assert whoami(first, first.key) == 200
    finally:
        first.stop()
    assert (data / "overair.db").exists() != ON_POSTGRES  # the database is in the data folder, or in PG

    second = LiveServer(data, free_port())
    try:
        assert second.key == "" and "Log in with" in second.output
        assert f"/metrics with the metrics key in {data / 'metrics-key'}" in second.output
        assert second.metrics_key not in second.output  # shown once, like the admin key
        assert whoami(second, first.key) == 200
    finally:
        second.stop()

    third = LiveServer(data, free_port(), "--new-admin-key")
    try:
        assert third.key and third.key != first.key
        assert whoami(third, third.key) == 200 and whoami(third, first.key) == 200
    finally:
        third.stop()


def test_the_server_key_is_printed_kept_across_restarts_and_a_damaged_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import re
    import shutil

    from conftest import run_cli

    data = tmp_path / "data"
    if ON_POSTGRES:  # overair makes no key on PostgreSQL: the operator's, named by OVERAIR_SERVER_KEY_FILE
        data.mkdir()
        shutil.copy(os.environ["OVERAIR_SERVER_KEY_FILE"], data / "server-key.pem")
        monkeypatch.setenv("OVERAIR_SERVER_KEY_FILE", str(data / "server-key.pem"))
    first = LiveServer(data, free_port())
    try:
        printed = re.search(r"signed with the server key (ed25519:\S+)", first.output)
        assert printed is not None
        served = httpx.get(first.url + "/api/v1/server-key").json()["public_key"]
        assert served == printed.group(1)
    finally:
        first.stop()
    second = LiveServer(data, free_port())
    try:
        assert httpx.get(second.url + "/api/v1/server-key").json()["public_key"] == served
    finally:
        second.stop()
    (data / "server-key.pem").write_text("damaged")
    code, _, err = run_cli(capsys, "serve", "--data-dir", str(data), "--port", str(free_port()))
    assert code == 1 and "signing key cannot be used" in err and "OVERAIR_SERVER_KEY_FILE" in err


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OVERAIR_ALLOWED_HOSTS", "https://ota.example.com", "is not a host name"),
        ("OVERAIR_PUBLIC_URL", "ota.example.com", "is not a URL"),
        ("OVERAIR_PORT", "eighty", "valid integer"),
    ],
)
def test_a_wrong_setting_is_named_without_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    named: str,
) -> None:
    from conftest import run_cli

    monkeypatch.setenv(variable, value)
    code, _, err = run_cli(capsys, "serve", "--data-dir", str(tmp_path / "data"))
    assert code == 1 and f"{variable}={value!r}" in err and named in err and "Traceback" not in err


def test_serving_on_every_address_says_how_devices_reach_it(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", free_port(), "--host", "0.0.0.0")
    try:
        assert "OVERAIR_PUBLIC_URL" in server.output and "421" in server.output
        misdirected = httpx.get(server.url + "/api/v1/apps", headers={"Host": "evil.example"})
        assert misdirected.status_code == 421 and "OVERAIR_ALLOWED_HOSTS" in misdirected.json()["detail"]
    finally:
        server.stop()
