"""One answer-signing key for the whole deployment (issue 15, item 5), through `overair serve`.

Hosts read the key from ``OVERAIR_SERVER_KEY_FILE`` or ``OVERAIR_SERVER_KEY``; the first host records its
fingerprint in the database and a host with another key refuses to start, saying which is which.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from conftest import ON_POSTGRES, LiveServer, free_port, run_cli
from overair.db import make_engine
from overair.packages import signing

pytestmark = pytest.mark.slow


def recorded_fingerprint(database: str) -> str | None:
    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            query = text("SELECT value FROM server_settings WHERE name = 'server_key_fingerprint'")
            return conn.scalar(query)
    finally:
        engine.dispose()


def new_key_file(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """Make a server key with `overair keys server --create`; its fingerprint as printed."""
    code, out, err = run_cli(capsys, "keys", "server", "--create", str(path))
    assert code == 0, err
    assert f"OVERAIR_SERVER_KEY_FILE={path.resolve()}" in out
    found = re.search(r"\((SHA256:[0-9a-f]{64})\)", out)
    assert found is not None, out
    return found.group(1)


def refused_serve(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data: Path
) -> tuple[str, str]:
    """`overair serve` in this process, expected to refuse: its output and its error as one line."""
    for name in ("OVERAIR_DATA_DIR", "OVERAIR_PORT"):  # serve sets them: put them back afterwards
        monkeypatch.setenv(name, "")
    code, out, err = run_cli(capsys, "serve", "--data-dir", str(data), "--port", str(free_port()))
    assert code == 1, out
    assert "is serving at" not in out
    return out, " ".join(err.split())


def test_hosts_with_the_deployment_key_start_and_a_host_with_another_refuses(
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("OVERAIR_DATABASE_URL", database)
    key_file = tmp_path / "server-key.pem"
    fingerprint = new_key_file(capsys, key_file)
    again, _, refused = run_cli(capsys, "keys", "server", "--create", str(key_file))
    assert again == 1 and "exists already" in refused

    monkeypatch.setenv("OVERAIR_SERVER_KEY_FILE", str(key_file))
    first = LiveServer(tmp_path / "a", free_port())
    try:
        assert f"Recorded the server key {fingerprint} as the deployment's" in first.output
        assert recorded_fingerprint(database) == fingerprint
        # the second host has the key's text from a secret manager, newlines escaped as .env files keep them
        monkeypatch.delenv("OVERAIR_SERVER_KEY_FILE")
        monkeypatch.setenv("OVERAIR_SERVER_KEY", key_file.read_text().replace("\n", "\\n"))
        second = LiveServer(tmp_path / "b", free_port())
        try:
            assert "Recorded the server key" not in second.output
            assert fingerprint in second.output
            served = {httpx.get(s.url + "/api/v1/server-key").json()["public_key"] for s in (first, second)}
            assert served == {signing.public_key_text(signing.load_private_key(key_file.read_bytes()))}
        finally:
            second.stop()
    finally:
        first.stop()
    assert not (tmp_path / "b" / "server-key.pem").exists()

    other = tmp_path / "other-key.pem"
    other_fingerprint = new_key_file(capsys, other)
    monkeypatch.delenv("OVERAIR_SERVER_KEY")
    monkeypatch.setenv("OVERAIR_SERVER_KEY_FILE", str(other))
    _, line = refused_serve(capsys, monkeypatch, tmp_path / "c")
    assert f"This host's server key ({other_fingerprint}) is not the deployment's ({fingerprint}" in line
    assert "Copy the key file from the first host and set OVERAIR_SERVER_KEY_FILE" in line
    assert recorded_fingerprint(database) == fingerprint


@pytest.mark.skipif(not ON_POSTGRES, reason="a SQLite deployment makes its key on first start")
def test_on_postgresql_no_key_is_made_and_the_refusal_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OVERAIR_SERVER_KEY_FILE", raising=False)
    data = tmp_path / "data"
    _, line = refused_serve(capsys, monkeypatch, data)
    assert "No server key is configured, and on PostgreSQL every host must sign with the same one" in line
    assert "overair keys server --create" in line and "OVERAIR_SERVER_KEY_FILE" in line
    assert not (data / "server-key.pem").exists()


@pytest.mark.parametrize(
    ("key_text", "with_file", "named"),
    [
        ("not a key", False, "OVERAIR_SERVER_KEY is not a usable server key"),
        ("", True, "OVERAIR_SERVER_KEY and OVERAIR_SERVER_KEY_FILE are both set"),
    ],
)
def test_a_server_key_that_cannot_be_used_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key_text: str,
    with_file: bool,
    named: str,
) -> None:
    key_file = tmp_path / "server-key.pem"
    new_key_file(capsys, key_file)
    monkeypatch.setenv("OVERAIR_SERVER_KEY", key_text or key_file.read_text())
    if with_file:
        monkeypatch.setenv("OVERAIR_SERVER_KEY_FILE", str(key_file))
    else:
        monkeypatch.delenv("OVERAIR_SERVER_KEY_FILE", raising=False)
    _, line = refused_serve(capsys, monkeypatch, tmp_path / "d")
    assert named in line
