"""Facts that device protocols learn from update checks and tell the metrics, each once: what a device
runs, and (Expo) which updates failed on it. A check is not a report, and a device checks in far more often
than it changes; remembering what was told keeps the checks of a returning fleet free of metrics work."""

from __future__ import annotations

import datetime as dt

from overair.db import Clock

_LIMIT = 100_000
"""Devices (or failures) remembered per process; forgotten all at once when full."""


class RecordedFacts:
    """What this process has already told the metrics from update checks (an Expo client repeats its
    headers on every check, and each fact must count once; a CodePush check names the label it runs).

    A failure is remembered for good (bounded: forgotten all at once when full), since counting it again
    would inflate the failure rate. What each device runs is remembered as its latest value, and only for
    ``remember_running``: a device that moves (to an update, back to its embedded one) is recorded at each
    move, and one that keeps checking in is recorded again after that time, so it is never expired as
    silent (``active_days``) while the process lives. A fact is remembered once the metrics took it, so a
    database outage loses nothing: the next check tells it again.
    """

    def __init__(self, clock: Clock, remember_running: dt.timedelta) -> None:
        self._clock = clock
        self._remember_running = remember_running
        self._failures: set[tuple[str, str]] = set()
        self._running: dict[str, str] = {}
        self._running_until: dt.datetime | None = None

    def news(self, client_id: str, running: str, failed: frozenset[str]) -> bool:
        """Whether a check may say something not recorded yet: that the device runs ``running`` (an update
        id, or the deployment key for the binary's own update; "" for nothing) or that ``failed`` failed.
        Answered from memory, before any await: a fleet's checks are mostly from devices recorded already."""
        if running and self.running_is_new(client_id, running):
            return True
        return bool(failed) and any((client_id, update_id) not in self._failures for update_id in failed)

    def failure_is_new(self, client_id: str, update_id: str) -> bool:
        """Whether the device's failure of ``update_id`` is not recorded yet."""
        return (client_id, update_id) not in self._failures

    def running_is_new(self, client_id: str, what: str) -> bool:
        """Whether the device running ``what`` is not what this process last recorded (recently)."""
        now = self._clock()
        if self._running_until is None or now >= self._running_until:
            self._running.clear()
            self._running_until = now + self._remember_running
        return self._running.get(client_id) != what

    def told_failure(self, client_id: str, update_id: str) -> None:
        """The metrics took the device's failure of ``update_id``."""
        if len(self._failures) >= _LIMIT:
            self._failures.clear()
        self._failures.add((client_id, update_id))

    def told_running(self, client_id: str, what: str) -> None:
        """The metrics took that the device runs ``what``."""
        if len(self._running) >= _LIMIT and client_id not in self._running:
            self._running.clear()
        self._running[client_id] = what
