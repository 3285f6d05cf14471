"""The job worker of one server process: a thread that claims jobs from the shared queue and runs them.

Each process registers what it can do (:meth:`Worker.handle`, :meth:`Worker.every` for periodic work)
and claims only those kinds. Periodic work is queued with the period as its key, so however many hosts
run, each period's job exists once. Tests drive the worker without its thread: :meth:`Worker.run_pending`
runs what is due, :meth:`Worker.drain` waits until nothing due is left.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from overair.errors import DATABASE_DOWN, note_outage
from overair.jobs.queue import ERROR_LENGTH, ClaimedJob, JobQueue
from overair.jobs.rules import JobState

log = logging.getLogger("overair")

Handler = Callable[[Mapping[str, Any]], object]
"""Does one job, given its payload; raising fails the try (it is retried after a backoff)."""

POLL_SECONDS = 1.0
"""How often an idle worker looks for work queued by other hosts (its own wakes it at once)."""
KEEP_FINISHED = dt.timedelta(days=7)
"""Finished jobs stay listed this long (``jobs.prune``, hourly)."""
PRUNE_JOBS = "jobs.prune"


def period_key(now: dt.datetime, period: dt.timedelta) -> str:
    """The start of the period ``now`` falls in, as the key of that period's job (the same on every host)."""
    seconds = period.total_seconds()
    start = int(now.timestamp() // seconds * seconds)
    return dt.datetime.fromtimestamp(start, dt.UTC).isoformat()


def describe_failure(exc: BaseException) -> str:
    """What an operator is shown of a failed try: the error's type and message, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:ERROR_LENGTH] if text else type(exc).__name__


class Worker:
    """Runs the jobs this process knows how to do; one thread per process (:meth:`start`, :meth:`stop`)."""

    def __init__(
        self, queue: JobQueue, clock: Callable[[], dt.datetime], poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.queue = queue
        self._clock = clock
        self._poll = poll_seconds
        self._handlers: dict[str, Handler] = {}
        self._periodic: dict[str, tuple[dt.timedelta, str | None]] = {}
        self._before_claiming: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._running: dict[int, ClaimedJob] = {}
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self.every(PRUNE_JOBS, dt.timedelta(hours=1), lambda _payload: self._prune_finished())

    # -- what this process does ---------------------------------------------------------------------

    def handle(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for jobs of ``kind``."""
        self._handlers[kind] = handler

    def every(self, kind: str, period: dt.timedelta, handler: Handler) -> None:
        """Run ``handler`` once per ``period`` across all hosts (the job of a period is queued once)."""
        self.handle(kind, handler)
        self._periodic[kind] = (period, None)

    def before_claiming(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` before each round of claims (e.g. to queue work held in memory)."""
        self._before_claiming.append(callback)

    def enqueue(
        self, kind: str, key: str, payload: Mapping[str, Any] | None = None, *, session: Session | None = None
    ) -> bool:
        """Queue a job (once per kind and key, across hosts) and wake this process's worker; with a
        ``session``, in its transaction, and the worker is woken once that commits."""
        queued = self.queue.enqueue(kind, key, payload, session=session)
        if session is None:
            self.wake()
        else:
            event.listen(session, "after_commit", lambda _session: self.wake(), once=True)
        return queued

    def wake(self) -> None:
        """Have the worker thread look for work now instead of at its next poll."""
        self._wake.set()

    # -- running ------------------------------------------------------------------------------------

    def run_pending(self, limit: int | None = None) -> int:
        """Run the jobs that are due, in this thread, until none is left (or ``limit`` ran); how many."""
        return self._run_due(limit, stoppable=False)

    def _run_due(self, limit: int | None, *, stoppable: bool) -> int:
        self._prepare()
        ran = 0
        while limit is None or ran < limit:
            if stoppable and self._stopping.is_set():
                break
            job = self.queue.claim(self._handlers)
            if job is None:
                break
            self._run(job)
            ran += 1
        return ran

    def _prepare(self) -> None:
        for callback in self._before_claiming:
            callback()
        now = self._clock()
        for kind, (period, last) in list(self._periodic.items()):
            key = period_key(now, period)
            if key != last:
                self.queue.enqueue(kind, key, {"period": key})
                self._periodic[kind] = (period, key)

    def _run(self, job: ClaimedJob) -> None:
        with self._lock:
            self._running[job.id] = job
        try:
            self._handlers[job.kind](job.payload)
        except Exception as exc:  # a job's failure is recorded and retried, never the worker's end
            state = self.queue.fail(job, describe_failure(exc))
            if state is JobState.FAILED:
                log.error("job %s %s failed for good: %s", job.kind, job.key, describe_failure(exc))
            else:
                log.warning(
                    "job %s %s failed (try %d), tried again later",
                    job.kind,
                    job.key,
                    job.attempts,
                    exc_info=exc,
                )
        else:
            self.queue.complete(job)
        finally:
            with self._changed:
                self._running.pop(job.id, None)
                self._changed.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Run and wait for the jobs due now, and those they queue, until none is left; False if
        ``timeout`` (seconds) passed first. Jobs waiting out a backoff, or held by other hosts, are not
        waited for."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.run_pending()
            if self.queue.outstanding(self._handlers) == 0:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            with self._changed:  # the worker thread holds a job: wait for it to finish
                self._changed.wait(0.05 if left is None else min(0.05, left))

    # -- the thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="overair-jobs", daemon=True)
        self._thread.start()
        self._heartbeat = threading.Thread(target=self._renew_loop, name="overair-jobs-leases", daemon=True)
        self._heartbeat.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._run_due(None, stoppable=True)
            except DATABASE_DOWN as exc:  # away for a moment: one line, and a look again at the next poll
                note_outage(exc)
            except Exception:  # look again at the next poll
                log.exception("claiming background jobs failed; trying again in %g s", self._poll)
            self._wake.wait(self._poll)

    def renew_leases(self) -> int:
        """Extend the leases of the jobs this process is running; how many it still held."""
        with self._lock:
            running = list(self._running.values())
        return self.queue.renew(running)

    def _renew_loop(self) -> None:
        every = self.queue.lease.total_seconds() / 3
        while not self._stopping.wait(every):
            try:
                self.renew_leases()
            except DATABASE_DOWN as exc:  # away for a moment; the lease has time left
                note_outage(exc)
            except Exception:  # the lease has time left
                log.exception("renewing the leases of running jobs failed; trying again in %g s", every)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop claiming; wait up to ``timeout`` seconds for the job in hand, then give it back to the
        queue (another host, or the next start, runs it). True if the thread ended in time."""
        thread, heartbeat = self._thread, self._heartbeat
        self._stopping.set()
        self._wake.set()
        if thread is None:
            return True
        thread.join(timeout)
        if heartbeat is not None:
            heartbeat.join(1.0)  # it wakes on the stop at once
        self._thread = self._heartbeat = None
        if not thread.is_alive():
            return True
        with self._lock:
            unfinished = list(self._running.values())
        for job in unfinished:
            self.queue.release(job)
            log.warning("stopping: job %s %s given back to the queue unfinished", job.kind, job.key)
        return False

    def _prune_finished(self) -> None:
        pruned = self.queue.prune(KEEP_FINISHED)
        if pruned:
            log.info("removed %d finished jobs older than %s", pruned, KEEP_FINISHED)
