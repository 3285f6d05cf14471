"""Blob store in an S3-compatible bucket (AWS S3, Ceph's radosgw, Swift's s3api, MinIO, R2 …), through boto3.

Objects live under ``<prefix>sha256/ab/<hash>``, like the folder backend. Large files go up as multipart
uploads (boto3's transfer manager, several parts at a time); an interrupted one leaves an incomplete
upload behind, which :meth:`S3BlobStore.sweep_temporary` aborts once it is old enough. Reads are ranged
GETs behind a seekable reader, so a download resuming at byte N or a zip read fetches only what it needs.
Objects are stored with ``Cache-Control: public, max-age=31536000, immutable`` (content never changes under
a key), which the bucket then sends with every download, presigned or through a CDN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from overair.storage.base import ObjectNotFound, StorageUnavailable, StoredObject
from overair.storage.keys import content_key
from overair.storage.options import S3Options
from overair.storage.scratch import Swept

IMMUTABLE = "public, max-age=31536000, immutable"
_CHUNK = 1024 * 1024
_ROUNDING = dt.timedelta(seconds=1)
_MISSING = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken"}


class _RangeReader(io.RawIOBase):
    """A seekable reader over one object: each read continues a ranged GET from the current position, and
    a seek ends it (the next read starts a new one there)."""

    def __init__(self, store: S3BlobStore, key: str, size: int) -> None:
        self._store, self._key, self._size = store, key, size
        self._position = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        target = max(0, base + offset)
        if target != self._position:
            self._drop()
            self._position = target
        return self._position

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size or len(buffer) == 0:
            return 0
        if self._body is None:
            self._body = self._store._get_range(self._key, self._position)
        with self._store._translated(self._key):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()


class S3BlobStore:
    """Content-addressed objects in ``bucket`` under ``prefix``; see the module's description."""

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.options = options
        environment = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        self.endpoint = (options.endpoint or environment).rstrip("/")
        region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.region = region or "us-east-1"
        session = boto3.session.Session(
            aws_access_key_id=options.access_key_id or None,
            aws_secret_access_key=options.secret_access_key or None,
            region_name=self.region,
        )
        config = botocore.config.Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
        )
        self._client: Any = session.client("s3", endpoint_url=self.endpoint or None, config=config)
        self._session = session
        self._transfer = boto3.s3.transfer.TransferConfig(
            multipart_threshold=options.multipart_threshold,
            multipart_chunksize=options.part_size,
            max_concurrency=4,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def where(self) -> str:
        """The bucket as an operator names it (for messages)."""
        at = f" at {self.endpoint}" if self.endpoint else ""
        return f"the object store s3://{self.bucket}/{self.prefix}{at}"

    # -- errors -------------------------------------------------------------------------------------------

    def _unavailable(self, exc: Exception) -> StorageUnavailable:
        if isinstance(
            exc, (botocore.exceptions.CredentialRetrievalError, botocore.exceptions.PartialCredentialsError)
        ):
            source = getattr(exc, "kwargs", {}).get("provider", "the configured source")
            return StorageUnavailable(
                f"{self.where()} cannot be used: its credentials could not be obtained from {source}. Check "
                "OVERAIR_S3_ACCESS_KEY_ID and OVERAIR_S3_SECRET_ACCESS_KEY (or AWS_*, ~/.aws)."
            )
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StorageUnavailable(
                f"{self.where()} cannot be used: no credentials. Set OVERAIR_S3_ACCESS_KEY_ID and "
                "OVERAIR_S3_SECRET_ACCESS_KEY (or the AWS_* environment)."
            )
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchBucket", "404", "NotFound"):  # without a key: the bucket
                return StorageUnavailable(
                    f"{self.where()} cannot be used: the bucket {self.bucket!r} does not exist. Create "
                    "it, or correct OVERAIR_BLOB_URL."
                )
            if code in _REFUSED:
                return StorageUnavailable(
                    f"{self.where()} refused the credentials ({code}). Check OVERAIR_S3_ACCESS_KEY_ID, "
                    "OVERAIR_S3_SECRET_ACCESS_KEY and the bucket's permissions."
                )
            return StorageUnavailable(f"{self.where()} answered an error: {code or exc}.")
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StorageUnavailable(
            f"{self.where()} cannot be reached ({reason}). Check OVERAIR_S3_ENDPOINT and that the server "
            "runs."
        )

    def _translated(self, key: str | None = None) -> _Translate:
        return _Translate(self, key)

    def _name(self, key: str) -> str:
        return self.prefix + key

    # -- the protocol -------------------------------------------------------------------------------------

    def put_file(self, path: Path) -> str:
        """Hash the file, then store it (multipart above the threshold) unless it is there already."""
        sha = hashlib.sha256()
        with path.open("rb") as src:
            while chunk := src.read(_CHUNK):
                sha.update(chunk)
        key = content_key(sha.hexdigest())
        if self._refresh(key):
            return key
        with self._translated():
            self._client.upload_file(
                str(path),
                self.bucket,
                self._name(key),
                ExtraArgs={"CacheControl": IMMUTABLE, "ContentType": "application/octet-stream"},
                Config=self._transfer,
            )
        return key

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (one PUT: storing it again is harmless and refreshes its time)."""
        key = content_key(hashlib.sha256(data).hexdigest())
        with self._translated():
            if len(data) >= self.options.multipart_threshold:
                self._client.upload_fileobj(
                    io.BytesIO(data),
                    self.bucket,
                    self._name(key),
                    ExtraArgs={"CacheControl": IMMUTABLE, "ContentType": "application/octet-stream"},
                    Config=self._transfer,
                )
            else:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._name(key),
                    Body=data,
                    CacheControl=IMMUTABLE,
                    ContentType="application/octet-stream",
                )
        return key

    def _refresh(self, key: str) -> bool:
        """Copy an existing object onto itself, which gives it a new modification time; False: absent."""
        if not self.exists(key):
            return False
        name = self._name(key)
        try:
            with self._translated(key):
                self._client.copy_object(
                    Bucket=self.bucket,
                    Key=name,
                    CopySource={"Bucket": self.bucket, "Key": name},
                    MetadataDirective="REPLACE",
                    CacheControl=IMMUTABLE,
                    ContentType="application/octet-stream",
                )
        except ObjectNotFound:
            return False  # deleted between the check and the copy: store it again
        return True

    def _get_range(self, key: str, first: int) -> Any:
        with self._translated(key):
            return self._client.get_object(Bucket=self.bucket, Key=self._name(key), Range=f"bytes={first}-")[
                "Body"
            ]

    def open(self, key: str) -> BinaryIO:
        """A seekable reader doing ranged GETs."""
        return io.BufferedReader(_RangeReader(self, key, self.size(key)), buffer_size=_CHUNK)

    def size(self, key: str) -> int:
        """The object's size (one HEAD)."""
        with self._translated(key):
            return int(self._client.head_object(Bucket=self.bucket, Key=self._name(key))["ContentLength"])

    def exists(self, key: str) -> bool:
        """Whether the object exists (one HEAD)."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the object (deleting an absent key succeeds)."""
        with self._translated():
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def stat(self, key: str) -> StoredObject:
        """Size and time as the bucket's listing gives them (so they equal :meth:`list_objects`'s)."""
        name = self._name(key)
        with self._translated(key):
            found = self._client.list_objects_v2(Bucket=self.bucket, Prefix=name, MaxKeys=1)
        for item in found.get("Contents", ()):
            if item["Key"] == name:
                return self._stored(item)
        raise ObjectNotFound(key)

    def _stored(self, item: dict[str, Any]) -> StoredObject:
        modified: dt.datetime = item["LastModified"]
        return StoredObject(item["Key"][len(self.prefix) :], int(item["Size"]), modified.astimezone(dt.UTC))

    def list_objects(self) -> Iterator[StoredObject]:
        """Every object under ``<prefix>sha256/``, a page of listing at a time."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "sha256/"
        )
        with self._translated():
            for page in pages:
                for item in page.get("Contents", ()):
                    yield self._stored(item)

    def sweep_temporary(self, max_age_seconds: float) -> Swept:
        """Abort incomplete multipart uploads under the prefix started more than ``max_age_seconds`` ago."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max_age_seconds)
        swept = Swept()
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        with self._translated():
            for page in pages:
                for upload in page.get("Uploads", ()):
                    # listings round times up to the second (Swift, AWS): allow that second
                    if upload["Initiated"].astimezone(dt.UTC) - _ROUNDING > cutoff:
                        continue
                    parts = self._client.list_parts(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    size = sum(int(p["Size"]) for p in parts.get("Parts", ()))
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    swept += Swept(1, size)
        return swept

    def local_path(self, key: str) -> Path | None:
        """Objects are remote: no local file."""
        return None

    def check(self) -> None:
        """Raise :class:`StorageUnavailable` unless the bucket answers with these credentials."""
        with self._translated():
            self._client.head_bucket(Bucket=self.bucket)

    # -- presigned URLs -----------------------------------------------------------------------------------

    def presigned_url(self, key: str, signed_at: dt.datetime, expires_seconds: int) -> str:
        """A SigV4 query-signed GET URL valid from ``signed_at`` for ``expires_seconds`` (at most 7 days).

        Signed here rather than by boto3 because boto3 signs at the current time: a URL signed for a given
        moment is the same for every answer built in one window, which is what lets update-check answers be
        cached (see :class:`~overair.protocols.downloads.Downloads`).
        """
        with self._translated():  # temporary credentials may need a refresh, which can fail
            credentials = self._session.get_credentials()
            if credentials is None:
                raise botocore.exceptions.NoCredentialsError()
            frozen = credentials.get_frozen_credentials()
        return presign_get(
            self.object_url(key),
            region=self.region,
            access_key_id=frozen.access_key,
            secret_access_key=frozen.secret_key,
            session_token=frozen.token,
            signed_at=signed_at,
            expires_seconds=expires_seconds,
        )

    def object_url(self, key: str) -> str:
        """The object's plain URL (path style on a configured endpoint, virtual-hosted on AWS)."""
        path = quote(self._name(key), safe="/-_.~")
        if self.endpoint:
            return f"{self.endpoint}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"


class _Translate:
    """Turns botocore's errors into :class:`ObjectNotFound` (for ``key``) or :class:`StorageUnavailable`."""

    def __init__(self, store: S3BlobStore, key: str | None) -> None:
        self._store, self._key = store, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is None or isinstance(exc, (ObjectNotFound, StorageUnavailable)):
            return
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING and self._key is not None:
                raise ObjectNotFound(self._key) from None
        if isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
            raise self._store._unavailable(exc) from exc


def presign_get(
    url: str,
    *,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
    signed_at: dt.datetime,
    expires_seconds: int,
) -> str:
    """AWS Signature Version 4 for a GET of ``url`` in the query string (S3's presigned URL)."""
    parts = urlsplit(url)
    moment = signed_at.astimezone(dt.UTC)
    stamp, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key_id}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires_seconds),
        "X-Amz-SignedHeaders": "host",
    }
    if session_token:
        query["X-Amz-Security-Token"] = session_token
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical = f"GET\n{parts.path}\n{canonical_query}\nhost:{parts.netloc}\n\nhost\nUNSIGNED-PAYLOAD"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{secret_access_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{canonical_query}&X-Amz-Signature={signature}"
