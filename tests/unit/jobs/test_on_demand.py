"""Asks made on the request path (overair.jobs.OnDemand): bounded, deduplicated, never a database write."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import sessionmaker

from overair.jobs import JobQueue, OnDemand, Worker


def fixed_time() -> dt.datetime:
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_asks_are_bounded_and_each_key_waits_once() -> None:
    worker = Worker(JobQueue(sessionmaker(), fixed_time), fixed_time)  # unbound: asking never reaches it
    asks = OnDemand(worker, "example.build", max_waiting=2)
    answers = [asks.ask(key, {}) for key in ("a", "a", "b", "c")]
    assert answers == [True, False, True, False]  # "a" waits already; "c" finds two waiting
