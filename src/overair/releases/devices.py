"""The device-side cache: what update checks need, kept in memory and dropped on every change.

Per deployment key it holds a :class:`~overair.releases.service.DeviceSnapshot` and a memo of whatever
the protocol adapters derived from it (plans, pre-encoded answers). A change made in this process drops
the entry at once (the service calls :meth:`DeviceCache.invalidate`); a change made by another worker or
host is noticed within ``recheck_seconds`` through the deployment's ``generation`` counter, which costs one
indexed read per deployment per interval, never one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread

from overair.releases.service import DeviceSnapshot, ReleaseService

V = TypeVar("V")


@dataclass(slots=True)
class _Entry:
    snapshot: DeviceSnapshot | None
    checked_at: float
    memo: dict[Hashable, Any] = field(default_factory=dict)


class DeviceCache:
    """Snapshots and derived values per deployment key."""

    def __init__(self, service: ReleaseService, recheck_seconds: float = 1.0, max_memo: int = 4096) -> None:
        self._service = service
        self._recheck = recheck_seconds
        self._max_memo = max_memo
        self._entries: dict[str, _Entry] = {}
        service.add_listener(self.invalidate)

    def invalidate(self, deployment_key: str) -> None:
        """Forget everything about a deployment (called after each committed change)."""
        self._entries.pop(deployment_key, None)

    async def _entry(self, deployment_key: str) -> _Entry:
        now = time.monotonic()
        entry = self._entries.get(deployment_key)
        if entry is not None and now - entry.checked_at <= self._recheck:
            return entry
        if entry is not None:
            entry.checked_at = now  # one revalidation at a time; others keep using the entry meanwhile
            generation = await anyio.to_thread.run_sync(self._service.generation, deployment_key)
            current = entry.snapshot.generation if entry.snapshot is not None else None
            if generation == current:
                return entry
        snapshot = await anyio.to_thread.run_sync(self._service.device_snapshot, deployment_key)
        entry = _Entry(snapshot, time.monotonic())
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[deployment_key] = entry
        return entry

    async def get(
        self, deployment_key: str, memo_key: Hashable, build: Callable[[DeviceSnapshot], V]
    ) -> V | None:
        """``build(snapshot)``, memoised per deployment and ``memo_key``; None for an unknown key."""
        entry = self._entries.get(deployment_key)
        if entry is None or time.monotonic() - entry.checked_at > self._recheck:
            entry = await self._entry(deployment_key)
        if entry.snapshot is None:
            return None
        try:
            value: V = entry.memo[memo_key]
            return value
        except KeyError:
            pass
        value = build(entry.snapshot)
        if len(entry.memo) >= self._max_memo:
            entry.memo.clear()
        entry.memo[memo_key] = value
        return value
