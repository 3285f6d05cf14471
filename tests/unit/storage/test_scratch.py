"""Sweeping temporary leftovers: stale entries go, anything still being written stays."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import anyio
import pytest
from starlette.datastructures import UploadFile

from overair.storage import Swept, remove_stale, spool

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


class TooLarge(Exception):
    pass


def test_an_upload_is_spooled_into_the_folder(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)  # more than one read
    path = anyio.run(spool, UploadFile(io.BytesIO(data)), tmp_path, "overair-upload-", len(data), TooLarge)
    assert path.parent == tmp_path and path.name.startswith("overair-upload-")
    assert path.read_bytes() == data


def test_an_upload_over_the_limit_stops_and_leaves_nothing(tmp_path: Path) -> None:
    """The declared size can lie: the copy itself stops at the limit and removes what it wrote."""
    data = b"x" * (2 * 1024 * 1024)
    with pytest.raises(TooLarge):
        anyio.run(spool, UploadFile(io.BytesIO(data)), tmp_path, "overair-upload-", 1024 * 1024, TooLarge)
    assert list(tmp_path.iterdir()) == []
