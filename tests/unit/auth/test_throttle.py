"""The failed-key budget per client address (overair.auth.throttle), on a clock the test moves."""

from __future__ import annotations

import pytest

from overair.auth.throttle import FailureThrottle, TooManyAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_after_its_budget_until_the_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = FailureThrottle(failures=3, window=60, clock=clock)
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
        clock.now += 1
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("10.0.0.1")
    assert refused.value.retry_after == 57  # the first failure (t=1000) leaves the window at t=1060
    assert refused.value.code == "too-many-attempts"
    throttle.check("10.0.0.2")  # other addresses are not affected
    clock.now = 1060.5
    throttle.check("10.0.0.1")  # one failure left the window: one more try
    throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1")


@pytest.mark.parametrize(("failures", "refused"), [(0, False), (9, False), (10, True), (25, True)])
def test_the_default_budget_is_ten_failures_a_minute(failures: int, refused: bool) -> None:
    throttle = FailureThrottle(clock=Clock())
    for _ in range(failures):
        throttle.failed("a")
    if refused:
        with pytest.raises(TooManyAttempts):
            throttle.check("a")
    else:
        throttle.check("a")


def test_requests_without_an_address_are_never_throttled() -> None:
    throttle = FailureThrottle(failures=1, clock=Clock())
    throttle.failed(None)
    throttle.failed(None)
    throttle.check(None)
