"""The confidence bounds the rollout gates use (overair.rollouts.bounds), against values computed another
way here (the score test solved by bisection, closed forms at the edges) and published ones."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import pytest

from overair.metrics.rules import ReleaseHealth
from overair.rollouts.bounds import Bounds, difference_lower_bound, wilson, z_score


def health(failures: int, attempts: int) -> ReleaseHealth:
    return ReleaseHealth(installs=attempts - failures, failures=failures)


def score_bounds(failures: int, attempts: int, z: float) -> tuple[float, float]:
    """The Wilson interval from its definition: the rates p the score test does not reject,
    |p_hat - p| <= z * sqrt(p (1 - p) / n), found by bisection on each side of p_hat."""
    p_hat = failures / attempts

    def rejected(p: float) -> bool:
        return abs(p_hat - p) > z * math.sqrt(p * (1 - p) / attempts)

    def edge(inside: float, outside: float) -> float:
        if not rejected(outside):
            return outside
        for _ in range(200):
            middle = (inside + outside) / 2
            inside, outside = (inside, middle) if rejected(middle) else (middle, outside)
        return (inside + outside) / 2

    return edge(p_hat, 0.0), edge(p_hat, 1.0)


@pytest.mark.parametrize(
    ("confidence", "z"),
    [
        (0.5, 0.0),
        (0.8, 0.8416),
        (0.9, 1.2816),
        (0.95, 1.6449),
        (0.975, 1.9600),
        (0.99, 2.3263),
        (0.995, 2.5758),
    ],
)
def test_z_is_the_one_sided_normal_quantile(confidence: float, z: float) -> None:
    assert z_score(confidence) == pytest.approx(z, abs=1e-4)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.1, 1.5])
def test_z_refuses_a_confidence_outside_0_and_1(confidence: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_score(confidence)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.975, 0.99, 0.999])
@pytest.mark.parametrize(
    ("failures", "attempts"),
    [(0, 1), (1, 1), (0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (1, 2), (5, 40), (3, 1000), (50, 10_000)],
)
def test_wilson_solves_the_score_test(failures: int, attempts: int, confidence: float) -> None:
    lower, upper = score_bounds(failures, attempts, NormalDist().inv_cdf(confidence))
    bounds = wilson(health(failures, attempts), confidence)
    assert bounds.lower == pytest.approx(lower, abs=1e-9)
    assert bounds.upper == pytest.approx(upper, abs=1e-9)


@pytest.mark.parametrize(
    ("failures", "attempts", "lower", "upper"),
    [  # 95% two-sided Wilson intervals published by Newcombe (Statistics in Medicine 17, 1998, table I)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (1, 10, 0.0179, 0.4042),
        (0, 10, 0.0, 0.2775),
    ],
)
def test_wilson_matches_published_intervals(failures: int, attempts: int, lower: float, upper: float) -> None:
    bounds = wilson(health(failures, attempts), 0.975)  # one-sided 0.975 on each side: 95% two-sided
    assert (round(bounds.lower, 4), round(bounds.upper, 4)) == (lower, upper)


@pytest.mark.parametrize("attempts", [1, 2, 3, 10, 50, 1000])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_wilson_at_the_edges(attempts: int, confidence: float) -> None:
    """0 of n: the lower bound is exactly 0 and the upper z²/(n+z²); n of n: the upper bound is exactly 1
    and the lower n/(n+z²)."""
    z2 = NormalDist().inv_cdf(confidence) ** 2
    none_failed = wilson(health(0, attempts), confidence)
    assert none_failed.lower == 0.0
    assert none_failed.upper == pytest.approx(z2 / (attempts + z2), abs=1e-12)
    all_failed = wilson(health(attempts, attempts), confidence)
    assert all_failed.upper == 1.0
    assert all_failed.lower == pytest.approx(attempts / (attempts + z2), abs=1e-12)


def test_no_attempt_knows_nothing() -> None:
    assert wilson(health(0, 0), 0.95) == Bounds(0.0, 1.0)


def test_confidence_0_5_gives_the_bare_rate() -> None:
    bounds = wilson(health(6, 100), 0.5)
    assert bounds.lower == bounds.upper == pytest.approx(0.06)


def test_more_confidence_widens_the_bounds() -> None:
    widths = [wilson(health(5, 40), c) for c in (0.8, 0.9, 0.95, 0.99, 0.999)]
    assert all(a.lower > b.lower and a.upper < b.upper for a, b in itertools.pairwise(widths))


@pytest.mark.parametrize(
    ("release", "previous", "lower", "upper"),
    [  # 95% two-sided, Newcombe's hybrid score method 10, as published (1998, table II)
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((5, 56), (0, 29), -0.0381, 0.1926),
        ((0, 10), (0, 20), -0.1611, 0.2775),
    ],
)
def test_difference_matches_newcombe(
    release: tuple[int, int], previous: tuple[int, int], lower: float, upper: float
) -> None:
    a, b = health(*release), health(*previous)
    assert round(difference_lower_bound(a, b, 0.975), 4) == lower
    # the interval's upper end is the lower bound of the difference the other way round, negated
    assert round(-difference_lower_bound(b, a, 0.975), 4) == upper


def test_difference_from_wilson_bounds_written_out() -> None:
    a, b, confidence = health(12, 300), health(40, 8000), 0.95
    z = NormalDist().inv_cdf(confidence)
    lower_a = score_bounds(12, 300, z)[0]
    upper_b = score_bounds(40, 8000, z)[1]
    expected = (0.04 - 0.005) - math.hypot(0.04 - lower_a, upper_b - 0.005)
    assert difference_lower_bound(a, b, confidence) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("release", "previous"), [((0, 0), (5, 100)), ((5, 100), (0, 0)), ((0, 0), (0, 0))])
def test_no_difference_is_known_without_attempts(release: tuple[int, int], previous: tuple[int, int]) -> None:
    assert difference_lower_bound(health(*release), health(*previous), 0.95) == -1.0
