"""The device-side cache: what update checks need, kept in memory and dropped on every change.

Per deployment key it holds a :class:`~overair.releases.snapshots.DeviceSnapshot` and a memo of whatever
the protocol adapters derived from it (plans, pre-encoded answers). A change made in this process drops
the entry at once (the service calls :meth:`DeviceCache.invalidate`); a change made by another worker or
host is noticed within ``recheck_seconds`` through the deployment's ``generation`` counter, which costs one
indexed read per deployment per interval, never one per request.

While the database does not answer, an entry is kept and served as it is, and a deployment nothing is known
of raises :class:`~overair.errors.DatabaseDown` (the adapters answer "no update"); after a failure the
database is not asked again for ``OUTAGE_PAUSE_SECONDS``, so a storm of checks does not queue behind
connection attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread

from overair.errors import DATABASE_DOWN, DatabaseDown
from overair.releases.snapshots import DeviceSnapshot, DeviceSnapshots

V = TypeVar("V")

OUTAGE_PAUSE_SECONDS = 2.0


@dataclass(slots=True)
class _Entry:
    snapshot: DeviceSnapshot | None
    checked_at: float
    memo: dict[Hashable, Any] = field(default_factory=dict)


class DeviceCache:
    """Snapshots and derived values per deployment key."""

    def __init__(self, service: DeviceSnapshots, recheck_seconds: float = 1.0, max_memo: int = 4096) -> None:
        self._service = service
        self._recheck = recheck_seconds
        self._max_memo = max_memo
        self._entries: dict[str, _Entry] = {}
        self._unknown: dict[str, _Entry] = {}  # keys nobody has: remembered apart, so they cannot evict
        self._epochs: dict[str, int] = {}
        self._loading: dict[str, anyio.Event] = {}
        self._down_until = 0.0
        service.add_listener(self.invalidate)

    def invalidate(self, deployment_key: str) -> None:
        """Forget everything about a deployment (called after each committed change)."""
        self._epochs[deployment_key] = self._epochs.get(deployment_key, 0) + 1
        self._entries.pop(deployment_key, None)
        self._unknown.pop(deployment_key, None)

    async def _load(self, deployment_key: str) -> _Entry:
        # One read per deployment at a time: after a change, every device asking at that moment waits for
        # the same read instead of each starting its own (a storm of identical queries under load).
        while (loading := self._loading.get(deployment_key)) is not None:
            await loading.wait()
            entry = self._cached(deployment_key)
            if entry is not None:
                return entry
        done = self._loading[deployment_key] = anyio.Event()
        try:
            return await self._read(deployment_key)
        finally:
            del self._loading[deployment_key]
            done.set()

    async def _read(self, deployment_key: str) -> _Entry:
        # A change committed while the snapshot was being read invalidates it: read again rather than
        # keep a stale snapshot until the next recheck.
        if time.monotonic() < self._down_until:
            raise DatabaseDown()
        for _ in range(3):
            epoch = self._epochs.get(deployment_key, 0)
            try:
                snapshot = await anyio.to_thread.run_sync(self._service.device_snapshot, deployment_key)
            except DATABASE_DOWN as exc:
                self._down_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
                raise DatabaseDown() from exc
            if self._epochs.get(deployment_key, 0) == epoch:
                break
        entry = _Entry(snapshot, time.monotonic())
        if snapshot is None:
            if len(self._unknown) >= 10_000:
                self._unknown.clear()
            self._unknown[deployment_key] = entry
        else:
            self._entries[deployment_key] = entry
        return entry

    def _cached(self, deployment_key: str) -> _Entry | None:
        return self._entries.get(deployment_key) or self._unknown.get(deployment_key)

    async def _entry(self, deployment_key: str) -> _Entry:
        now = time.monotonic()
        entry = self._cached(deployment_key)
        if entry is not None and now - entry.checked_at <= self._recheck:
            return entry
        if entry is not None:
            entry.checked_at = now  # one revalidation at a time; others keep using the entry meanwhile
            if now < self._down_until:
                return entry  # the last answer known stands until the database answers again
            try:
                generation = await anyio.to_thread.run_sync(self._service.generation, deployment_key)
            except DATABASE_DOWN:
                self._down_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
                return entry
            current = entry.snapshot.generation if entry.snapshot is not None else None
            if generation == current:
                return entry
        return await self._load(deployment_key)

    async def get(
        self, deployment_key: str, memo_key: Hashable, build: Callable[[DeviceSnapshot], V]
    ) -> V | None:
        """``build(snapshot)``, memoised per deployment and ``memo_key``; None for an unknown key."""
        entry = self._cached(deployment_key)
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
