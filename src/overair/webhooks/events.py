"""The payloads of the events overair emits today, built from what the domains already answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from overair.releases.models import RolloutEvent
from overair.releases.ramp_store import EventKind
from overair.releases.schemas import ReleaseOut
from overair.webhooks.service import Webhooks

RELEASE_FIELDS = (
    "label",
    "package_hash",
    "target_version",
    "build_number",
    "rollout",
    "mandatory",
    "disabled",
    "description",
    "released_by",
    "released_at",
    "method",
    "origin_label",
    "origin_deployment",
)
"""What a ``release.published`` event tells of the release (not its metrics, which are all zero yet)."""


def release_published(release: ReleaseOut) -> dict[str, Any]:
    """The payload of ``release.published``: the deployment and the release (``method`` says whether it was
    uploaded, promoted or a rollback's republication)."""
    return {
        "deployment": release.deployment,
        "release": release.model_dump(mode="json", include=set(RELEASE_FIELDS)),
    }


ROLLOUT_EVENTS = {
    EventKind.STEP: "rollout.step",
    EventKind.PAUSED: "rollout.paused",
    EventKind.HALTED: "rollout.halted",
    EventKind.ROLLED_BACK: "rollout.rolled_back",
    EventKind.PROMOTED: "rollout.promoted",
    EventKind.COMPLETED: "rollout.completed",
}
"""The webhook event each kind of stored rollout event is told as (the one place they are paired). The
other kinds (started: the release's ``release.published`` tells it; people's resume, override and end: the
audit log records them) are not sent."""


def rollout_event(event: RolloutEvent) -> tuple[str, dict[str, Any]] | None:
    """The webhook event and payload telling of a stored rollout event, or None if it is not sent.

    The payload: ``deployment``, ``release`` (the label), ``percentage`` (the release's share after it),
    ``actor``, ``at``; ``reason`` (the decision's message, with the numbers that triggered it), ``gates``
    (each gate's value against its threshold) and ``counts`` (install attempts and failures of the release
    and of its predecessor) from the policy's decision; ``to_deployment`` when promoted."""
    name = ROLLOUT_EVENTS.get(event.kind)
    if name is None:
        return None
    decision: dict[str, Any] = dict(event.payload.get("decision") or {})
    payload: dict[str, Any] = {
        "deployment": event.deployment,
        "release": event.label,
        "percentage": event.payload.get("share"),
        "actor": event.actor,
        "at": event.at,
        "reason": decision.get("message", ""),
        "verdict": decision.get("verdict"),
        "gates": decision.get("gates", []),
        "counts": {"release": decision.get("release"), "previous": decision.get("previous")},
        "step_sample": decision.get("step_sample"),
    }
    if decision.get("promote_to"):
        payload["to_deployment"] = decision["promote_to"]
    return name, payload


def tell_rollout(webhooks: Webhooks, session: Session, event: RolloutEvent) -> None:
    """Queue the webhook event telling of a stored rollout event (if it is told), in its transaction."""
    told = rollout_event(event)
    if told is not None:
        webhooks.emit(event.app, told[0], told[1], session=session)
