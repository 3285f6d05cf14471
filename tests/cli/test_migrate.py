"""`overair migrate`, and many hosts starting at once on one empty database: one schema, one first key.

Runs on the backend of the test run: a SQLite file, or a PostgreSQL database of the run's own server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from conftest import KEY_PATTERN, run_cli
from overair.auth.models import AccessKey
from overair.db import head_revision, make_engine
from overair.packages import signing

HOSTS = 10

# One "host": what `overair serve` does before it serves (sweep, migrate, first admin key), started at once
# with the others: each says "ready" once imported, then waits for the word to go.
HOST = """
import sys
from overair.config import load_settings
from overair.server import prepare
print("ready", flush=True)
sys.stdin.readline()
key = prepare(load_settings())
print("KEY " + key if key else "NO KEY", flush=True)
"""


def schema_and_keys(url: str) -> tuple[list[str], int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            versions = list(connection.scalars(text("SELECT version_num FROM alembic_version")))
            keys = connection.scalar(select(func.count()).select_from(AccessKey)) or 0
    finally:
        engine.dispose()
    return versions, keys


@pytest.mark.slow
def test_ten_hosts_starting_at_once_on_an_empty_database_make_one_schema_and_one_key(
    tmp_path: Path, another_database: Callable[..., str]
) -> None:
    url = another_database(empty=True)
    key_file = tmp_path / "server-key.pem"  # the deployment's key, given to every host
    key_file.write_bytes(signing.private_key_pem(signing.generate_private_key()))
    hosts = []
    for number in range(HOSTS):
        env = {
            **os.environ,
            "OVERAIR_DATA_DIR": str(tmp_path / f"host-{number}"),
            "OVERAIR_DATABASE_URL": url,
            "OVERAIR_SERVER_KEY_FILE": str(key_file),
            "NO_COLOR": "1",
        }
        hosts.append(
            subprocess.Popen(
                [sys.executable, "-c", HOST],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for host in hosts:
        assert host.stdout is not None and host.stdout.readline().strip() == "ready"
    for host in hosts:  # as close to at once as processes get
        assert host.stdin is not None
        host.stdin.write("go\n")
        host.stdin.flush()
    outputs = [host.communicate(timeout=240)[0] for host in hosts]

    assert [host.returncode for host in hosts] == [0] * HOSTS, "\n---\n".join(outputs)
    made = [KEY_PATTERN.search(output) for output in outputs]
    assert sum(1 for key in made if key) == 1, outputs
    assert sum(1 for output in outputs if "Recorded the server key" in output) == 1, outputs
    assert schema_and_keys(url) == ([head_revision()], 1)


def test_migrate_brings_an_empty_database_to_the_newest_revision_once(
    tmp_path: Path,
    another_database: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = another_database(empty=True)
    monkeypatch.setenv("OVERAIR_DATABASE_URL", url)
    code, out, _ = run_cli(capsys, "migrate", "--data-dir", str(tmp_path / "data"))
    assert code == 0 and f"from empty to revision {head_revision()}" in out
    assert schema_and_keys(url) == ([head_revision()], 0)  # the first key is serve's to make

    code, out, _ = run_cli(capsys, "migrate", "--data-dir", str(tmp_path / "data"))
    assert code == 0 and f"already at the newest revision ({head_revision()})" in out


UNREACHABLE = "postgresql://overair:s3cret@127.0.0.1:1/overair"  # nothing listens on port 1


@pytest.mark.parametrize(
    "command", [["migrate"], ["fsck"], ["serve", "--port", "1"]], ids=["migrate", "fsck", "serve"]
)
def test_an_unreachable_database_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setenv("OVERAIR_DATABASE_URL", UNREACHABLE)
    code, out, err = run_cli(capsys, *command, "--data-dir", str(tmp_path / "data"))
    assert code == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Cannot reach the database at postgresql+psycopg://overair:***@127.0.0.1:1/overair" in err
    assert "Connection refused" in err and "OVERAIR_DATABASE_URL" in err and "s3cret" not in err


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql+pymysql://overair:s3cret@db/overair", "No module named 'pymysql'"),
        ("not a url", "Could not parse"),
    ],
)
def test_a_database_overair_cannot_use_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, named: str
) -> None:
    monkeypatch.setenv("OVERAIR_DATABASE_URL", url)
    code, _, err = run_cli(capsys, "migrate", "--data-dir", str(tmp_path / "data"))
    assert code == 1 and named in err and "overair runs on SQLite and PostgreSQL" in err, err
    assert "postgresql+psycopg://" in err and "s3cret" not in err
