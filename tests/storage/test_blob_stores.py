"""One contract suite run against every blob store backend."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from overair.storage import BlobStore, ObjectNotFound, content_key, digest_of, open_blob_store


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
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
