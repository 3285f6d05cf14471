"""What the console reads from the metrics store: the contract of ``overair.metrics.service``.

The console depends on this protocol, not on the store, so the composition root decides what it gets:
``MetricsService`` when the server has one, or ``None`` (then the charts that need hourly data say so and
the per-release totals are drawn from the release counters).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol


class HourlyPointLike(Protocol):
    """One label's counts in one hour (``overair.metrics.service.HourlyPoint``)."""

    @property
    def hour(self) -> dt.datetime: ...
    @property
    def label(self) -> str: ...
    @property
    def downloads(self) -> int: ...
    @property
    def installs(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def rollbacks(self) -> int: ...
    @property
    def active(self) -> int: ...


class MetricsReader(Protocol):
    """The read side of the metrics store that the console's charts use."""

    def series(
        self, app: str, deployment: str, hours: int = 48, now: dt.datetime | None = None
    ) -> Sequence[HourlyPointLike]:
        """Hourly points of every label of the deployment over the last ``hours`` hours."""
        ...

    def active_devices(self, app: str, deployment: str) -> Mapping[str, int]:
        """Label -> devices running it now."""
        ...

    def last_failures(self, app: str, deployment: str) -> Mapping[str, tuple[str, dt.datetime | None]]:
        """Label -> the reason its last failure report gave, and when."""
        ...
