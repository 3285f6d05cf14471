"""Guarded rollouts: a release ramps through shares of a deployment's devices on a schedule and stops by
itself when its failure rate says it hurts. Pure: the policy (:mod:`.policy`), the decision
(:mod:`.decide`), the confidence bounds it uses (:mod:`.bounds`) and a seeded fleet simulation
(:mod:`.simulation`). Storing policies, the background evaluation and the surfaces build on these."""

from overair.rollouts.decide import (
    Decision,
    Gate,
    GateReading,
    Phase,
    Reason,
    RolloutCounts,
    RolloutState,
    Verdict,
    decide,
    read_gates,
)
from overair.rollouts.errors import InvalidRolloutPolicy
from overair.rollouts.policy import DEFAULT_STEPS, GateAction, RolloutPolicy, parse_steps

__all__ = [
    "DEFAULT_STEPS",
    "Decision",
    "Gate",
    "GateAction",
    "GateReading",
    "InvalidRolloutPolicy",
    "Phase",
    "Reason",
    "RolloutCounts",
    "RolloutPolicy",
    "RolloutState",
    "Verdict",
    "decide",
    "parse_steps",
    "read_gates",
]
