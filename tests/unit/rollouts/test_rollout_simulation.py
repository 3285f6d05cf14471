"""The default rollout policy on a simulated fleet of 10,000 devices (overair.rollouts.simulation): issue
17's second Done-when point. ``benchmarks/rollout_policy.py`` prints the same figures for quoting."""

from __future__ import annotations

import datetime as dt

import pytest

from overair.rollouts import GateAction, Phase, Reason, RolloutPolicy, Verdict
from overair.rollouts.simulation import Fleet, client_id, simulate
from overair.selection import RolloutHash, in_rollout

SEEDS = range(20)
BAD = Fleet(failure_rate=0.30)
HEALTHY = Fleet(failure_rate=0.005, previous_failure_rate=0.005)
SMALL = RolloutPolicy(steps=(10, 100), min_sample=20)
"""For fleets of 2,000: the default's first step (1%, 20 devices) would never see 50 install attempts."""


@pytest.mark.parametrize("seed", SEEDS)
def test_a_release_failing_on_30_percent_of_installs_is_halted_within_2_percent_of_the_fleet(
    seed: int,
) -> None:
    result = simulate(RolloutPolicy(), BAD, seed=seed)
    assert result.phase is Phase.HALTED
    assert result.reached_share <= 0.02, f"the bad release reached {result.reached_share:.2%} of the fleet"
    stopped = result.stopped
    assert stopped is not None
    assert (stopped.verdict, stopped.reason) == (Verdict.HALT, Reason.GATE_FAILED)
    assert [d.verdict for d in result.decisions] == [Verdict.HALT]  # halted before any step


def test_a_healthy_release_reaches_everyone_through_every_step_in_20_seeded_runs() -> None:
    """Failing on 0.5% of installs, like the release before it."""
    for seed in SEEDS:
        result = simulate(RolloutPolicy(), HEALTHY, seed=seed)
        assert result.stopped is None, f"seed {seed}: {result.stopped.message if result.stopped else ''}"
        assert result.phase is Phase.COMPLETED, f"seed {seed} ended {result.phase}"
        assert [(d.verdict, d.share) for d in result.decisions] == [
            (Verdict.ADVANCE, 5),
            (Verdict.ADVANCE, 25),
            (Verdict.ADVANCE, 50),
            (Verdict.ADVANCE, 100),
            (Verdict.COMPLETE, 100),
        ]
        completed = result.time_of(Verdict.COMPLETE)
        assert completed is not None and completed < dt.timedelta(days=3)


def test_the_devices_reached_are_those_the_server_would_place_in_the_rollout() -> None:
    for rollout_hash in RolloutHash:
        fleet = Fleet(failure_rate=0.30, devices=2000, rollout_hash=rollout_hash)
        result = simulate(SMALL, fleet, seed=7)
        assert result.phase is Phase.HALTED and result.max_share == 10
        inside = {i for i in range(2000) if in_rollout(client_id(7, i), 10, fleet.label, rollout_hash)}
        assert result.reached and set(result.reached_devices) <= inside


def test_a_seed_replays_the_same_run() -> None:
    policy, fleet = SMALL, Fleet(failure_rate=0.3, devices=2000)
    first, again = simulate(policy, fleet, seed=3), simulate(policy, fleet, seed=3)
    assert first == again
    assert simulate(policy, fleet, seed=4).reached_devices != first.reached_devices


@pytest.mark.parametrize(
    ("action", "phase"),
    [
        (GateAction.PAUSE, Phase.PAUSED),
        (GateAction.ROLL_BACK, Phase.ROLLED_BACK),
        (GateAction.HALT, Phase.HALTED),
    ],
)
def test_the_policy_action_ends_the_bad_rollout(action: GateAction, phase: Phase) -> None:
    policy = RolloutPolicy(steps=SMALL.steps, min_sample=SMALL.min_sample, action=action)
    result = simulate(policy, Fleet(failure_rate=0.3, devices=2000), seed=1)
    assert result.phase is phase


def test_a_fleet_too_small_for_the_sample_runs_out_of_time() -> None:
    """2,000 devices put about 20 at the first step: it never sees 50 install attempts."""
    two_days = dt.timedelta(days=2)
    result = simulate(RolloutPolicy(), Fleet(failure_rate=0.0, devices=2000), seed=0, give_up_after=two_days)
    assert (result.phase, result.decisions, result.elapsed) == (Phase.RAMPING, [], two_days)
    assert 0 < result.release.attempts < 50


@pytest.mark.parametrize(
    "fleet",
    [
        {"failure_rate": 1.5},
        {"failure_rate": 0.1, "previous_failure_rate": -0.1},
        {"failure_rate": 0.1, "devices": 0},
        {"failure_rate": 0.1, "launch_every": dt.timedelta()},
    ],
)
def test_a_fleet_is_checked(fleet: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Fleet(**fleet)  # type: ignore[arg-type]


@pytest.mark.parametrize(("devices", "seed"), [(20_000, 1), (20_000, 11), (50_000, 16)])
def test_the_default_dwell_waits_for_failures_to_be_reported(devices: int, seed: int) -> None:
    """Failures report a launch later than successes. With a dwell of one launch interval (6 h) these runs
    take a 30% release to the 5% step on the strength of its early installs; the default 12 h does not."""
    fleet = Fleet(failure_rate=0.30, devices=devices)
    six_hours = simulate(RolloutPolicy(min_dwell=dt.timedelta(hours=6)), fleet, seed=seed)
    assert (six_hours.phase, six_hours.max_share) == (Phase.HALTED, 5)
    default = simulate(RolloutPolicy(), fleet, seed=seed)
    assert (default.phase, default.max_share) == (Phase.HALTED, 1)
