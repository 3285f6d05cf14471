"""Guarded rollouts as stored: a deployment's policy, each release's rollout row, and the rollout events.

Session-level helpers shared by publishing (:mod:`overair.releases.service`, which starts a release's ramp
and ends a running one) and the guarded-rollout service (:mod:`overair.releases.ramps`, which evaluates
and takes people's acts). The pure rules are :mod:`overair.rollouts`.

Every change to a guarded rollout appends a row to ``rollout_events`` in the same transaction: the one
record of what happened (published with a ramp, each step, paused, halted, rolled back, promoted,
completed, and every person's act, with who and why), in order, for notifications to pick up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair.releases.models import DeploymentRolloutPolicy, Release, ReleaseRollout, RolloutEvent
from overair.releases.schemas import GateOut, ReleaseOut, RolloutActOut, RolloutOut, RolloutPointOut
from overair.releases.unit import Changes
from overair.rollouts import Decision, GateReading, Phase, RolloutPolicy, RolloutState

ACTIVE_PHASES = frozenset({Phase.RAMPING})


class EventKind:
    """The kinds of ``rollout_events`` rows (stable names: notifications subscribe to them)."""

    STARTED = "rollout-started"
    STEP = "rollout-step"
    PAUSED = "rollout-paused"
    HALTED = "rollout-halted"
    ROLLED_BACK = "rollout-rolled-back"
    PROMOTED = "rollout-promoted"
    COMPLETED = "rollout-completed"
    RESUMED = "rollout-resumed"
    OVERRIDDEN = "rollout-overridden"
    ENDED = "rollout-ended"


def record_event(
    changes: Changes,
    session: Session,
    release: Release,
    kind: str,
    actor: str,
    now: dt.datetime,
    payload: Mapping[str, Any],
) -> None:
    """Append one rollout event (in the caller's transaction) and tell ``changes``' rollout listeners of it
    in that transaction (webhooks queue their deliveries there)."""
    deployment = release.deployment
    row = RolloutEvent(
        app=deployment.app.name,
        deployment=deployment.name,
        label=release.label,
        kind=kind,
        actor=actor,
        payload=dict(payload),
        at=now,
    )
    session.add(row)
    for listener in changes.rollout_listeners:
        listener(session, row)


def deployment_policy(session: Session, deployment_id: int) -> RolloutPolicy | None:
    """The deployment's stored policy, or None."""
    row = session.get(DeploymentRolloutPolicy, deployment_id)
    return None if row is None else RolloutPolicy.from_stored(row.policy)


def is_active(phase: Phase, policy: RolloutPolicy) -> bool:
    """Whether the background job still evaluates a rollout in ``phase``."""
    return phase in ACTIVE_PHASES or (phase is Phase.COMPLETED and policy.promote_to is not None)


def start(
    changes: Changes,
    session: Session,
    release: Release,
    policy: RolloutPolicy,
    actor: str,
    now: dt.datetime,
) -> ReleaseRollout:
    """Put a just-published ``release`` on its ramp: its share is the policy's first step."""
    release.rollout = policy.steps[0]
    state = RolloutState.start(policy, now)
    row = ReleaseRollout(
        release_id=release.id,
        policy=policy.to_json(),
        state=state.to_json(),
        decision=None,
        active=True,
        acts=[],
        halt_reason="",
        updated_at=now,
    )
    session.add(row)
    record_event(
        changes,
        session,
        release,
        EventKind.STARTED,
        actor,
        now,
        {"share": state.share, "policy": policy.to_json()},
    )
    return row


def add_act(row: ReleaseRollout, act: str, by: str, now: dt.datetime, reason: str, **extra: Any) -> None:
    """Record a person's act on the rollout (a new list, so the JSON column is written)."""
    row.acts = [*row.acts, {"act": act, "by": by, "at": now.isoformat(), "reason": reason, **extra}]
    row.updated_at = now


def end(
    changes: Changes, session: Session, release: Release, act: str, by: str, now: dt.datetime, reason: str
) -> None:
    """End ``release``'s guarded rollout, if it has one (the share stays), and record it as an event."""
    row = session.get(ReleaseRollout, release.id)
    if row is not None:
        row.active = False
        add_act(row, act, by, now, reason)
    record_event(
        changes,
        session,
        release,
        EventKind.ENDED,
        by,
        now,
        {"act": act, "reason": reason, "share": release.rollout},
    )


def _gate_out(data: Mapping[str, Any]) -> GateOut:
    reading = GateReading.from_json(data)
    return GateOut(
        gate=reading.gate.value,
        value=reading.value,
        threshold=reading.threshold,
        failures=reading.failures,
        min_failures=reading.min_failures,
        confidence=reading.confidence,
        fails=reading.fails,
        text=reading.describe(),
    )


def rollout_out(row: ReleaseRollout) -> RolloutOut:
    """A release's guarded rollout as every surface shows it."""
    policy = RolloutPolicy.from_stored(row.policy)
    state = RolloutState.from_json(row.state)
    decision = None if row.decision is None else Decision.from_json(row.decision)
    ramping = row.active and state.phase is Phase.RAMPING
    following = [step for step in policy.steps if step > state.share]
    next_step = following[0] if ramping and following else None
    return RolloutOut(
        policy=row.policy,
        phase=state.phase.value,
        active=row.active,
        ended=not row.active and bool(row.acts) and row.acts[-1]["act"].startswith("end"),
        share=state.share,
        steps=list(policy.steps),
        started_at=state.started_at,
        step_started_at=state.step_started_at,
        next_step=next_step,
        next_step_at=state.step_started_at + policy.min_dwell if ramping else None,
        step_sample=None if decision is None else decision.step_sample,
        min_sample=policy.min_sample,
        gates=[] if decision is None else [_gate_out(g.to_json()) for g in decision.gates],
        last_verdict=None if decision is None else decision.verdict.value,
        last_reason=None if decision is None else decision.reason.value,
        last_message=None if decision is None else decision.message,
        last_evaluated_at=None if decision is None else decision.at,
        halt_reason=row.halt_reason,
        acts=[
            RolloutActOut(
                act=a["act"],
                by=a["by"],
                at=dt.datetime.fromisoformat(a["at"]),
                reason=a["reason"],
                step=a.get("step"),
            )
            for a in row.acts
        ],
    )


def with_rollouts(session: Session, releases: Iterable[Release], outs: list[ReleaseOut]) -> list[ReleaseOut]:
    """``outs`` (one per release of ``releases``, in order) with their guarded rollouts, where they have
    one."""
    ids = [release.id for release in releases]
    rows = {
        row.release_id: row
        for row in session.scalars(select(ReleaseRollout).where(ReleaseRollout.release_id.in_(ids)))
    }
    return [
        out
        if (row := rows.get(release_id)) is None
        else out.model_copy(update={"guarded_rollout": rollout_out(row)})
        for release_id, out in zip(ids, outs, strict=True)
    ]


def ramp_of(session: Session, release: Release) -> list[RolloutPointOut]:
    """``release``'s share after each of its rollout events, oldest first (events without a share, none)."""
    deployment = release.deployment
    rows = session.scalars(
        select(RolloutEvent)
        .where(
            RolloutEvent.app == deployment.app.name,
            RolloutEvent.deployment == deployment.name,
            RolloutEvent.label == release.label,
        )
        .order_by(RolloutEvent.id)
    )
    return [
        RolloutPointOut(at=row.at, kind=row.kind, actor=row.actor, share=int(row.payload["share"]))
        for row in rows
        if isinstance(row.payload.get("share"), int)
    ]
