"""The access-key rules, one table each (overair.auth.rules)."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import refusal_code
from overair.auth import rules

NOON = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("actor_expires", "wanted", "expected"),
    [
        (None, None, "ok"),
        (None, NOON + 1000 * HOUR, "ok"),
        (NOON, NOON - HOUR, "ok"),
        (NOON, NOON, "ok"),
        (NOON, NOON + dt.timedelta(seconds=1), "key-outlives-creator"),
        (NOON, NOON + 1000 * 24 * 365 * HOUR, "key-outlives-creator"),
        (NOON, None, "key-outlives-creator"),
    ],
)
def test_a_key_never_outlives_the_key_that_made_or_extended_it(
    actor_expires: dt.datetime | None, wanted: dt.datetime | None, expected: str
) -> None:
    assert refusal_code(lambda: rules.check_expiry("ci", actor_expires, wanted)) == expected


@pytest.mark.parametrize(
    ("target_id", "actor_creator", "expected"),
    [(1, None, "ok"), (1, 2, "ok"), (1, 1, "creator-key")],
)
def test_a_key_cannot_revoke_its_creator(target_id: int, actor_creator: int | None, expected: str) -> None:
    assert refusal_code(lambda: rules.check_not_creator("admin", target_id, actor_creator)) == expected


@pytest.mark.parametrize(
    ("target_lasts", "lasting", "expected"),
    [
        (True, 2, "ok"),
        (True, 1, "last-key-manager"),
        (False, 1, "ok"),  # an expiring key goes anyway; a lasting one remains
        (False, 0, "ok"),
        (True, 0, "last-key-manager"),
    ],
)
def test_the_last_lasting_key_manager_stays(target_lasts: bool, lasting: int, expected: str) -> None:
    assert refusal_code(lambda: rules.check_keeps_a_manager("admin", target_lasts, lasting)) == expected
