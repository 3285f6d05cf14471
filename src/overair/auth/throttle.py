"""Failed sign-ins are slowed down per client address, so guessing keys costs time.

A small, documented budget: an address may fail :data:`FAILURES` times within :data:`WINDOW`; further
attempts from it are refused with :class:`TooManyAttempts` (HTTP 429 with ``Retry-After``) until the
oldest failure leaves the window. A success does not reset the count (a guesser holding one valid key
would otherwise clear it). Only key checks count: device routes never authenticate, so they are never
throttled.

The counts live in each server process: behind N processes an address gets N times the budget before
every process refuses it. That bounds guessing all the same (keys carry 256 bits), and keeps the check
free of a database write per failure.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from overair.errors import ErrorKind, OverairError

FAILURES = 10
"""Failed key checks an address may make within :data:`WINDOW` seconds."""
WINDOW = 60.0
MAX_ADDRESSES = 10_000
"""Addresses remembered at most; the least recently failing are forgotten first."""


class TooManyAttempts(OverairError):
    """Too many failed key checks from one address: wait before trying again."""

    kind = ErrorKind.THROTTLED

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many attempts with wrong access keys from this address: try again in {retry_after} s."
        )
        self.retry_after: int | None = retry_after


class FailureThrottle:
    """Counts failed key checks per client address in a sliding window."""

    def __init__(
        self,
        failures: int = FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` if ``address`` used up its budget (None: not throttled)."""
        if address is None:
            return
        with self._lock:
            times = self._recent(address)
            if times is not None and len(times) >= self._failures:
                wait = times[0] + self._window - self._clock()
                raise TooManyAttempts(max(1, math.ceil(wait)))

    def failed(self, address: str | None) -> None:
        """Count a failed key check from ``address``."""
        if address is None:
            return
        with self._lock:
            times = self._recent(address) or deque()
            times.append(self._clock())
            self._seen.pop(address, None)
            self._seen[address] = times  # most recent last, so the oldest are forgotten first
            while len(self._seen) > MAX_ADDRESSES:
                self._seen.pop(next(iter(self._seen)))

    def _recent(self, address: str) -> deque[float] | None:
        times = self._seen.get(address)
        if times is None:
            return None
        cutoff = self._clock() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        return times
