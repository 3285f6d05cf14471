"""What only the S3 backend does, against the real S3-compatible server the tests start (Swift's s3api):
multipart uploads, ranged reads, sweeping abandoned uploads, presigned URLs, clear errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import httpx
import pytest
from test_blob_stores import s3_store

from overair.storage import S3Options, StorageUnavailable, content_key, open_blob_store
from overair.storage.s3 import S3BlobStore

pytestmark = pytest.mark.no_database

MIB = 1024 * 1024


@pytest.fixture
def s3(s3_settings: dict[str, str]) -> S3BlobStore:
    store = s3_store(s3_settings, multipart_threshold=5 * MIB, part_size=5 * MIB)
    assert isinstance(store, S3BlobStore)
    return store


def test_large_files_go_up_in_parts_and_read_back_by_range(s3: S3BlobStore, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB + 123)
    source = tmp_path / "big.zip"
    source.write_bytes(data)
    key = s3.put_file(source)
    assert key == content_key(hashlib.sha256(data).hexdigest())
    assert s3.local_path(key) is None  # remote: overair never hands out a local file
    head = s3._client.head_object(Bucket=s3.bucket, Key=s3._name(key))
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of an object assembled from three parts
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    with s3.open(key) as stream:
        stream.seek(7 * MIB)
        assert stream.read(1000) == data[7 * MIB : 7 * MIB + 1000]
        stream.seek(-10, io.SEEK_END)
        assert stream.read() == data[-10:]
        stream.seek(0)
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(data).digest()
    assert s3.put_file(source) == key  # stored again: one object still
    assert [o.key for o in s3.list_objects()] == [key]


def test_sweep_aborts_abandoned_multipart_uploads_only_when_old(s3: S3BlobStore) -> None:
    name = s3._name(content_key("a" * 64))
    upload = s3._client.create_multipart_upload(Bucket=s3.bucket, Key=name)
    s3._client.upload_part(
        Bucket=s3.bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1000
    )
    assert not s3.sweep_temporary(3600)  # another host's upload in progress: kept
    swept = s3.sweep_temporary(0)
    assert (swept.entries, swept.bytes) == (1, 1000)
    left = s3._client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.prefix)
    assert not left.get("Uploads")


def test_presigned_urls_download_until_they_expire(s3: S3BlobStore) -> None:
    key = s3.put_bytes(b"bundle bytes")
    now = dt.datetime.now(dt.UTC)
    fresh = httpx.get(s3.presigned_url(key, now - dt.timedelta(seconds=3000), 3600))
    assert fresh.status_code == 200 and fresh.content == b"bundle bytes"
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    ranged = httpx.get(s3.presigned_url(key, now, 60), headers={"Range": "bytes=7-"})
    assert (ranged.status_code, ranged.content) == (206, b"bytes")
    expired = httpx.get(s3.presigned_url(key, now - dt.timedelta(seconds=120), 60))
    assert expired.status_code == 403


def _one_line(exc: pytest.ExceptionInfo[StorageUnavailable]) -> str:
    message = exc.value.message
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_unreachable_endpoint_is_one_clear_line(s3_settings: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = s3_store({**s3_settings, "s3_endpoint": f"http://127.0.0.1:{port}"})
    assert isinstance(store, S3BlobStore)
    with pytest.raises(StorageUnavailable) as exc:
        store.check()
    assert "cannot be reached" in _one_line(exc) and "OVERAIR_S3_ENDPOINT" in exc.value.message
    with pytest.raises(StorageUnavailable):
        store.put_bytes(b"x")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"s3_secret_access_key": "wrong"}, "refused the credentials"),
        ({"blob_url": "s3://no-such-bucket/x"}, "does not exist"),
    ],
)
def test_wrong_credentials_or_bucket_are_one_clear_line(
    s3_settings: dict[str, str], change: dict[str, str], words: str
) -> None:
    store = s3_store({**s3_settings, **change})
    assert isinstance(store, S3BlobStore)
    with pytest.raises(StorageUnavailable) as exc:
        store.check()
    assert words in _one_line(exc)
    with pytest.raises(StorageUnavailable):
        list(store.list_objects())


def test_a_url_without_bucket_is_explained() -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_blob_store("s3:///prefix")


def test_credentials_fall_back_to_the_aws_environment(
    s3_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_settings["s3_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_settings["s3_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", s3_settings["s3_region"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_settings["s3_endpoint"])
    store = open_blob_store(s3_settings["blob_url"], S3Options())
    key = store.put_bytes(b"via AWS_*")
    assert store.exists(key)


def test_presigning_matches_the_aws_reference_example() -> None:
    """AWS's documented example of a presigned GET (Signature Version 4, query parameters)."""
    from overair.storage.s3 import presign_get

    url = presign_get(
        "https://examplebucket.s3.amazonaws.com/test.txt",
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token=None,
        signed_at=dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
        expires_seconds=86400,
    )
    assert url.endswith("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
