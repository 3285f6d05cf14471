"""When a release counts as failing, or as worse than the release before it (overair.metrics.rules),
table-driven: counts in, verdict out."""

from __future__ import annotations

import pytest

from overair.metrics.rules import DEFAULT_THRESHOLD, FailureThreshold, ReleaseHealth


@pytest.mark.parametrize(
    ("installs", "failures", "failing"),
    [
        (0, 0, False),  # nothing reported yet
        (100, 0, False),
        (95, 5, False),  # exactly 5%: not above it
        (94, 5, True),  # 5.05%, with 5 failures
        (1, 4, False),  # 80%, but only 4 failures: too few to say
        (0, 4, False),
        (0, 5, True),
        (19, 31, True),  # the v2: 62%
        (9, 1, False),  # one crash in ten installs
        (10_000, 499, False),
        (10_000, 600, True),
    ],
)
def test_default_threshold(installs: int, failures: int, failing: bool) -> None:
    assert DEFAULT_THRESHOLD.failing(ReleaseHealth(installs=installs, failures=failures)) is failing


@pytest.mark.parametrize(
    ("threshold", "installs", "failures", "failing"),
    [
        (FailureThreshold(rate=0.2, min_failures=1), 4, 1, False),  # 20% is not above 20%
        (FailureThreshold(rate=0.2, min_failures=1), 3, 1, True),
        (FailureThreshold(rate=0.0, min_failures=1), 999, 1, True),
        (FailureThreshold(rate=0.5, min_failures=10), 0, 9, False),
    ],
)
def test_other_thresholds(threshold: FailureThreshold, installs: int, failures: int, failing: bool) -> None:
    assert threshold.failing(ReleaseHealth(installs=installs, failures=failures)) is failing


@pytest.mark.parametrize(
    ("now", "before", "worse"),
    [
        ((90, 10), (99, 1), True),  # 10% after 1%
        ((90, 10), (80, 20), False),  # better than before
        ((90, 10), (90, 10), False),  # the same rate
        ((96, 4), (100, 0), False),  # 4 failures: too few to say
        ((95, 5), (100, 0), True),
        ((95, 5), (0, 0), False),  # the previous release has no attempt to compare with
        ((95, 5), None, False),  # no previous release
    ],
)
def test_worse_than_the_previous_release(
    now: tuple[int, int], before: tuple[int, int] | None, worse: bool
) -> None:
    health = ReleaseHealth(installs=now[0], failures=now[1])
    previous = None if before is None else ReleaseHealth(installs=before[0], failures=before[1])
    assert DEFAULT_THRESHOLD.worse(health, previous) is worse
