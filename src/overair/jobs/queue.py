"""The job queue over the ``jobs`` table: queue once, claim under a lease, finish, or fail and wait.

Every host runs the same statements, so the database decides who does what:

- :meth:`JobQueue.enqueue` is an ``INSERT … ON CONFLICT DO NOTHING`` on (kind, key): the same work asked
  for by many hosts, or many times, is one row.
- :meth:`JobQueue.claim` is one ``UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …``. On PostgreSQL the
  inner ``SELECT`` takes ``FOR UPDATE SKIP LOCKED``, so hosts claiming at once each get a different job and
  never wait on each other; SQLite runs the statement under its single write lock. A claim holds a lease
  until ``lease_expires_at``, renewed while the job runs (:meth:`JobQueue.renew`): a job whose host crashed
  is claimed again once its lease ran out.
- :meth:`JobQueue.fail` sets the job back to ``queued`` after the backoff of :func:`~overair.jobs.rules.
  retry_delay`, or to ``failed`` for good after the last attempt; its error stays visible.

Completing and failing only change a job the caller still holds (its lease was not taken over).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from overair.auth.principal import Action, Principal
from overair.db import Clock, dialect_insert, precise_now
from overair.errors import Invalid
from overair.jobs.models import KEY_LENGTH, KIND_LENGTH, Job
from overair.jobs.rules import MAX_ATTEMPTS, JobState, retry_delay
from overair.jobs.schemas import JobOut

LEASE = dt.timedelta(minutes=10)
"""How long a claimed job is its host's alone; past it, another host may claim the job again."""
ERROR_LENGTH = 2000
MAX_LISTED = 500

_jobs = cast(Table, Job.__table__)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this host holds: what to do, and the how-many-th try this is."""

    id: int
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int


def host_identity() -> str:
    """A name for this process among the hosts: host name, process id and a random part (two queues in
    one process, as tests build them, are two owners)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobQueue:
    """Queue, claim, complete and fail jobs in the ``jobs`` table (see the module's documentation)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock = precise_now,
        *,
        owner: str | None = None,
        lease: dt.timedelta = LEASE,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.owner = owner or host_identity()
        self.lease = lease
        self.max_attempts = max_attempts

    # -- queuing and claiming -----------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        key: str,
        payload: Mapping[str, Any] | None = None,
        *,
        delay: dt.timedelta = dt.timedelta(),
        session: Session | None = None,
    ) -> bool:
        """Queue ``kind`` work named ``key`` (to run after ``delay``); False when that (kind, key) exists
        already, in any state: the work is queued, running, done or given up, and is not queued twice.

        Given a ``session`` in a transaction, the job is queued in that transaction: it exists if and only
        if the change that asked for it was committed (nothing is lost between the two)."""
        if not 0 < len(kind) <= KIND_LENGTH or not 0 < len(key) <= KEY_LENGTH:
            raise ValueError(f"a job's kind and key are 1 to {KIND_LENGTH} and {KEY_LENGTH} characters")
        if session is not None:
            return self._insert(session, kind, key, payload, delay)
        with self._sessions() as own, own.begin():
            return self._insert(own, kind, key, payload, delay)

    def _insert(
        self,
        session: Session,
        kind: str,
        key: str,
        payload: Mapping[str, Any] | None,
        delay: dt.timedelta,
    ) -> bool:
        now = self._clock()
        connection = session.connection()
        statement = (
            dialect_insert(connection)(Job)
            .values(
                kind=kind,
                key=key,
                payload=dict(payload or {}),
                state=JobState.QUEUED.value,
                attempts=0,
                run_after=now + delay,
                last_error="",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["kind", "key"])
            .returning(_jobs.c.id)  # a row only when inserted (psycopg's rowcount is no help here)
        )
        return connection.execute(statement).first() is not None

    def claim(self, kinds: Collection[str]) -> ClaimedJob | None:
        """Take the next job of one of ``kinds`` that is due, or whose last host's lease ran out; None when
        there is none. A job that used up its attempts on hosts that stopped with it is marked failed."""
        if not kinds:
            return None
        while True:
            now = self._clock()
            inner = _jobs.alias("candidate")
            candidate = (
                select(inner.c.id)
                .where(
                    inner.c.kind.in_(sorted(kinds)),
                    or_(
                        and_(inner.c.state == JobState.QUEUED.value, inner.c.run_after <= now),
                        and_(inner.c.state == JobState.RUNNING.value, inner.c.lease_expires_at < now),
                    ),
                )
                .order_by(inner.c.run_after, inner.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            statement = (
                update(_jobs)
                .where(_jobs.c.id == candidate)
                .values(
                    state=JobState.RUNNING.value,
                    attempts=_jobs.c.attempts + 1,
                    lease_owner=self.owner,
                    lease_expires_at=now + self.lease,
                )
                .returning(_jobs.c.id, _jobs.c.kind, _jobs.c.key, _jobs.c.payload, _jobs.c.attempts)
            )
            with self._sessions() as session, session.begin():
                row = session.connection().execute(statement).first()
            if row is None:
                return None
            job = ClaimedJob(row.id, row.kind, row.key, dict(row.payload or {}), row.attempts)
            if job.attempts <= self.max_attempts:
                return job
            # only a crashed host's job gets here (a failing one stops at its last attempt): this claim
            # was no try, and the job has failed
            self._change(
                job,
                state=JobState.FAILED.value,
                attempts=_jobs.c.attempts - 1,
                last_error=f"the hosts running it stopped before it finished, {self.max_attempts} times",
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )

    def complete(self, job: ClaimedJob) -> bool:
        """Mark a held job done; False if this host no longer held it (its lease was taken over)."""
        return self._finish(job, state=JobState.DONE, last_error="")

    def fail(self, job: ClaimedJob, error: str) -> JobState | None:
        """Record ``error`` for a held job: queued again after its backoff, or failed after its last
        attempt. Returns the new state (None: this host no longer held the job)."""
        delay = retry_delay(job.attempts, self.max_attempts)
        if delay is None:
            done = self._finish(job, state=JobState.FAILED, last_error=error)
            return JobState.FAILED if done else None
        now = self._clock()
        done = self._change(
            job,
            state=JobState.QUEUED.value,
            run_after=now + delay,
            last_error=error[:ERROR_LENGTH],
            lease_owner=None,
            lease_expires_at=None,
        )
        return JobState.QUEUED if done else None

    def release(self, job: ClaimedJob) -> bool:
        """Give a held job back unfinished (this host stops): due again at once, the try not counted."""
        return self._change(
            job,
            state=JobState.QUEUED.value,
            attempts=_jobs.c.attempts - 1,
            run_after=self._clock(),
            lease_owner=None,
            lease_expires_at=None,
        )

    def renew(self, jobs: Collection[ClaimedJob]) -> int:
        """Extend the leases of held jobs that are still running (a long job is not claimed by another
        host while this one lives); how many this host still held."""
        if not jobs:
            return 0
        statement = (
            update(_jobs)
            .where(
                _jobs.c.id.in_([job.id for job in jobs]),
                _jobs.c.state == JobState.RUNNING.value,
                _jobs.c.lease_owner == self.owner,
            )
            .values(lease_expires_at=self._clock() + self.lease)
        )
        with self._sessions() as session, session.begin():
            return int(session.connection().execute(statement).rowcount)

    def _finish(self, job: ClaimedJob, *, state: JobState, last_error: str) -> bool:
        return self._change(
            job,
            state=state.value,
            last_error=last_error[:ERROR_LENGTH],
            finished_at=self._clock(),
            lease_owner=None,
            lease_expires_at=None,
        )

    def _change(self, job: ClaimedJob, **values: Any) -> bool:
        statement = (
            update(_jobs)
            .where(
                _jobs.c.id == job.id,
                _jobs.c.state == JobState.RUNNING.value,
                _jobs.c.lease_owner == self.owner,
            )
            .values(**values)
        )
        with self._sessions() as session, session.begin():
            return bool(session.connection().execute(statement).rowcount == 1)

    # -- waiting, listing and pruning ---------------------------------------------------------------

    def outstanding(self, kinds: Collection[str]) -> int:
        """Jobs of ``kinds`` due now or held by this host: what waiting for the queue waits for (a job
        waiting out its backoff, or held by another host, is not)."""
        now = self._clock()
        with self._sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(_jobs)
                .where(
                    _jobs.c.kind.in_(sorted(kinds)),
                    or_(
                        and_(_jobs.c.state == JobState.QUEUED.value, _jobs.c.run_after <= now),
                        and_(_jobs.c.state == JobState.RUNNING.value, _jobs.c.lease_owner == self.owner),
                        and_(_jobs.c.state == JobState.RUNNING.value, _jobs.c.lease_expires_at < now),
                    ),
                )
            )
        return int(count or 0)

    def recent(self, actor: Principal, *, state: str | None = None, limit: int = 50) -> list[JobOut]:
        """The newest jobs first (of one ``state``, if given), at most ``limit`` of them."""
        actor.require(Action.OPERATE_SERVER)
        if state is not None and state not in {s.value for s in JobState}:
            raise Invalid(
                f"There is no job state {state!r}: a job is one of "
                + ", ".join(s.value for s in JobState)
                + ".",
                subject={"state": state},
            )
        if not 1 <= limit <= MAX_LISTED:
            raise Invalid(f"limit must be from 1 to {MAX_LISTED}.", subject={"limit": str(limit)})
        query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        if state is not None:
            query = query.where(Job.state == state)
        with self._sessions() as session:
            return [JobOut.model_validate(j, from_attributes=True) for j in session.scalars(query)]

    def prune(self, keep: dt.timedelta) -> int:
        """Delete jobs finished (done or failed) longer than ``keep`` ago; how many. The same work may then be
        queued again: a job that failed for good is tried anew when it is next asked for."""
        cutoff = self._clock() - keep
        with self._sessions() as session, session.begin():
            result = session.connection().execute(
                delete(_jobs).where(
                    _jobs.c.state.in_([JobState.DONE.value, JobState.FAILED.value]),
                    _jobs.c.finished_at < cutoff,
                )
            )
        return int(result.rowcount)
