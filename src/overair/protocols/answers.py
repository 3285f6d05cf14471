"""The cached answer to an update check, one mechanism for every device protocol.

Devices that send the same query get one of at most two answers: the one for devices inside the rollout
of a release still rolling out, and the one for everybody else. Both are device-independent, so each is
planned and encoded once per deployment generation (in the :class:`~overair.releases.devices.DeviceCache`
memo) and a request costs a memo lookup plus the device's rollout bucket. Adapters differ only in how they
encode a decision and which rollout hash their clients use (``DeviceQuery.rollout_hash``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

from overair.errors import DatabaseDown, note_outage
from overair.releases.devices import DeviceCache
from overair.releases.snapshots import DeviceSnapshot
from overair.selection import Decision, DecisionKind, DeviceQuery, Plan, plan_update, takes_rollout
from overair.storage import StorageUnavailable

NO_UPDATE = Decision(DecisionKind.NO_UPDATE)
UNKNOWN = DeviceSnapshot(generation=-1, store_only=False, releases=())
"""What an update check is answered with while the database is down and nothing is known of the deployment."""

Encode = Callable[[Decision, DeviceSnapshot], bytes]
"""A protocol's encoder: the answer's bytes for one decision (the snapshot offers deltas, diffs…)."""


log = logging.getLogger("overair")


class _Degraded(Exception):
    """An answer could not be built (its download URLs need the object store): "no update" instead."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _Answers:
    plan: Plan
    outside: bytes
    inside: bytes


async def cached_answer(
    cache: DeviceCache,
    deployment_key: str,
    query: DeviceQuery,
    memo_key: Hashable,
    encode: Encode,
    client_id: str,
) -> bytes | None:
    """The encoded answer for the device ``client_id``, or None for an unknown deployment key.

    ``encode`` runs once per deployment generation and ``memo_key``, never per request: the memo key must
    name everything the encoding depends on besides the snapshot (the query, the download base, the
    dialect…) and start with the protocol's name, as adapters share the cache.
    """

    def build(snapshot: DeviceSnapshot) -> _Answers:
        plan = plan_update(snapshot.releases, replace(query, store_only=snapshot.store_only))
        try:
            outside = encode(plan.decision, snapshot)
            inside = outside if plan.rollout_decision is None else encode(plan.rollout_decision, snapshot)
        except StorageUnavailable as exc:
            note_outage(exc, "object store")
            raise _Degraded(encode(NO_UPDATE, snapshot)) from exc
        return _Answers(plan, outside, inside)

    try:
        answers = await cache.get(deployment_key, memo_key, build)
    except _Degraded as degraded:  # never cached: the next check tries again
        return degraded.answer
    except DatabaseDown as exc:
        # nothing known of this deployment and no database to ask: keep what you run, undo nothing
        note_outage(exc.__cause__ if isinstance(exc.__cause__, Exception) else exc)
        return encode(NO_UPDATE, UNKNOWN)
    if answers is None:
        return None
    return answers.inside if takes_rollout(answers.plan, client_id, query.rollout_hash) else answers.outside
