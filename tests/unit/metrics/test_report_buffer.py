"""The report buffer: batches in order, kept when the database is down, bounded memory, counted drops."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from overair.metrics.batching import ReportBuffer


class Database:
    """Where batches land; ``down`` makes a write fail as an unreachable database does."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.down = False

    def apply(self, batch: Sequence[int]) -> None:
        if self.down:
            raise ConnectionError("connection refused")
        self.batches.append(list(batch))


def test_a_flush_writes_in_order_in_batches_of_the_batch_size() -> None:
    database = Database()
    buffer = ReportBuffer(database.apply, interval=3600, batch_size=4)
    for n in range(10):
        buffer.add(n)
    buffer.flush()
    # the flusher thread may have taken the first full batch already; either way, in order, at most 4
    assert [n for batch in database.batches for n in batch] == list(range(10)) and buffer.pending == 0
    assert all(len(batch) <= 4 for batch in database.batches)
    buffer.close()


def test_reports_wait_while_the_database_is_down_and_the_oldest_beyond_the_cap_are_dropped() -> None:
    database = Database()
    flushed: list[int] = []
    buffer = ReportBuffer(
        database.apply, interval=3600, batch_size=1000, max_pending=5, after_flush=lambda: flushed.append(1)
    )
    database.down = True
    for n in range(3):
        buffer.add(n)
    with pytest.raises(ConnectionError):
        buffer.flush()
    assert buffer.pending == 3 and buffer.dropped == 0  # kept for the next try
    for n in range(3, 8):
        buffer.add(n)
    assert buffer.pending == 5 and buffer.dropped == 3
    database.down = False
    assert buffer.flush() == 5
    assert database.batches == [[3, 4, 5, 6, 7]] and flushed == [1]
    buffer.close()


def test_closing_writes_what_waits() -> None:
    database = Database()
    buffer = ReportBuffer(database.apply, interval=3600, batch_size=1000)
    buffer.add(1)
    buffer.close(timeout=5)
    assert database.batches == [[1]]


def test_after_flush_follows_only_batches_that_changed_something() -> None:
    """Touches (an update check saw a device) change no count: nothing for after_flush to look at."""
    flushed: list[int] = []
    buffer = ReportBuffer(lambda batch: any(batch), interval=3600, after_flush=lambda: flushed.append(1))
    buffer.add(0)
    assert buffer.flush() == 1 and flushed == []
    buffer.add(1)
    assert buffer.flush() == 1 and flushed == [1]
    buffer.close()
