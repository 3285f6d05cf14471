"""A server killed mid-publish leaves temporary files in its own folder, and a restart sweeps them."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import bundle, publish
from overair.app import OverairApp, create_app
from overair.config import Settings
from overair.server import prepare

HOUR = 3600


def age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    for folder, folders, files in os.walk(path, topdown=False):
        for name in folders + files:
            os.utime(Path(folder) / name, (moment, moment))
    os.utime(path, (moment, moment))


def test_uploads_and_extracted_bundles_are_written_under_the_data_folder(
    api: TestClient,
    server: OverairApp,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    blobs = server.state.blobs
    stored_from: list[Path] = []
    original = blobs.put_file

    def recording_put_file(path: Path) -> str:
        stored_from.append(path)
        return original(path)

    monkeypatch.setattr(blobs, "put_file", recording_put_file)
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
    assert publish(api, content=bundle("v1")).status_code == 201
    assert publish(api, content=bundle("v2")).status_code == 201
    server.state.releases.drain()  # the diff archive is built in the background

    scratch = (settings.data_dir / "tmp").resolve()
    assert stored_from and all(path.is_relative_to(scratch) for path in stored_from), stored_from
    names = {path.relative_to(scratch).parts[0].split("-")[1] for path in stored_from}
    assert names == {"upload", "files", "diff"}  # the upload, its extracted files, a diff archive
    assert list(system_tmp.iterdir()) == [] and list(scratch.iterdir()) == []


def killed_publish(settings: Settings, seconds_ago: float, name: str) -> list[Path]:
    """What ``kill -9`` during a publish leaves: the upload, a half-extracted bundle, a partial blob."""
    scratch, blob_tmp = settings.data_dir / "tmp", settings.data_dir / "blobs" / "tmp"
    upload = scratch / f"overair-upload-{name}.zip"
    upload.write_bytes(b"PK" + b"\0" * 4000)
    extracted = scratch / f"overair-files-{name}"
    (extracted / "bundle" / "assets").mkdir(parents=True)
    (extracted / "bundle" / "index.js").write_bytes(b"render()" * 100)
    partial = blob_tmp / f"tmp{name}"
    partial.write_bytes(b"\1" * 2000)
    for path in (upload, extracted, partial):
        age(path, seconds_ago)
    return [upload, extracted, partial]


@pytest.mark.parametrize("restart", ["create_app", "prepare"])
def test_a_restart_sweeps_stale_temporary_files_and_keeps_fresh_ones(
    settings: Settings,
    restart: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_app(settings)  # the server that will be killed
    stale = killed_publish(settings, 2 * HOUR, "old")
    fresh = killed_publish(settings, 5, "new")  # another worker's publish in progress

    with caplog.at_level(logging.WARNING, logger="overair"):
        if restart == "create_app":
            create_app(settings)
        else:
            prepare(settings)
    said = caplog.text if restart == "create_app" else capsys.readouterr().out
    assert "Removed 3 temporary files or folders (6.8 kB) left by an interrupted upload or a crash" in said
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in fresh)


def test_the_age_is_a_setting(settings: Settings) -> None:
    create_app(settings)
    stale = killed_publish(settings, 10 * 60, "ten-minutes")
    create_app(settings)
    assert all(path.exists() for path in stale)  # younger than the default hour
    create_app(settings.model_copy(update={"temp_max_age_minutes": 5}))
    assert not any(path.exists() for path in stale)


def test_the_temporary_folder_is_private_and_created_at_start(settings: Settings) -> None:
    scratch = settings.data_dir / "tmp"
    assert not scratch.exists()
    create_app(settings)
    assert scratch.is_dir() and scratch.stat().st_mode & 0o077 == 0
