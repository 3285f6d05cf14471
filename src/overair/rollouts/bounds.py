"""Confidence bounds on failure rates: the Wilson score interval of one release's rate, and Newcombe's
interval for the difference between two releases' rates, built from the two Wilson intervals.

Both take the counts of :class:`overair.metrics.rules.ReleaseHealth` (failures out of install attempts),
so every bound is about the one failure rate everyone is shown. Pure: numbers in, numbers out.

``confidence`` is one-sided throughout: a lower bound at 0.95 is a value the true rate lies above with 95%
confidence (z = 1.645). The lower and upper bound at the same ``confidence`` together form a two-sided
interval at ``2 * confidence - 1`` (0.975 gives the textbook 95% interval, z = 1.96).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from overair.metrics.rules import ReleaseHealth


def z_score(confidence: float) -> float:
    """The standard normal quantile for a one-sided ``confidence`` (0.95 → 1.645, 0.975 → 1.960).

    Raises ``ValueError`` outside 0 < confidence < 1.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"a confidence is between 0 and 1 exclusive, not {confidence}")
    return NormalDist().inv_cdf(confidence)


@dataclass(frozen=True, slots=True)
class Bounds:
    """A rate's lower and upper confidence bound."""

    lower: float
    upper: float


def wilson(health: ReleaseHealth, confidence: float) -> Bounds:
    """The Wilson score bounds of ``health``'s failure rate at the one-sided ``confidence``.

    The Wilson interval keeps its promised coverage at the counts a rollout's first step sees (a handful
    of failures in tens of attempts), where the normal approximation's interval does not and even leaves
    [0, 1]. With no attempt the bounds are the whole range [0, 1]: nothing is known. 0 failures give a
    lower bound of exactly 0, failures on every attempt an upper bound of exactly 1.

    >>> b = wilson(ReleaseHealth(installs=9, failures=1), 0.975)
    >>> (round(b.lower, 4), round(b.upper, 4))
    (0.0179, 0.4042)
    """
    n = health.attempts
    if n == 0:
        return Bounds(0.0, 1.0)
    z = z_score(confidence)
    p = health.failures / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    lower = 0.0 if health.failures == 0 else max(0.0, centre - half)
    upper = 1.0 if health.failures == n else min(1.0, centre + half)
    return Bounds(lower, upper)


def difference_lower_bound(release: ReleaseHealth, previous: ReleaseHealth, confidence: float) -> float:
    """How much higher ``release``'s failure rate is than ``previous``'s at least, at the one-sided
    ``confidence``: the lower bound of (rate of release - rate of previous).

    Newcombe's hybrid score method ("method 10", Statistics in Medicine 17, 1998): the point difference
    minus the root of the sum of squares of each rate's distance to the Wilson bound that pulls the
    difference down (this release's lower, the previous release's upper). A negative value means the
    release may well be no worse at all. Either release without an attempt gives -1.0 (nothing is known).

    >>> round(difference_lower_bound(ReleaseHealth(14, 56), ReleaseHealth(32, 48), 0.975), 4)
    0.0524
    """
    if not release.measured or not previous.measured:
        return -1.0
    p1, p2 = release.failure_rate, previous.failure_rate
    lower1 = wilson(release, confidence).lower
    upper2 = wilson(previous, confidence).upper
    return (p1 - p2) - math.sqrt((p1 - lower1) ** 2 + (upper2 - p2) ** 2)
