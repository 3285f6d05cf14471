"""The rollout decision: a policy, where the rollout stands, the release's counts and the time in; what to
do next out, with the reason and the numbers behind it. Pure: no clock is read, nothing is stored.

Each evaluation (a background job, a test, the simulation) calls :func:`decide` and, for whatever it does
with the verdict (raise the share, disable the release, ...), moves the state on with
:meth:`RolloutState.after`. Both the state and the decision turn into JSON values and back, to be stored
with the release and shown wherever it is.

The rules, in order:

1. A rollout that is paused, halted, rolled back, promoted, or completed without a promotion to wait
   for, stays: a person decides what comes next.
2. The gates are read on the release's counts since it was published (every step together):
   - **failure rate**: the Wilson lower bound of the failure rate (``overair.metrics.rules``) at the
     policy's confidence is above ``max_failure_rate``;
   - **previous release**: the lower bound of the rate's increase over the previous release's
     (Newcombe's interval, :func:`overair.rollouts.bounds.difference_lower_bound`) is above
     ``max_increase``; no verdict while either release has no install attempt.
   A gate fails only once the release has ``min_failures`` failures. Any failed gate triggers the
   policy's action (pause, halt, roll back; roll back becomes halt when there is no previous release).
3. A completed rollout with a promotion configured is promoted once ``promote_after`` has passed since
   its ramp started; until then it stays, gates watched.
4. A step advances when its dwell (``min_dwell`` since the step began) and its sample (``min_sample``
   install attempts reported since the step began) are both met: to the next step, or, from the last step
   (100%), the rollout completes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from overair.metrics.rules import ReleaseHealth
from overair.rollouts.bounds import difference_lower_bound, wilson
from overair.rollouts.policy import GateAction, RolloutPolicy


class Phase(enum.StrEnum):
    """Where a guarded rollout stands."""

    RAMPING = "ramping"
    """Taking steps."""
    PAUSED = "paused"
    """A gate failed and the policy pauses: the share stays until a person acts."""
    HALTED = "halted"
    """A gate failed and the release was disabled."""
    ROLLED_BACK = "rolled-back"
    """A gate failed and the previous release was republished."""
    COMPLETED = "completed"
    """The last step's dwell and sample were met: the release reaches every device."""
    PROMOTED = "promoted"
    """The release was promoted to the policy's ``promote_to`` deployment."""


WAITING_FOR_A_PERSON = frozenset({Phase.PAUSED, Phase.HALTED, Phase.ROLLED_BACK})


class Verdict(enum.StrEnum):
    """What the evaluation says to do."""

    STAY = "stay"
    ADVANCE = "advance"
    """Raise the release's share to ``Decision.share``."""
    COMPLETE = "complete"
    """The ramp is done; the policy stops taking steps."""
    PAUSE = "pause"
    HALT = "halt"
    ROLL_BACK = "roll-back"
    PROMOTE = "promote"
    """Promote the release to ``Decision.promote_to``."""


class Reason(enum.StrEnum):
    """Why: a stable code beside the decision's message."""

    GATE_FAILED = "gate-failed"
    WAITING_FOR_DWELL = "waiting-for-dwell"
    WAITING_FOR_SAMPLE = "waiting-for-sample"
    STEP_HELD = "step-held"
    """Dwell and sample met with every gate holding: the next step."""
    RAMP_DONE = "ramp-done"
    WAITING_FOR_PROMOTION = "waiting-for-promotion"
    HELD_FOR_PROMOTION = "held-for-promotion"
    WAITING_FOR_A_PERSON = "waiting-for-a-person"
    FINISHED = "finished"


_ACTION_VERDICT = {
    GateAction.PAUSE: Verdict.PAUSE,
    GateAction.HALT: Verdict.HALT,
    GateAction.ROLL_BACK: Verdict.ROLL_BACK,
}
_VERDICT_PHASE = {
    Verdict.PAUSE: Phase.PAUSED,
    Verdict.HALT: Phase.HALTED,
    Verdict.ROLL_BACK: Phase.ROLLED_BACK,
    Verdict.COMPLETE: Phase.COMPLETED,
    Verdict.PROMOTE: Phase.PROMOTED,
}


def _time(value: dt.datetime) -> str:
    return value.isoformat()


def _health_json(health: ReleaseHealth | None) -> dict[str, Any] | None:
    if health is None:
        return None
    return {"installs": health.installs, "failures": health.failures, "failure_rate": health.failure_rate}


def _health(data: Mapping[str, Any] | None) -> ReleaseHealth | None:
    return None if data is None else ReleaseHealth(installs=data["installs"], failures=data["failures"])


@dataclass(frozen=True, slots=True)
class RolloutCounts:
    """The reports the gates read: the release's, since it was published, and the previous release's on
    the same deployment (None when there is none)."""

    release: ReleaseHealth
    previous: ReleaseHealth | None = None


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Where a release's guarded rollout stands between two evaluations."""

    phase: Phase
    share: int
    """The percentage of devices the release is offered to now."""
    started_at: dt.datetime
    """When the ramp began (promotion counts its hold from here)."""
    step_started_at: dt.datetime
    """When the current step began (its dwell counts from here)."""
    step_attempts_at_start: int = 0
    """The release's install attempts when the step began (its sample counts from here)."""

    @classmethod
    def start(cls, policy: RolloutPolicy, now: dt.datetime, attempts: int = 0) -> RolloutState:
        """A ramp beginning ``now`` at the policy's first step, the release having ``attempts`` already."""
        return cls(Phase.RAMPING, policy.steps[0], now, now, attempts)

    def after(self, decision: Decision) -> RolloutState:
        """The state once ``decision`` was carried out."""
        if decision.verdict is Verdict.STAY:
            return self
        if decision.verdict is Verdict.ADVANCE:
            return replace(
                self,
                share=decision.share,
                step_started_at=decision.at,
                step_attempts_at_start=decision.release.attempts,
            )
        return replace(self, phase=_VERDICT_PHASE[decision.verdict], share=decision.share)

    def to_json(self) -> dict[str, Any]:
        """The state as JSON values (times in ISO 8601)."""
        return {
            "phase": self.phase.value,
            "share": self.share,
            "started_at": _time(self.started_at),
            "step_started_at": _time(self.step_started_at),
            "step_attempts_at_start": self.step_attempts_at_start,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutState:
        """The state :meth:`to_json` wrote."""
        return cls(
            phase=Phase(data["phase"]),
            share=int(data["share"]),
            started_at=dt.datetime.fromisoformat(data["started_at"]),
            step_started_at=dt.datetime.fromisoformat(data["step_started_at"]),
            step_attempts_at_start=int(data["step_attempts_at_start"]),
        )


class Gate(enum.StrEnum):
    """The health gates."""

    FAILURE_RATE = "failure-rate"
    PREVIOUS_RELEASE = "previous-release"


@dataclass(frozen=True, slots=True)
class GateReading:
    """One gate's value against its threshold at one evaluation."""

    gate: Gate
    value: float | None
    """The bound compared (the rate's lower bound, or the increase's); None when there is nothing to
    compare yet (the previous release has no install attempt)."""
    threshold: float
    failures: int
    min_failures: int
    confidence: float

    @property
    def crossed(self) -> bool:
        """Whether the bound is above the threshold (whatever the failure count)."""
        return self.value is not None and self.value > self.threshold

    @property
    def fails(self) -> bool:
        """Whether the gate fails: bound above the threshold with at least ``min_failures`` failures."""
        return self.crossed and self.failures >= self.min_failures

    def describe(self) -> str:
        """One line for a person: the value against the threshold, and the verdict."""
        what = {
            Gate.FAILURE_RATE: "failure rate (lower bound)",
            Gate.PREVIOUS_RELEASE: "increase over the previous release (lower bound)",
        }[self.gate]
        limit = f"limit {_pct(self.threshold)}"
        if self.value is None:
            return f"{what}: not measurable yet, the previous release has no install attempt ({limit})"
        shown = f"{what} {_pct(self.value)} at {_pct(self.confidence)} confidence, {limit}"
        if self.fails:
            return f"{shown}: fails"
        if self.crossed:
            return f"{shown}: holds until {self.min_failures} failures ({self.failures} so far)"
        return f"{shown}: holds"

    def to_json(self) -> dict[str, Any]:
        """The reading as JSON values."""
        return {
            "gate": self.gate.value,
            "value": self.value,
            "threshold": self.threshold,
            "failures": self.failures,
            "min_failures": self.min_failures,
            "confidence": self.confidence,
            "fails": self.fails,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateReading:
        """The reading :meth:`to_json` wrote."""
        return cls(
            gate=Gate(data["gate"]),
            value=data["value"],
            threshold=data["threshold"],
            failures=data["failures"],
            min_failures=data["min_failures"],
            confidence=data["confidence"],
        )


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def read_gates(policy: RolloutPolicy, counts: RolloutCounts) -> tuple[GateReading, ...]:
    """Every gate the policy switches on, read on ``counts``."""
    release, failures = counts.release, counts.release.failures
    readings = []
    if policy.max_failure_rate is not None:
        lower = wilson(release, policy.confidence).lower
        readings.append(
            GateReading(
                Gate.FAILURE_RATE,
                lower,
                policy.max_failure_rate,
                failures,
                policy.min_failures,
                policy.confidence,
            )
        )
    if policy.max_increase is not None and counts.previous is not None:
        increase = None
        if release.measured and counts.previous.measured:
            increase = difference_lower_bound(release, counts.previous, policy.confidence)
        readings.append(
            GateReading(
                Gate.PREVIOUS_RELEASE,
                increase,
                policy.max_increase,
                failures,
                policy.min_failures,
                policy.confidence,
            )
        )
    return tuple(readings)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a release's rollout, why, and the numbers that said so."""

    verdict: Verdict
    reason: Reason
    message: str
    """The reason in words for a person (no surface words: shown by the API, the CLI and the console)."""
    share: int
    """The release's share of devices once the verdict is carried out."""
    at: dt.datetime
    release: ReleaseHealth
    previous: ReleaseHealth | None
    gates: tuple[GateReading, ...]
    step_dwell: dt.timedelta
    """How long the current step had lasted."""
    step_sample: int
    """Install attempts reported during the current step."""
    promote_to: str | None = None

    @property
    def acts(self) -> bool:
        """Whether the decision changes anything (everything but stay)."""
        return self.verdict is not Verdict.STAY

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON values, to be stored and shown."""
        return {
            "verdict": self.verdict.value,
            "reason": self.reason.value,
            "message": self.message,
            "share": self.share,
            "at": _time(self.at),
            "release": _health_json(self.release),
            "previous": _health_json(self.previous),
            "gates": [g.to_json() for g in self.gates],
            "step_dwell": self.step_dwell.total_seconds(),
            "step_sample": self.step_sample,
            "promote_to": self.promote_to,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_json` wrote."""
        release = _health(data["release"])
        assert release is not None
        return cls(
            verdict=Verdict(data["verdict"]),
            reason=Reason(data["reason"]),
            message=data["message"],
            share=int(data["share"]),
            at=dt.datetime.fromisoformat(data["at"]),
            release=release,
            previous=_health(data["previous"]),
            gates=tuple(GateReading.from_json(g) for g in data["gates"]),
            step_dwell=dt.timedelta(seconds=data["step_dwell"]),
            step_sample=int(data["step_sample"]),
            promote_to=data["promote_to"],
        )


def _duration(value: dt.timedelta) -> str:
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes or not seconds else f"{seconds} s"


def decide(policy: RolloutPolicy, state: RolloutState, counts: RolloutCounts, now: dt.datetime) -> Decision:
    """The next move of a release's guarded rollout (the rules are in the module's docstring).

    ``counts`` are the release's reports since it was published (and the previous release's); ``now`` is
    the evaluation's time, from the caller's clock.
    """
    gates = read_gates(policy, counts)
    dwell = now - state.step_started_at
    sample = max(0, counts.release.attempts - state.step_attempts_at_start)

    def decision(verdict: Verdict, reason: Reason, message: str, share: int = state.share) -> Decision:
        promote_to = policy.promote_to if verdict is Verdict.PROMOTE else None
        return Decision(
            verdict,
            reason,
            message,
            share,
            now,
            counts.release,
            counts.previous,
            gates,
            dwell,
            sample,
            promote_to,
        )

    if state.phase in WAITING_FOR_A_PERSON:
        return decision(Verdict.STAY, Reason.WAITING_FOR_A_PERSON, f"The rollout is {state.phase}.")
    if state.phase is Phase.PROMOTED or (state.phase is Phase.COMPLETED and policy.promote_to is None):
        return decision(Verdict.STAY, Reason.FINISHED, f"The rollout is {state.phase}.")

    failed = [gate for gate in gates if gate.fails]
    if failed:
        verdict = _ACTION_VERDICT[policy.action]
        why = "; ".join(gate.describe() for gate in failed)
        health = counts.release
        numbers = f"{health.failures} failed of {health.attempts} install attempts"
        if verdict is Verdict.ROLL_BACK and counts.previous is None:
            return decision(
                Verdict.HALT,
                Reason.GATE_FAILED,
                f"Halted at {state.share}% instead of rolled back, as there is no previous release to go "
                f"back to: {why} ({numbers}).",
            )
        done = {Verdict.PAUSE: "Paused", Verdict.HALT: "Halted", Verdict.ROLL_BACK: "Rolled back"}[verdict]
        return decision(verdict, Reason.GATE_FAILED, f"{done} at {state.share}%: {why} ({numbers}).")

    if state.phase is Phase.COMPLETED:
        assert policy.promote_after is not None
        held = now - state.started_at
        if held < policy.promote_after:
            return decision(
                Verdict.STAY,
                Reason.WAITING_FOR_PROMOTION,
                f"Promotion to {policy.promote_to} after {_duration(policy.promote_after)} of holding the "
                f"gates; held {_duration(held)} so far.",
            )
        return decision(
            Verdict.PROMOTE,
            Reason.HELD_FOR_PROMOTION,
            f"Held the gates for {_duration(held)} (at least {_duration(policy.promote_after)}): promoted to "
            f"{policy.promote_to}.",
        )

    if dwell < policy.min_dwell:
        return decision(
            Verdict.STAY,
            Reason.WAITING_FOR_DWELL,
            f"Step {state.share}% has lasted {_duration(dwell)} of at least {_duration(policy.min_dwell)}.",
        )
    if sample < policy.min_sample:
        return decision(
            Verdict.STAY,
            Reason.WAITING_FOR_SAMPLE,
            f"Step {state.share}% has {sample} of at least {policy.min_sample} install attempts.",
        )
    summary = f"step {state.share}% held {_duration(dwell)} with {sample} install attempts, gates holding"
    following = [step for step in policy.steps if step > state.share]
    if not following:
        return decision(Verdict.COMPLETE, Reason.RAMP_DONE, f"Completed: {summary}.")
    return decision(
        Verdict.ADVANCE, Reason.STEP_HELD, f"Advanced to {following[0]}%: {summary}.", share=following[0]
    )
