"""How ``overair audit`` reads its times and shows an event's subject and change (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from overair.cli.audit import change, moment, subject
from overair.cli.errors import CliError

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("90m", "2026-12-05T10:30:00+00:00"),
        ("24h", "2026-12-04T12:00:00+00:00"),
        ("7d", "2026-11-28T12:00:00+00:00"),
        ("2w", "2026-11-21T12:00:00+00:00"),
        ("2026-12-01", "2026-12-01T00:00:00+00:00"),
        ("2026-12-01T10:00", "2026-12-01T10:00:00+00:00"),
        ("2026-12-01T10:00+02:00", "2026-12-01T10:00:00+02:00"),
        ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00+00:00"),
    ],
)
def test_times_are_dates_times_or_how_long_ago(given: str, sent: str) -> None:
    assert moment(given, "--since", NOW) == sent


@pytest.mark.parametrize("given", ["yesterday", "7 days", "-1d", "", "12y"])
def test_anything_else_is_refused_with_the_forms_it_takes(given: str) -> None:
    with pytest.raises(CliError, match="like 90m, 24h, 7d or 2w"):
        moment(given, "--since", NOW)


@pytest.mark.parametrize(
    ("event", "where", "what"),
    [
        (
            {
                "app": "CoolApp",
                "deployment": "Staging",
                "label": "v3",
                "before": {"rollout": 20},
                "after": {"rollout": 50},
            },
            "CoolApp/Staging v3",
            "rollout: 20 → 50",
        ),
        (
            {"app": "CoolApp", "item": "1.0.0", "before": {}, "after": {"descriptor": {"format": 1}}},
            "CoolApp 1.0.0",
            'descriptor: {"format": 1}',
        ),
        (
            {"item": "ci", "before": {"name": "ci", "expires_at": None}, "after": {}},
            "ci",
            'name: "ci"; expires_at: null',
        ),
        ({"app": "CoolApp", "before": {}, "after": {}}, "CoolApp", "-"),
    ],
)
def test_an_events_subject_and_change_in_one_line_each(event: dict, where: str, what: str) -> None:
    assert (subject(event), change(event)) == (where, what)
