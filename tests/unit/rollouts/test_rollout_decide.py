"""The rollout decision (overair.rollouts.decide), table-driven: policy, state, counts and time in; verdict,
reason and share out. Every step rule, gate, minimum, action and phase has a row."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from overair.metrics.rules import ReleaseHealth
from overair.rollouts import (
    Decision,
    Gate,
    GateAction,
    Phase,
    Reason,
    RolloutCounts,
    RolloutPolicy,
    RolloutState,
    Verdict,
    decide,
)
from overair.rollouts.bounds import difference_lower_bound, wilson

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DWELL = RolloutPolicy().min_dwell
HEALTHY_PREVIOUS = (50, 10_000)  # 0.5% of 10,000 install attempts
PROMOTING = {"promote_to": "Production", "promote_after": 24 * HOUR}


def health(failures: int, attempts: int) -> ReleaseHealth:
    return ReleaseHealth(installs=attempts - failures, failures=failures)


@dataclass
class Case:
    name: str
    verdict: Verdict
    reason: Reason
    share: int
    """The share after the decision."""
    counts: tuple[int, int] = (0, 60)
    """The release's failures and install attempts since it was published."""
    previous: tuple[int, int] | None = HEALTHY_PREVIOUS
    at: int = 1
    """The share the rollout is at."""
    phase: Phase = Phase.RAMPING
    step_age: dt.timedelta = DWELL
    ramp_age: dt.timedelta | None = None
    """Time since the ramp started (the step's age when None)."""
    attempts_at_step_start: int = 0
    policy: dict[str, Any] = field(default_factory=dict)


CASES = [
    # -- the steps --
    Case("dwell and sample met: 1 to 5", Verdict.ADVANCE, Reason.STEP_HELD, 5),
    Case("5 to 25", Verdict.ADVANCE, Reason.STEP_HELD, 25, at=5),
    Case("25 to 50", Verdict.ADVANCE, Reason.STEP_HELD, 50, at=25),
    Case("50 to 100", Verdict.ADVANCE, Reason.STEP_HELD, 100, at=50),
    Case("the last step held: complete", Verdict.COMPLETE, Reason.RAMP_DONE, 100, at=100),
    Case(
        "dwell a second short",
        Verdict.STAY,
        Reason.WAITING_FOR_DWELL,
        1,
        step_age=DWELL - dt.timedelta(seconds=1),
    ),
    Case("sample one short", Verdict.STAY, Reason.WAITING_FOR_SAMPLE, 1, counts=(0, 49)),
    Case(
        "both short: the dwell is named",
        Verdict.STAY,
        Reason.WAITING_FOR_DWELL,
        1,
        counts=(0, 3),
        step_age=HOUR,
    ),
    Case(
        "the sample counts from the step's start (49)",
        Verdict.STAY,
        Reason.WAITING_FOR_SAMPLE,
        5,
        at=5,
        counts=(0, 120),
        attempts_at_step_start=71,
    ),
    Case(
        "the sample counts from the step's start (50)",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        25,
        at=5,
        counts=(0, 120),
        attempts_at_step_start=70,
    ),
    Case("a share between steps goes to the next step", Verdict.ADVANCE, Reason.STEP_HELD, 25, at=10),
    Case("own steps", Verdict.ADVANCE, Reason.STEP_HELD, 100, at=10, policy={"steps": (10, 100)}),
    Case(
        "one step only: complete", Verdict.COMPLETE, Reason.RAMP_DONE, 100, at=100, policy={"steps": (100,)}
    ),
    Case(
        "no dwell, no sample: a step per evaluation",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(0, 0),
        step_age=dt.timedelta(),
        policy={"min_dwell": 0, "min_sample": 0},
    ),
    Case(
        "own dwell and sample",
        Verdict.STAY,
        Reason.WAITING_FOR_SAMPLE,
        1,
        counts=(0, 150),
        step_age=HOUR,
        policy={"min_dwell": 3600, "min_sample": 200},
    ),
    # -- the minimum number of failures --
    Case(
        "4 failures in 5 attempts: too few failures to halt",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(4, 5),
        policy={"min_sample": 5},
    ),
    Case("the fifth failure halts", Verdict.HALT, Reason.GATE_FAILED, 1, counts=(5, 6)),
    Case(
        "min_failures 1: 1 of 3 halts",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(1, 3),
        policy={"min_failures": 1},
    ),
    Case(
        "min_failures 10: 9 of 20 does not",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(9, 20),
        policy={"min_failures": 10, "min_sample": 20},
    ),
    # -- the failure-rate gate --
    Case(
        "5 of 10 halts at once, within the dwell",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(5, 10),
        step_age=HOUR,
    ),
    Case("5 of 100: bound 2.45% < 5%", Verdict.ADVANCE, Reason.STEP_HELD, 5, counts=(5, 100), previous=None),
    Case("10 of 100: bound 6.07% > 5%", Verdict.HALT, Reason.GATE_FAILED, 1, counts=(10, 100), previous=None),
    Case(
        "own limit: 10 of 100 under 7%",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(10, 100),
        previous=None,
        policy={"max_failure_rate": 0.07},
    ),
    Case(
        "gate off",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(50, 100),
        previous=None,
        policy={"max_failure_rate": None},
    ),
    # -- the confidence --
    Case(
        "confidence 0.5 judges the bare rate: 6% > 5%",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(6, 100),
        previous=None,
        policy={"confidence": 0.5},
    ),
    Case(
        "confidence 0.95: 6 of 100 holds (3.13%)",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(6, 100),
        previous=None,
    ),
    Case(
        "confidence 0.95: 5 of 40 halts (6.22%)",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(5, 40),
        previous=None,
    ),
    Case(
        "confidence 0.99: 5 of 40 holds (4.71%)",
        Verdict.STAY,
        Reason.WAITING_FOR_SAMPLE,
        1,
        counts=(5, 40),
        previous=None,
        policy={"confidence": 0.99},
    ),
    # -- the previous-release gate --
    Case(
        "3% after 0.5%: increase >= 1.72 points halts (rate's bound 2.23% < 5%)",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(30, 1000),
    ),
    Case(
        "3% after 3%: no increase",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(30, 1000),
        previous=(300, 10_000),
    ),
    Case(
        "2% after 0.5%: increase >= 0.88 points, within 1",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(20, 1000),
    ),
    Case(
        "own margin: 2% after 0.5% over 0.5 points",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(20, 1000),
        policy={"max_increase": 0.005},
    ),
    Case(
        "a previous release without attempts: nothing to compare",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(30, 1000),
        previous=(0, 0),
    ),
    Case("no previous release", Verdict.ADVANCE, Reason.STEP_HELD, 5, counts=(30, 1000), previous=None),
    Case(
        "previous-release gate off",
        Verdict.ADVANCE,
        Reason.STEP_HELD,
        5,
        counts=(30, 1000),
        policy={"max_increase": None},
    ),
    # -- the actions --
    Case("pause", Verdict.PAUSE, Reason.GATE_FAILED, 1, counts=(5, 10), policy={"action": "pause"}),
    Case(
        "roll back", Verdict.ROLL_BACK, Reason.GATE_FAILED, 1, counts=(5, 10), policy={"action": "roll-back"}
    ),
    Case(
        "roll back without a previous release halts",
        Verdict.HALT,
        Reason.GATE_FAILED,
        1,
        counts=(5, 10),
        previous=None,
        policy={"action": "roll-back"},
    ),
    Case("halt at 50%", Verdict.HALT, Reason.GATE_FAILED, 50, at=50, counts=(60, 1000)),
    # -- phases waiting for a person, or finished --
    Case("paused stays", Verdict.STAY, Reason.WAITING_FOR_A_PERSON, 1, phase=Phase.PAUSED, counts=(9, 10)),
    Case(
        "halted stays", Verdict.STAY, Reason.WAITING_FOR_A_PERSON, 5, at=5, phase=Phase.HALTED, counts=(9, 10)
    ),
    Case(
        "rolled back stays",
        Verdict.STAY,
        Reason.WAITING_FOR_A_PERSON,
        1,
        phase=Phase.ROLLED_BACK,
        counts=(9, 10),
    ),
    Case(
        "completed stays", Verdict.STAY, Reason.FINISHED, 100, at=100, phase=Phase.COMPLETED, counts=(9, 10)
    ),
    Case(
        "promoted stays", Verdict.STAY, Reason.FINISHED, 100, at=100, phase=Phase.PROMOTED, policy=PROMOTING
    ),
    # -- promotion --
    Case(
        "the last step held with a promotion to come: complete first",
        Verdict.COMPLETE,
        Reason.RAMP_DONE,
        100,
        at=100,
        policy=PROMOTING,
    ),
    Case(
        "completed, held 23 h of 24",
        Verdict.STAY,
        Reason.WAITING_FOR_PROMOTION,
        100,
        at=100,
        phase=Phase.COMPLETED,
        ramp_age=23 * HOUR,
        policy=PROMOTING,
    ),
    Case(
        "completed, held 24 h: promote",
        Verdict.PROMOTE,
        Reason.HELD_FOR_PROMOTION,
        100,
        at=100,
        phase=Phase.COMPLETED,
        ramp_age=24 * HOUR,
        policy=PROMOTING,
    ),
    Case(
        "completed, a gate fails while waiting for promotion",
        Verdict.HALT,
        Reason.GATE_FAILED,
        100,
        at=100,
        phase=Phase.COMPLETED,
        ramp_age=30 * HOUR,
        counts=(60, 1000),
        policy=PROMOTING,
    ),
]


def run(case: Case) -> tuple[RolloutPolicy, RolloutState, Decision]:
    policy = RolloutPolicy(**case.policy)
    state = RolloutState(
        phase=case.phase,
        share=case.at,
        started_at=NOW - (case.ramp_age if case.ramp_age is not None else case.step_age),
        step_started_at=NOW - case.step_age,
        step_attempts_at_start=case.attempts_at_step_start,
    )
    previous = None if case.previous is None else health(*case.previous)
    return policy, state, decide(policy, state, RolloutCounts(health(*case.counts), previous), NOW)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decide(case: Case) -> None:
    _, state, decision = run(case)
    assert (decision.verdict, decision.reason, decision.share) == (case.verdict, case.reason, case.share)
    assert decision.at == NOW
    assert state.after(decision).share == case.share
    assert (decision.promote_to == "Production") is (case.verdict is Verdict.PROMOTE)


def test_a_halt_says_why_with_the_numbers() -> None:
    policy = RolloutPolicy()
    state = RolloutState.start(policy, NOW - HOUR)
    release, previous = health(5, 40), health(*HEALTHY_PREVIOUS)
    decision = decide(policy, state, RolloutCounts(release, previous), NOW)
    assert decision.verdict is Verdict.HALT
    rate, increase = decision.gates
    assert (rate.gate, rate.threshold, rate.fails) == (Gate.FAILURE_RATE, 0.05, True)
    assert rate.value == wilson(release, 0.95).lower
    assert (increase.gate, increase.threshold, increase.fails) == (Gate.PREVIOUS_RELEASE, 0.01, True)
    assert increase.value == difference_lower_bound(release, previous, 0.95)
    assert decision.message == (
        "Halted at 1%: failure rate (lower bound) 6.22% at 95% confidence, limit 5%: fails; increase over "
        "the previous release (lower bound) 5.72% at 95% confidence, limit 1%: fails "
        "(5 failed of 40 install attempts)."
    )
    assert (decision.release, decision.previous, decision.step_sample) == (release, previous, 40)
    assert decision.step_dwell == HOUR


def test_gate_readings_say_when_too_few_failures_hold_them() -> None:
    policy = RolloutPolicy(min_sample=5)
    decision = decide(policy, RolloutState.start(policy, NOW - DWELL), RolloutCounts(health(4, 5)), NOW)
    (rate,) = decision.gates
    assert rate.crossed and not rate.fails
    assert rate.describe() == (
        "failure rate (lower bound) 43.53% at 95% confidence, limit 5%: holds until 5 failures (4 so far)"
    )


def test_a_previous_release_without_attempts_is_not_measurable() -> None:
    counts = RolloutCounts(health(30, 1000), health(0, 0))
    decision = decide(RolloutPolicy(), RolloutState.start(RolloutPolicy(), NOW), counts, NOW)
    increase = decision.gates[1]
    assert increase.value is None and not increase.fails
    assert "not measurable yet" in increase.describe()


@pytest.mark.parametrize(
    ("verdict", "phase"),
    [
        (Verdict.PAUSE, Phase.PAUSED),
        (Verdict.HALT, Phase.HALTED),
        (Verdict.ROLL_BACK, Phase.ROLLED_BACK),
        (Verdict.COMPLETE, Phase.COMPLETED),
        (Verdict.PROMOTE, Phase.PROMOTED),
    ],
)
def test_the_state_after_an_act(verdict: Verdict, phase: Phase) -> None:
    case = next(c for c in CASES if c.verdict is verdict)
    _, state, decision = run(case)
    after = state.after(decision)
    assert after.phase is phase
    assert (after.started_at, after.step_started_at) == (state.started_at, state.step_started_at)


def test_the_state_after_a_step_starts_the_next_step() -> None:
    _, state, decision = run(CASES[0])
    after = state.after(decision)
    assert (after.phase, after.share, after.step_started_at) == (Phase.RAMPING, 5, NOW)
    assert after.step_attempts_at_start == 60
    assert after.started_at == state.started_at
    assert state.after(run(CASES[5])[2]) == state  # a stay changes nothing


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decisions_and_states_survive_json(case: Case) -> None:
    _, state, decision = run(case)
    assert Decision.from_json(json.loads(json.dumps(decision.to_json()))) == decision
    assert RolloutState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_every_verdict_and_reason_has_a_row() -> None:
    assert {c.verdict for c in CASES} == set(Verdict)
    assert {c.reason for c in CASES} == set(Reason)
    assert {GateAction(c.policy.get("action", "halt")) for c in CASES} == set(GateAction)


@pytest.mark.parametrize(
    ("name", "failing"),
    [
        ("3% after 0.5%: increase >= 1.72 points halts (rate's bound 2.23% < 5%)", {Gate.PREVIOUS_RELEASE}),
        ("10 of 100: bound 6.07% > 5%", {Gate.FAILURE_RATE}),
        ("5 of 10 halts at once, within the dwell", {Gate.FAILURE_RATE, Gate.PREVIOUS_RELEASE}),
        ("3% after 3%: no increase", set()),
        ("gate off", set()),
    ],
)
def test_which_gates_fail(name: str, failing: set[Gate]) -> None:
    _, _, decision = run(next(c for c in CASES if c.name == name))
    assert {g.gate for g in decision.gates if g.fails} == failing
