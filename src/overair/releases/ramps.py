"""Guarded rollouts at work: deployments' policies, the background evaluation, and people's acts.

:meth:`GuardedRollouts.evaluate` is what the background job runs (``overair.app`` registers it on the
shared job queue, periodically and after each batch of device reports): for every release whose rollout is
active it reads the release's counts and its predecessor's, asks :func:`overair.rollouts.decide`, stores
the decision, and carries it out through the release services, as :data:`ROLLOUT_POLICY`:

- advance: the release's rollout percentage is raised to the next step; complete: to 100%;
- pause: the share stays, the rollout waits for a person;
- halt: the release is disabled (no new device gets it), with the decision's message as the reason;
- roll back: the existing rollback (the previous content republished as a new label);
- promote: the existing promotion to the policy's ``promote_to`` deployment.

An update check never waits on any of it: devices read the releases as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal, Surface
from overair.db import Clock, utcnow
from overair.errors import Conflict, Fix, Invalid, OverairError
from overair.metrics.rules import ReleaseHealth
from overair.releases import ramp_store
from overair.releases import repository as repo
from overair.releases.models import DeploymentRolloutPolicy, Release, ReleaseRollout
from overair.releases.outputs import release_out
from overair.releases.ramp_store import EventKind
from overair.releases.schemas import DeploymentPolicyOut, PromoteRequest, ReleaseOut, RolloutPointOut
from overair.releases.service import ReleaseService, disable_release, enable_release
from overair.releases.unit import Changes, EventListener, touch
from overair.rollouts import Decision, Phase, RolloutCounts, RolloutPolicy, RolloutState, Verdict, decide

log = logging.getLogger("overair")

ROLLOUT_POLICY = Principal(name="rollout policy", key_id=None, surface=Surface.SYSTEM)
"""Who acts when a policy takes a step, halts, rolls back or promotes (recorded as the author)."""

Counts = Callable[[str, str], Mapping[str, ReleaseHealth]]
"""(app, deployment) → label → the release's install attempts and failures (``MetricsService.health``)."""

_EVENT = {
    Verdict.ADVANCE: EventKind.STEP,
    Verdict.COMPLETE: EventKind.COMPLETED,
    Verdict.PAUSE: EventKind.PAUSED,
    Verdict.HALT: EventKind.HALTED,
    Verdict.ROLL_BACK: EventKind.ROLLED_BACK,
    Verdict.PROMOTE: EventKind.PROMOTED,
}
_AUDITED = {
    "resume": AuditAction.ROLLOUT_RESUME,
    "override": AuditAction.ROLLOUT_OVERRIDE,
    "end": AuditAction.ROLLOUT_END,
}
"""The audit log's verb for each of people's acts on a rollout."""
_STOPS = frozenset({Verdict.PAUSE, Verdict.HALT, Verdict.ROLL_BACK})
NO_REPORTS = ReleaseHealth(installs=0, failures=0)


class NoGuardedRollout(Conflict):
    """The release does not ramp under a policy, or its rollout is in no state for the act asked."""


def _previous(history: list[Release], release: Release) -> Release | None:
    """The newest enabled release published before ``release`` on its deployment (what it is compared to)."""
    earlier = [r for r in history if r.seq < release.seq and not r.disabled]
    return earlier[-1] if earlier else None


class GuardedRollouts:
    """Rollout policies of deployments, and the guarded rollouts of releases."""

    def __init__(self, changes: Changes, releases: ReleaseService, clock: Clock = utcnow) -> None:
        self._changes = changes
        self._releases = releases
        self._clock = clock

    def on_event(self, listener: EventListener) -> None:
        """Call ``listener`` with every rollout event stored (the policy's steps, pauses, halts, rollbacks,
        promotions and completions; starts; people's acts), in the event's transaction."""
        self._changes.rollout_listeners.append(listener)

    # -- deployments' policies ----------------------------------------------------------------------

    def policy(self, actor: Principal, app_name: str, deployment_name: str) -> DeploymentPolicyOut:
        """The deployment's rollout policy (``policy`` None when it has none)."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            deployment = repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
            row = session.get(DeploymentRolloutPolicy, deployment.id)
            if row is None:
                return DeploymentPolicyOut(deployment=deployment.name, policy=None)
            return DeploymentPolicyOut(
                deployment=deployment.name,
                policy=RolloutPolicy.from_stored(row.policy).to_json(),
                set_by=row.set_by,
                set_at=row.set_at,
                reason=row.reason,
            )

    def set_policy(
        self,
        actor: Principal,
        app_name: str,
        deployment_name: str,
        policy: Mapping[str, Any] | None,
        reason: str = "",
    ) -> DeploymentPolicyOut:
        """Set the deployment's policy (fields missing take the defaults; None removes it). Releases
        published from now on ramp under it; releases already ramping keep the policy they started with."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name, deployment=deployment_name)
        checked = None if policy is None else RolloutPolicy.from_json(policy)
        with self._changes.transaction() as (session, _changed):
            deployment = repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
            row = session.get(DeploymentRolloutPolicy, deployment.id)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.ROLLOUT_POLICY,
                app=deployment.app.name,
                deployment=deployment.name,
                before=None if row is None else {"policy": row.policy, "reason": row.reason},
                after={"policy": None if checked is None else checked.to_json(), "reason": reason},
            )
            if checked is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    DeploymentRolloutPolicy(
                        deployment_id=deployment.id,
                        policy=checked.to_json(),
                        set_by=actor.name,
                        set_at=self._clock(),
                        reason=reason,
                    )
                )
            else:
                row.policy, row.set_by, row.set_at, row.reason = (
                    checked.to_json(),
                    actor.name,
                    self._clock(),
                    reason,
                )
        return self.policy(actor, app_name, deployment_name)

    # -- the background evaluation ------------------------------------------------------------------

    def evaluate(self, counts: Counts, now: dt.datetime | None = None) -> list[Decision]:
        """Evaluate every active guarded rollout once, carrying out what each decision says; the decisions.

        A rollout that fails to be carried out (a rollback the rules refuse, say) is logged and left for
        the next evaluation; the others go on."""
        now = now or self._clock()
        with self._changes.sessions() as session:
            ids = list(
                session.scalars(
                    select(ReleaseRollout.release_id)
                    .where(ReleaseRollout.active.is_(True))
                    .order_by(ReleaseRollout.release_id)
                )
            )
        decisions = []
        for release_id in ids:
            try:
                decision = self._evaluate_one(release_id, counts, now)
            except OverairError as exc:
                log.warning("guarded rollout of release %d: %s", release_id, exc)
                continue
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _evaluate_one(self, release_id: int, counts: Counts, now: dt.datetime) -> Decision | None:
        with self._changes.sessions() as session:
            found = repo.with_history(session, release_id)
            row = session.get(ReleaseRollout, release_id)
            if found is None or row is None or not row.active:
                return None
            release, history = found
            app, deployment, label = release.deployment.app.name, release.deployment.name, release.label
            previous = _previous(history, release)
            previous_label = None if previous is None else previous.label
            policy = RolloutPolicy.from_stored(row.policy)
            state_json = dict(row.state)
        health = counts(app, deployment)
        rollout_counts = RolloutCounts(
            health.get(label, NO_REPORTS),
            None if previous_label is None else health.get(previous_label, NO_REPORTS),
        )
        state = RolloutState.from_json(state_json)
        decision = decide(policy, state, rollout_counts, now)
        if decision.verdict is Verdict.ROLL_BACK:
            try:
                self._roll_back(app, deployment, label)
            except OverairError as exc:  # the rules refuse this rollback: stop the release anyway
                decision = dataclasses.replace(
                    decision, verdict=Verdict.HALT, message=f"{decision.message} Halted instead: {exc}"
                )
        elif decision.verdict is Verdict.PROMOTE:
            assert decision.promote_to is not None
            self._releases.promote(
                ROLLOUT_POLICY,
                app,
                PromoteRequest(source=deployment, destination=decision.promote_to, label=label),
            )
        self._store(release_id, state_json, policy, state, decision, now)
        return decision

    def _roll_back(self, app: str, deployment: str, label: str) -> None:
        """The existing rollback, when ``label`` is still the deployment's newest release."""
        with self._changes.sessions() as session:
            newest = repo.releases_of(
                session, repo.get_deployment(session, repo.get_app(session, app), deployment)
            )
            if not newest or newest[-1].label != label:
                return  # something newer was published since: rolling back would undo that instead
        self._releases.rollback(ROLLOUT_POLICY, app, deployment, None)

    def _store(
        self,
        release_id: int,
        state_json: Mapping[str, Any],
        policy: RolloutPolicy,
        state: RolloutState,
        decision: Decision,
        now: dt.datetime,
    ) -> None:
        with self._changes.transaction() as (session, changed):
            if session.get_bind().dialect.name == "sqlite":
                # a write first: SQLite reads outside a transaction until one, so two evaluations could both
                # pass the check below and both record the decision (twice the same webhook event)
                session.execute(
                    update(ReleaseRollout)
                    .where(ReleaseRollout.release_id == release_id)
                    .values(updated_at=ReleaseRollout.updated_at)
                )
            row = session.get(ReleaseRollout, release_id, with_for_update=True)
            release = session.get(Release, release_id)
            if row is None or release is None or dict(row.state) != dict(state_json) or not row.active:
                return  # another host, or a person, moved this rollout since it was read
            row.decision = decision.to_json()
            row.updated_at = now
            if not decision.acts:
                return
            after = state.after(decision)
            row.state = after.to_json()
            row.active = ramp_store.is_active(after.phase, policy)
            if decision.verdict in _STOPS:
                row.halt_reason = decision.message
            if decision.verdict in (Verdict.ADVANCE, Verdict.COMPLETE):
                release.rollout = 100 if decision.verdict is Verdict.COMPLETE else decision.share
            elif decision.verdict is Verdict.HALT and not release.disabled:
                disable_release(release, ROLLOUT_POLICY.name, decision.message)
            touch(session, release.deployment, changed)
            ramp_store.record_event(
                self._changes,
                session,
                release,
                _EVENT[decision.verdict],
                ROLLOUT_POLICY.name,
                now,
                {"decision": decision.to_json(), "share": release.rollout},
            )

    # -- people's acts ------------------------------------------------------------------------------

    def act(
        self,
        actor: Principal,
        app_name: str,
        deployment_name: str,
        label: str,
        act: str,
        reason: str,
        step: int | None = None,
    ) -> ReleaseOut:
        """A person resumes the rollout (after a pause or a halt: the current step starts again, and a
        halted release is enabled), overrides its step (the share is set to ``step`` and ramping goes on
        from there), or ends the policy (the share stays as it is). Who, when and why are stored."""
        actor.require(Action.CHANGE_RELEASES, app=app_name, deployment=deployment_name)
        reason = reason.strip()
        if not reason:
            raise Invalid("Say why: the reason is stored with who acted.", fixes=[Fix("give-reason")])
        now = self._clock()
        with self._changes.transaction() as (session, changed):
            deployment = repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
            release = repo.get_release(session, deployment, label)
            row = session.get(ReleaseRollout, release.id, with_for_update=True)
            if row is None:
                raise NoGuardedRollout(
                    f"{label} of {deployment.name} does not ramp under a rollout policy.",
                    subject={"deployment": deployment.name, "release": label},
                    fixes=[Fix("set-rollout-policy", {"deployment": deployment.name})],
                )
            policy = RolloutPolicy.from_stored(row.policy)
            state = RolloutState.from_json(row.state)
            if act == "end":
                ramp_store.end(self._changes, session, release, "end", actor.name, now, reason)
            else:
                self._restart(session, row, release, policy, state, actor, act, reason, step, now)
            touch(session, deployment, changed)
            self._changes.audit.record(
                session,
                actor,
                _AUDITED[act],
                app=deployment.app.name,
                deployment=deployment.name,
                label=release.label,
                after={
                    "reason": reason,
                    "rollout": release.rollout,
                    "disabled": release.disabled,
                    **({"step": step} if act == "override" else {}),
                },
            )
            session.flush()
            out = release_out(release, deployment)
            return ramp_store.with_rollouts(session, [release], [out])[0]

    def _restart(
        self,
        session: Session,
        row: ReleaseRollout,
        release: Release,
        policy: RolloutPolicy,
        state: RolloutState,
        actor: Principal,
        act: str,
        reason: str,
        step: int | None,
        now: dt.datetime,
    ) -> None:
        """Resume or override: the rollout ramps again from ``now``."""
        where = {"deployment": release.deployment.name, "release": release.label}
        if state.phase in (Phase.ROLLED_BACK, Phase.PROMOTED):
            raise NoGuardedRollout(
                f"The rollout of {release.label} is {state.phase}: there is nothing to resume.", subject=where
            )
        if act == "override":
            if step is None:
                raise Invalid("Overriding the rollout needs the step (a percentage from 1 to 100) to set.")
            share = step
        elif state.phase not in (Phase.PAUSED, Phase.HALTED) and row.active:
            raise NoGuardedRollout(
                f"The rollout of {release.label} is {state.phase}, not paused or halted: nothing to resume.",
                subject=where,
            )
        else:
            share = state.share
        attempts = release.installs + release.failures
        restarted = RolloutState(Phase.RAMPING, share, state.started_at, now, attempts)
        if share >= 100:
            restarted = RolloutState(Phase.COMPLETED, 100, state.started_at, now, attempts)
        row.state = restarted.to_json()
        row.active = ramp_store.is_active(restarted.phase, policy)
        row.halt_reason = ""
        release.rollout = share
        if release.disabled:
            enable_release(release)
        ramp_store.add_act(row, act, actor.name, now, reason, **({"step": step} if act == "override" else {}))
        kind = EventKind.OVERRIDDEN if act == "override" else EventKind.RESUMED
        ramp_store.record_event(
            self._changes, session, release, kind, actor.name, now, {"reason": reason, "share": share}
        )

    def ramp(
        self, actor: Principal, app_name: str, deployment_name: str, label: str
    ) -> list[RolloutPointOut]:
        """The release's share over time, from its rollout events (empty: it never ramped)."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            deployment = repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
            return ramp_store.ramp_of(session, repo.get_release(session, deployment, label))

    def release(self, actor: Principal, app_name: str, deployment_name: str, label: str) -> ReleaseOut:
        """One release with its guarded rollout."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            deployment = repo.get_deployment(session, repo.get_app(session, app_name), deployment_name)
            release = repo.get_release(session, deployment, label)
            return ramp_store.with_rollouts(session, [release], [release_out(release, deployment)])[0]
