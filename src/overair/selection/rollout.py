"""Rollout buckets: which devices are inside a partial rollout.

A device falls in bucket 0-99 for a given release tag and is inside a rollout of ``p`` percent when its
bucket is below ``p``. The bucket is a pure function of (client id, tag), so a device keeps its answer
across checks, and raising the percentage only ever adds devices (monotonic rollouts).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable

from overair.selection.types import RolloutHash


def js_rollout_hash(text: str) -> int:
    """The CodePush reference server's string hash, bit for bit.

    ``h = (h << 5) - h + c`` over UTF-16 code units, where JavaScript's ``<<`` truncates ``h`` to int32 but
    the sum is not truncated again, so the result may leave the int32 range (a quirk real clients observe).
    """
    units: Iterable[int]
    if text.isascii():
        units = text.encode("ascii")
    else:
        native = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"  # cast("H") reads native order
        units = memoryview(text.encode(native, "surrogatepass")).cast("H")
    h = 0
    for unit in units:
        # (h << 5) keeps only h's low 27 bits in its low 32, so one mask equals JS's two int32 conversions
        shifted = (h << 5) & 0xFFFFFFFF
        if shifted & 0x80000000:
            shifted -= 0x100000000
        h = shifted - h + unit
    return h


def rollout_bucket(client_id: str, tag: str, method: RolloutHash = RolloutHash.NATIVE) -> int:
    """The device's bucket (0-99) for the release identified by ``tag`` (its label)."""
    if method is RolloutHash.EXPO:
        client_id = client_id.lower()
    identifier = f"{client_id}-{tag}"
    if method is RolloutHash.CODEPUSH:
        return abs(js_rollout_hash(identifier)) % 100
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def in_rollout(client_id: str, percentage: int, tag: str, method: RolloutHash = RolloutHash.NATIVE) -> bool:
    """True when the device is among the ``percentage`` percent that get the release ``tag``."""
    return rollout_bucket(client_id, tag, method) < percentage
