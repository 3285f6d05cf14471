"""The backoff rule: when a failed job is tried again, and when it has failed for good."""

from __future__ import annotations

import datetime as dt

import pytest

from overair.jobs.rules import MAX_ATTEMPTS, retry_delay
from overair.jobs.worker import describe_failure, period_key

S = dt.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "delay"),
    [
        (1, 5, 30 * S),  # the first failure: half a minute
        (2, 5, 60 * S),  # then twice as long each time
        (3, 5, 120 * S),
        (4, 5, 240 * S),
        (5, 5, None),  # the last attempt failed: the job has failed for good
        (6, 5, None),
        (1, 1, None),  # one attempt allowed: no retry
        (7, 20, 1920 * S),
        (8, 20, 3600 * S),  # capped at an hour
        (19, 20, 3600 * S),
        (20, 20, None),
    ],
)
def test_retry_delay(attempts: int, max_attempts: int, delay: dt.timedelta | None) -> None:
    assert retry_delay(attempts, max_attempts) == delay


def test_five_attempts_by_default() -> None:
    assert MAX_ATTEMPTS == 5
    assert [retry_delay(n) for n in range(1, 6)] == [30 * S, 60 * S, 120 * S, 240 * S, None]


@pytest.mark.parametrize("attempts", [0, -1])
def test_attempts_count_from_one(attempts: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(attempts)


T = dt.datetime(2026, 12, 5, 18, 59, 59, tzinfo=dt.UTC)
EAST = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("now", "period", "key"),
    [
        (T, dt.timedelta(hours=1), "2026-12-05T18:00:00+00:00"),
        (T + S, dt.timedelta(hours=1), "2026-12-05T19:00:00+00:00"),  # the next hour: the next job
        (T, dt.timedelta(days=1), "2026-12-05T00:00:00+00:00"),
        (T.astimezone(EAST), dt.timedelta(hours=1), "2026-12-05T18:00:00+00:00"),  # the zone changes nothing
        (T, dt.timedelta(minutes=15), "2026-12-05T18:45:00+00:00"),
    ],
)
def test_a_periodic_job_is_keyed_by_the_period_it_runs_in(
    now: dt.datetime, period: dt.timedelta, key: str
) -> None:
    assert period_key(now, period) == key


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValueError("bad\n  value"), "ValueError: bad value"),
        (KeyError("blob"), "KeyError: 'blob'"),
        (RuntimeError(), "RuntimeError"),
        (OSError("x" * 3000), "OSError: " + "x" * 1991),
    ],
)
def test_a_failure_is_shown_on_one_line(error: Exception, shown: str) -> None:
    assert describe_failure(error) == shown
