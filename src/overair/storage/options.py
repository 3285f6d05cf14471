"""Settings of the S3 backend, apart from it so that naming them does not load boto3."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where and as whom to reach the bucket; empty fields fall back to the standard ``AWS_*`` environment
    (and boto3's other credential sources: ``~/.aws``, instance roles)."""

    endpoint: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    multipart_threshold: int = 16 * 1024 * 1024
    part_size: int = 16 * 1024 * 1024
