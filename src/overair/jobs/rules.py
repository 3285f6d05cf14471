"""When a failed job is tried again: exponential backoff, a cap on the delay and on the attempts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

MAX_ATTEMPTS = 5
"""A job that failed this many times stays ``failed`` (and visible) instead of being tried again."""
FIRST_DELAY = dt.timedelta(seconds=30)
MAX_DELAY = dt.timedelta(hours=1)


class JobState(StrEnum):
    """Where a job is: waiting (maybe for its backoff), claimed by a host, finished, or given up."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def retry_delay(attempts: int, max_attempts: int = MAX_ATTEMPTS) -> dt.timedelta | None:
    """How long a job that has failed its ``attempts``-th try waits before the next one: 30 s, then twice
    as long each time up to an hour; None once ``attempts`` reached ``max_attempts`` (the job has failed)."""
    if attempts < 1:
        raise ValueError(f"attempts counts the tries made, from 1; got {attempts}")
    if attempts >= max_attempts:
        return None
    return min(FIRST_DELAY * (1 << (attempts - 1)), MAX_DELAY)
