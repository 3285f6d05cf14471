"""What device protocols remember having told the metrics from update checks."""

from __future__ import annotations

import datetime as dt

from overair.protocols.facts import RecordedFacts

START = dt.datetime(2026, 12, 6, 9, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def test_what_a_device_runs_is_told_at_each_move_and_again_once_the_period_is_over() -> None:
    clock = Clock()
    facts = RecordedFacts(clock, dt.timedelta(hours=12))
    assert facts.running_is_new("a", "u1")
    facts.told_running("a", "u1")
    assert not facts.running_is_new("a", "u1")
    assert not facts.news("a", "u1", frozenset())
    assert facts.running_is_new("a", "embedded")  # a move
    facts.told_running("a", "embedded")
    assert facts.running_is_new("a", "u1")  # and back: the latest value is what counts
    facts.told_running("a", "u1")
    clock.now += dt.timedelta(hours=12)
    assert facts.running_is_new("a", "u1")  # told again, well within active_days


def test_a_failure_is_told_once_whatever_the_time() -> None:
    clock = Clock()
    facts = RecordedFacts(clock, dt.timedelta(hours=12))
    assert facts.news("a", "", frozenset({"u2"}))
    facts.told_failure("a", "u2")
    clock.now += dt.timedelta(days=30)
    assert not facts.failure_is_new("a", "u2")
    assert not facts.news("a", "", frozenset({"u2"}))
    assert facts.failure_is_new("b", "u2")


def test_nothing_is_remembered_until_it_is_told() -> None:
    facts = RecordedFacts(Clock(), dt.timedelta(days=1))
    assert facts.running_is_new("a", "u1") and facts.running_is_new("a", "u1")
    assert facts.failure_is_new("a", "u2") and facts.failure_is_new("a", "u2")
