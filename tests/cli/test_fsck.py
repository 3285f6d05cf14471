"""`overair fsck` as an operator runs it: against a server's data folder, with its exit status."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import ON_POSTGRES, bundle, publish, run_cli
from overair.app import OverairApp
from overair.config import Settings
from overair.storage import content_key

DAY = 86400


@pytest.fixture
def published(api: TestClient, server: OverairApp) -> TestClient:
    """CoolApp with two releases in Production (so a diff archive and a delta exist) and one promoted."""
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    for text in ("Welcome", "Welcome back"):
        assert publish(api, content=bundle(text)).status_code == 201
    server.state.releases.drain()
    promotion = {"source": "Production", "destination": "Staging"}
    promoted = api.post("/api/v1/apps/CoolApp/promote", json=promotion)
    assert promoted.status_code == 201, promoted.text
    return api


def fsck(capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "fsck", "--data-dir", str(settings.data_dir), *args)


def blob_file(settings: Settings, key: str) -> Path:
    return settings.data_dir / "blobs" / key


def age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def file_key(api: TestClient, label: str, path: str) -> str:
    manifest = api.get(f"/api/v1/apps/CoolApp/deployments/Production/releases/{label}/manifest").json()
    return content_key(next(e["sha256"] for e in manifest if e["path"] == path))


def test_a_healthy_server_is_consistent(
    published: TestClient, server: OverairApp, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = fsck(capsys, settings)
    assert code == 0, out
    assert "Checked 3 releases, 2 packages" in out and "Everything is consistent." in out
    assert "Hashing" in err  # progress goes to stderr, the report to stdout

    code, out, _ = fsck(capsys, settings, "--json")
    document = json.loads(out)
    assert code == 0 and document["ok"] and document["problems"] == [] and document["unreferenced"] == []
    # archives, manifests, files, the diff archive and the delta: everything stored is referenced
    stored = sum(1 for _ in server.state.blobs.list_objects())
    assert document["checked"]["blobs"] == stored


def test_an_orphaned_blob_is_reported_and_removed_only_with_the_flag_once_old(
    published: TestClient, server: OverairApp, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # a publish killed after storing its content and before recording its release leaves blobs behind
    orphan = server.state.blobs.put_bytes(b"the archive of a publish that never finished" * 1000)
    age(blob_file(settings, orphan), 2 * DAY)
    in_flight = server.state.blobs.put_bytes(b"a publish on another host, storing right now")

    code, out, _ = fsck(capsys, settings)
    assert code == 3, out
    assert orphan in out and in_flight in out and "2 unreferenced blobs" in out
    assert "overair fsck --remove-unreferenced" in out
    assert blob_file(settings, orphan).exists()  # reporting removes nothing

    code, out, _ = fsck(capsys, settings, "--remove-unreferenced")
    assert code == 3, out  # the young one is kept: it may still become a release
    assert "Removed 1 unreferenced blob" in out and "stored in the last 24 hours" in out
    assert not blob_file(settings, orphan).exists() and blob_file(settings, in_flight).exists()

    code, out, _ = fsck(capsys, settings, "--remove-unreferenced", "--grace-hours", "0", "--json")
    document = json.loads(out)
    assert code == 0 and document["ok"] and document["removal"]["removed"] == 1
    assert document["unreferenced"] == [{**document["unreferenced"][0], "key": in_flight, "removed": True}]
    assert fsck(capsys, settings)[0] == 0  # and nothing a release needs was taken


def test_a_corrupted_blob_fails_the_check_and_names_the_release(
    published: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = file_key(published, "v1", "index.js")  # only v1 has this content
    blob_file(settings, damaged).write_bytes(b"bit rot")

    code, out, _ = fsck(capsys, settings)
    assert code == 1, out
    assert f"DAMAGED {damaged}" in out and "file index.js of package" in out
    assert "Breaks: CoolApp/Production v1" in out and "Production v2" not in out
    assert str(blob_file(settings, damaged)) in out and "backup" in out
    assert 'overair release patch-update --project-name "CoolApp" --deployment "Production" --label v1' in out

    code, out, _ = fsck(capsys, settings, "--json")
    [problem] = json.loads(out)["problems"]
    assert code == 1 and problem["problem"] == "corrupt" and problem["key"] == damaged
    assert problem["releases"] == [{"app": "CoolApp", "deployment": "Production", "label": "v1"}]


def test_a_missing_blob_fails_the_check_and_blocks_removal(
    published: TestClient, server: OverairApp, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = file_key(published, "v2", "styles/main.css")  # in every release
    blob_file(settings, shared).unlink()
    orphan = server.state.blobs.put_bytes(b"left over")
    age(blob_file(settings, orphan), 2 * DAY)

    code, out, _ = fsck(capsys, settings, "--remove-unreferenced")
    assert code == 1, out
    assert f"MISSING {shared}" in out
    assert "CoolApp/Production v1, CoolApp/Production v2, CoolApp/Staging v1" in out
    assert "not removed: some referenced blobs are missing" in out
    assert blob_file(settings, orphan).exists()  # a wrong blob folder must never be emptied


def test_long_runs_report_progress_while_hashing(published: TestClient, server: OverairApp) -> None:
    from overair.db import make_sessionmaker
    from overair.maintenance.fsck import check

    lines: list[str] = []
    report = check(make_sessionmaker(server.state.engine), server.state.blobs, lines.append, progress_every=0)
    assert not report.findings and not report.unreferenced
    assert lines[0] == "Reading the database…" and any(line.startswith("Hashing ") for line in lines)
    assert lines[-1].endswith("(100%)") and "blobs hashed" in lines[-1]


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite file of a data folder; PostgreSQL: the test below")
def test_a_folder_without_a_database_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "fsck", "--data-dir", str(tmp_path / "nothing"))
    assert code == 1 and "no overair database" in err and "OVERAIR_DATA_DIR" in err
    assert not (tmp_path / "nothing").exists()  # the check creates nothing


def test_a_database_overair_never_started_on_is_explained(
    tmp_path: Path,
    another_database: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = another_database(empty=True)
    if not ON_POSTGRES:
        Path(url.removeprefix("sqlite:///")).touch()  # a file, but no overair tables in it
    monkeypatch.setenv("OVERAIR_DATABASE_URL", url)
    code, _, err = run_cli(capsys, "fsck", "--data-dir", str(tmp_path / "data"))
    assert code == 1 and "has no package_deltas, package_diffs, packages, releases table" in err, err
    assert "not an overair database, or the server never started on it" in err
