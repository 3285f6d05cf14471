"""How ``overair jobs`` shows a job's age."""

from __future__ import annotations

import datetime as dt

import pytest

from overair.cli.jobs import age

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("created_at", "shown"),
    [
        ("2026-12-05T12:00:00Z", "0 s"),
        ("2026-12-05T11:59:15+00:00", "45 s"),
        ("2026-12-05T11:59:00", "1 min"),  # no zone: UTC, as the server stores times
        ("2026-12-05T10:59:59Z", "1 h"),
        ("2026-12-03T11:00:00Z", "2 d"),
        ("2026-12-05T12:05:00Z", "0 s"),  # a server clock ahead of ours: never a negative age
        ("yesterday", "yesterday"),  # not a time: shown as it came
    ],
)
def test_age(created_at: str, shown: str) -> None:
    assert age(created_at, NOW) == shown
