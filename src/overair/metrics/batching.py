"""Accepted device reports wait in memory and are written in batches by a flusher thread.

A report route answers as soon as its report is in the buffer; the flusher writes everything waiting every
``interval`` seconds, or at once when ``batch_size`` reports wait, in one transaction (off the event loop).
What a crash loses is bounded by that: the reports accepted since the last flush, at most one interval's
or one batch's worth (more only while the database is down, see below).

When a flush fails (the database is down), its reports go back to the front of the queue and the next
flush tries again. Memory stays bounded: beyond ``max_pending`` waiting reports the oldest are dropped and
counted (:attr:`ReportBuffer.dropped`, shown by ``/metrics``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("overair")

T = TypeVar("T")


class ReportBuffer(Generic[T]):
    """Items in, batches out to ``apply`` on a thread of its own (started with the first item).

    ``after_flush`` is called after a flush in which some ``apply`` did not return False (False: the batch
    changed nothing that work after a flush reads).
    """

    def __init__(
        self,
        apply: Callable[[Sequence[T]], bool | None],
        *,
        interval: float = 1.0,
        batch_size: int = 1000,
        max_pending: int = 100_000,
        after_flush: Callable[[], None] | None = None,
    ) -> None:
        self._apply = apply
        self._interval = interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._after_flush = after_flush
        self._pending: deque[T] = deque()
        self._lock = threading.Lock()  # guards the queue
        self._flushing = threading.Lock()  # one flush at a time, so batches are applied in order
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failing = False
        self.dropped = 0
        """Reports dropped because too many waited while the database was unreachable."""

    @property
    def pending(self) -> int:
        """How many accepted reports wait for a flush."""
        return len(self._pending)

    def add(self, item: T) -> None:
        """Accept an item; it is written by the next flush."""
        with self._lock:
            self._pending.append(item)
            self._trim()
            full = len(self._pending) >= self._batch_size
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="overair-reports", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def _trim(self) -> None:
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1

    def flush(self) -> int:
        """Write everything accepted before the call now; the number of items written.

        Raises what ``apply`` raised (the items stay queued, in order, for the next flush).
        """
        written = 0
        changed = False
        with self._flushing:
            left = len(self._pending)  # what was accepted before the call: a busy stream cannot hold it up
            while left > 0:
                with self._lock:
                    count = min(self._batch_size, left, len(self._pending))
                    batch = [self._pending.popleft() for _ in range(count)]
                if not batch:
                    break
                left -= len(batch)
                try:
                    changed = self._apply(batch) is not False or changed
                except BaseException:
                    with self._lock:
                        self._pending.extendleft(reversed(batch))
                        self._trim()
                    raise
                written += len(batch)
        if written and changed and self._after_flush is not None:
            self._after_flush()
        return written

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.flush()
            except Exception as exc:  # the database is down: keep the reports, try again next interval
                if not self._failing:
                    log.warning(
                        "device reports could not be written (%s); retrying every %ss", exc, self._interval
                    )
                self._failing = True
            else:
                if self._failing:
                    log.warning("device reports are written again")
                self._failing = False

    def close(self, timeout: float = 10.0) -> None:
        """Stop the flusher and write what is waiting, trying for at most ``timeout`` seconds."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            try:
                self.flush()
            except Exception as exc:
                log.warning("device reports could not be written at shutdown (%s)", exc)
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if self._pending:
            log.warning("%d device reports were not written before shutdown", len(self._pending))
