"""Sweeping temporary leftovers: stale entries go, anything still being written stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from overair.storage import Swept, remove_stale

pytestmark = pytest.mark.no_database

HOUR = 3600.0


def age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def test_stale_files_and_folders_go_fresh_ones_stay(tmp_path: Path) -> None:
    old_upload = tmp_path / "overair-upload-1.zip"
    old_upload.write_bytes(b"x" * 1000)
    age(old_upload, 2 * HOUR)
    old_extract = tmp_path / "overair-files-1"
    (old_extract / "bundle" / "assets").mkdir(parents=True)
    (old_extract / "bundle" / "assets" / "a.png").write_bytes(b"y" * 50)
    for path in (
        old_extract / "bundle" / "assets" / "a.png",
        old_extract / "bundle" / "assets",
        old_extract / "bundle",
        old_extract,
    ):
        age(path, 3 * HOUR)
    busy_extract = tmp_path / "overair-files-2"  # an old folder another worker is still writing into
    (busy_extract / "bundle").mkdir(parents=True)
    age(busy_extract, 3 * HOUR)
    (busy_extract / "bundle" / "index.js").write_bytes(b"fresh")
    fresh_upload = tmp_path / "overair-upload-2.zip"
    fresh_upload.write_bytes(b"arriving")

    assert remove_stale(tmp_path, HOUR) == Swept(2, 1050)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overair-files-2", "overair-upload-2.zip"]
    assert remove_stale(tmp_path, HOUR) == Swept()


def test_a_missing_folder_sweeps_nothing(tmp_path: Path) -> None:
    assert remove_stale(tmp_path / "absent", HOUR) == Swept()
    assert not Swept() and Swept(1, 0) and Swept(1, 2) + Swept(3, 4) == Swept(4, 6)
