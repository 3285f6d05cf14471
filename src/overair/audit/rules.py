"""The audit log's rules, pure: the action verbs, who acted, and what changed.

Each rule is here once: :func:`actor_columns` is the only place a :class:`Principal` becomes stored
columns (the account and the key that acted), :func:`surface_of` the only place the surface is
decided, :func:`changed` the only place the before and after of a change are cut down to what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from overair.auth.principal import Principal, Surface

CLI_AGENT = "overair-cli"
"""How the ``overair`` CLI names itself in its User-Agent (``overair-cli/<version>``)."""
CLI = "cli"
"""The surface recorded for a management API call made by the ``overair`` CLI."""
SURFACES = (Surface.API.value, Surface.CODEPUSH.value, Surface.CONSOLE.value, CLI, Surface.SYSTEM.value)


class AuditAction(StrEnum):
    """What an event records: stable verbs, ``<subject>.<change>`` (filters and scripts rely on them)."""

    APP_CREATE = "app.create"
    APP_RENAME = "app.rename"
    APP_DISTRIBUTION = "app.distribution"
    APP_REMOVE = "app.remove"
    APP_TRANSFER = "app.transfer"
    """The app was given to another account or organisation."""
    DEPLOYMENT_CREATE = "deployment.create"
    DEPLOYMENT_RENAME = "deployment.rename"
    DEPLOYMENT_REMOVE = "deployment.remove"
    DEPLOYMENT_CLEAR = "deployment.clear-history"
    RELEASE_PUBLISH = "release.publish"
    RELEASE_PATCH = "release.patch"
    """Rollout, mandatory, disabled, description or targeting of a release changed."""
    RELEASE_PROMOTE = "release.promote"
    RELEASE_ROLLBACK = "release.rollback"
    ROLLOUT_POLICY = "rollout.policy"
    """A deployment's rollout policy was set, changed or removed."""
    ROLLOUT_RESUME = "rollout.resume"
    ROLLOUT_OVERRIDE = "rollout.override"
    ROLLOUT_END = "rollout.end"
    """A person ended a release's guarded rollout (on its own, or to publish over it)."""
    BINARY_REGISTER = "binary.register"
    SIGNING_KEY_ADD = "signing-key.add"
    SIGNING_KEY_RETIRE = "signing-key.retire"
    ACCESS_KEY_CREATE = "access-key.create"
    ACCESS_KEY_RENAME = "access-key.rename"
    ACCESS_KEY_EXPIRY = "access-key.expiry"
    ACCESS_KEY_REVOKE = "access-key.revoke"
    COLLABORATOR_ADD = "collaborator.add"
    COLLABORATOR_ROLE = "collaborator.role"
    COLLABORATOR_REMOVE = "collaborator.remove"
    REHEARSAL_CLEAR = "rehearsal.clear"
    """The traces simulated devices left on a deployment were removed."""
    DEPLOYMENT_PRODUCTION = "deployment.production"
    """Whether a deployment counts as production (developers may not release to it) changed."""
    ACCOUNT_CREATE = "account.create"
    ACCOUNT_DISABLE = "account.disable"
    ACCOUNT_ENABLE = "account.enable"
    ORGANISATION_CREATE = "organisation.create"
    MEMBER_ADD = "member.add"
    """An account joined an organisation (``item``: the organisation)."""
    MEMBER_ROLE = "member.role"
    MEMBER_REMOVE = "member.remove"


def surface_of(actor: Principal) -> str:
    """Where the change came from: the principal's surface, except that a management API call made by the
    ``overair`` CLI (its User-Agent starts with :data:`CLI_AGENT`) is recorded as ``cli``."""
    if actor.surface is Surface.API and (actor.user_agent or "").startswith(CLI_AGENT):
        return CLI
    return actor.surface.value


def actor_columns(actor: Principal) -> dict[str, Any]:
    """Who acted, as the event's columns: the key's name, its account, the key, the surface, the client
    address and the user agent."""
    return {
        "actor": actor.name[:200],
        "account": actor.account,
        "key_id": actor.key_id,
        "surface": surface_of(actor),
        "client_address": _cut(actor.client_address, 100),
        "user_agent": _cut(actor.user_agent, 300),
    }


def _cut(text: str | None, length: int) -> str | None:
    return text[:length] if text else None


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: datetimes as ISO 8601 text, enums as their values."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def changed(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before and after of a change, kept to the fields that differ (a creation has no before, a
    removal no after: each keeps every field it was given)."""
    old, new = plain(dict(before or {})), plain(dict(after or {}))
    if not old or not new:
        return old, new
    keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
    return {k: old[k] for k in keys if k in old}, {k: new[k] for k in keys if k in new}
