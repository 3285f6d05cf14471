"""One contract suite run against every blob store backend."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from pathlib import Path

import pytest

from overair.storage import BlobStore, ObjectNotFound, S3Options, content_key, digest_of, open_blob_store

pytestmark = pytest.mark.no_database


def s3_store(settings: dict[str, str], **sizes: int) -> BlobStore:
    """The S3 backend on the test server, as ``OVERAIR_*`` settings name it."""
    options = S3Options(
        settings["s3_endpoint"],
        settings["s3_region"],
        settings["s3_access_key_id"],
        settings["s3_secret_access_key"],
        **sizes,
    )
    return open_blob_store(settings["blob_url"], options)


@pytest.fixture(params=["file", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "s3":
        return s3_store(request.getfixturevalue("s3_settings"))
    url = (tmp_path / "blobs").as_uri() if request.param == "file" else "memory://"
    return open_blob_store(url)


def test_put_is_content_addressed_and_idempotent(store: BlobStore, tmp_path: Path) -> None:
    data = b"bundle bytes"
    key = store.put_bytes(data)
    assert key == content_key(hashlib.sha256(data).hexdigest())
    assert digest_of(key) == hashlib.sha256(data).hexdigest()
    source = tmp_path / "file.bin"
    source.write_bytes(data)
    assert store.put_file(source) == key
    assert store.exists(key) and store.size(key) == len(data)
    with store.open(key) as stream:
        assert stream.read() == data


def test_missing_objects_raise_one_neutral_error(store: BlobStore) -> None:
    key = content_key("0" * 64)
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.open(key)
    with pytest.raises(ObjectNotFound):
        store.size(key)
    store.delete(key)  # deleting what is not there is fine


def test_delete(store: BlobStore) -> None:
    key = store.put_bytes(b"x")
    store.delete(key)
    assert not store.exists(key)


def test_list_objects_names_every_object_with_its_size_and_time(store: BlobStore) -> None:
    assert list(store.list_objects()) == []
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    keys = {store.put_bytes(b"one"), store.put_bytes(b"three"), store.put_bytes(b"one")}
    listed = {o.key: o for o in store.list_objects()}
    assert set(listed) == keys
    for key, found in listed.items():
        assert found.size == store.size(key) and found == store.stat(key)
        assert before <= found.modified <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    store.delete(next(iter(keys)))
    assert len(list(store.list_objects())) == 1


def test_stat_of_a_missing_object_raises_the_neutral_error(store: BlobStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.stat(content_key("0" * 64))


def test_storing_existing_content_again_refreshes_its_time(store: BlobStore, tmp_path: Path) -> None:
    """A sweep of unreferenced objects goes by age: content a publish stores again must look new."""
    key = store.put_bytes(b"shared content")
    local = store.local_path(key)
    if local is not None:  # age it as a real store ages
        old = time.time() - 7 * 86400
        os.utime(local, (old, old))
    # S3 listings give times to the second: there, storing again must move the time to the next second
    wait = 1.05 if type(store).__name__ == "S3BlobStore" else 0.01
    first = store.stat(key).modified
    time.sleep(wait)
    source = tmp_path / "same.bin"
    source.write_bytes(b"shared content")
    assert store.put_file(source) == key
    assert store.stat(key).modified > first
    again = store.stat(key).modified
    time.sleep(wait)
    store.put_bytes(b"shared content")
    assert store.stat(key).modified > again


def test_sweeping_temporary_files_of_an_empty_store_removes_nothing(store: BlobStore) -> None:
    store.put_bytes(b"kept")
    assert not store.sweep_temporary(0)
    assert len(list(store.list_objects())) == 1


def test_filesystem_store_sweeps_stale_partial_writes_and_keeps_fresh_ones(tmp_path: Path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    key = store.put_bytes(b"committed")
    stale, fresh = tmp_path / "blobs" / "tmp" / "tmpa1b2c3", tmp_path / "blobs" / "tmp" / "overair-blob-x"
    stale.write_bytes(b"partial" * 100)  # what a process killed mid-write leaves
    fresh.write_bytes(b"being written")  # another worker's write in progress
    old = time.time() - 7200
    os.utime(stale, (old, old))
    swept = store.sweep_temporary(3600)
    assert (swept.entries, swept.bytes) == (1, 700)
    assert not stale.exists() and fresh.exists() and store.exists(key)
    assert [o.key for o in store.list_objects()] == [key]  # partial writes are never listed


def test_filesystem_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    for i in range(5):
        store.put_bytes(f"object {i}".encode())
        store.put_bytes(f"object {i}".encode())
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    assert store.local_path(store.put_bytes(b"y")) is not None


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "sha256/zz/nothex"])
def test_keys_cannot_escape_the_store(tmp_path: Path, key: str) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.open(key)


def test_unknown_url_scheme_is_explained() -> None:
    with pytest.raises(ValueError, match="file:///"):
        open_blob_store("ftp://example/blobs")


def test_content_key_rejects_non_digests() -> None:
    with pytest.raises(ValueError):
        content_key("abc")
