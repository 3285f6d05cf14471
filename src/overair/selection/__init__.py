"""Pure update selection: which release, if any, a device should get. No I/O, no framework."""

from overair.selection.rollout import in_rollout, js_rollout_hash, rollout_bucket
from overair.selection.rules import choose, plan_update, select_update, takes_rollout
from overair.selection.types import (
    CurrentMatch,
    Decision,
    DecisionKind,
    DeviceQuery,
    Plan,
    Release,
    RolloutHash,
)

__all__ = [
    "CurrentMatch",
    "Decision",
    "DecisionKind",
    "DeviceQuery",
    "Plan",
    "Release",
    "RolloutHash",
    "choose",
    "in_rollout",
    "js_rollout_hash",
    "plan_update",
    "rollout_bucket",
    "select_update",
    "takes_rollout",
]
