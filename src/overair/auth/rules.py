"""The access-key rules, each written once and pure (facts in, verdict out), table-tested.

- A key never creates or extends a key beyond its own expiry: an expiring key cannot mint a key that
  outlives it, nor extend itself.
- The last key that can manage keys and never expires can never be revoked or given an expiry by a
  call: once every such key was gone, the server would be locked until an operator restarts it with
  ``--new-admin-key``.
- A key cannot revoke the key it was created by.
"""

from __future__ import annotations

import datetime as dt

from overair.auth.roles import KeyScope
from overair.errors import Conflict, Fix, Invalid


class KeyOutlivesCreator(Invalid):
    """A key would expire after the key that makes or changes it."""


class LastKeyManager(Conflict):
    """The change would leave no key that can manage keys."""


class CreatorKey(Conflict):
    """A key tried to revoke the key that created it."""


def check_expiry(actor: str, actor_expires_at: dt.datetime | None, wanted: dt.datetime | None) -> None:
    """Refuse an expiry (``wanted``, None: never) later than the acting key's own."""
    if actor_expires_at is None:
        return
    if wanted is None or wanted > actor_expires_at:
        asked = "never expires" if wanted is None else f"expires on {wanted:%Y-%m-%d %H:%M} UTC"
        raise KeyOutlivesCreator(
            f'The key "{actor}" expires on {actor_expires_at:%Y-%m-%d %H:%M} UTC, so it cannot make or '
            f"extend a key that {asked}: keys never outlive the key that made or extended them. Choose an "
            "expiry no later than that, or use a key that does not expire.",
            subject={"access_key": actor},
        )


def check_not_creator(target: str, target_id: int, actor_creator_id: int | None) -> None:
    """Refuse revoking ``target`` with a key that ``target`` created."""
    if actor_creator_id is not None and actor_creator_id == target_id:
        raise CreatorKey(
            f'"{target}" created the key you are using, so it cannot be revoked with it: use "{target}" '
            "itself or another admin key.",
            subject={"access_key": target},
        )


def check_keeps_a_manager(target: str, target_lasts: bool, lasting_managers: int) -> None:
    """Refuse revoking or expiring ``target`` when it is the last key that can manage keys and never
    expires (``lasting_managers`` counts those keys, ``target`` included when ``target_lasts``)."""
    if target_lasts and lasting_managers <= 1:
        raise LastKeyManager(
            f'"{target}" is the last key that can manage keys and never expires: without it, nobody '
            "could make keys once the others expire. Create another admin key first, then change this one.",
            subject={"access_key": target},
            fixes=[Fix("create-access-key")],
        )


class ScopeTooWide(Invalid):
    """A key would be allowed more than the key that makes it."""


def check_scope_within(actor: str, wanted: KeyScope, actor_scope: KeyScope) -> None:
    """Refuse a key scope wider than the acting key's own (a limited key makes only narrower keys)."""
    if not wanted.within(actor_scope):
        raise ScopeTooWide(
            f'The key "{actor}" is limited, so the keys it makes must be limited at least as much: give the '
            "new key the same apps, deployments and actions, or fewer.",
            subject={"access_key": actor},
        )
