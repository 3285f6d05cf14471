"""One background thread whose queued jobs can be waited for (by tests and orderly shutdowns)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait


class BackgroundJobs:
    """Runs jobs one at a time on a named thread, never in the caller's request."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self.closed = False

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; False once :meth:`close` was called (the job is dropped)."""
        if self.closed:
            return False
        future = self._executor.submit(job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return True

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the jobs queued so far, and any they queue meanwhile, are done (or ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = set(self._pending)
            if not pending:
                return
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait(pending, timeout=left)
            if deadline is not None and time.monotonic() >= deadline:
                return

    def close(self) -> None:
        """Finish the queued jobs and stop the thread."""
        self.closed = True
        self._executor.shutdown(wait=True)
