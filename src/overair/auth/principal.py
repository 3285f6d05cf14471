"""Who is acting: one :class:`Principal` per request, built by each surface and passed to every service.

The management API, the CodePush dialects and the console authenticate in their own way, then hand the
services the same object: who acts, through which key, from which surface and client, with which rights.
Services ask :meth:`Principal.require` before they read or change anything, and record
:attr:`Principal.name` as the author of what they store. Today every valid key has every right; roles and
scoped keys narrow :attr:`Principal.rights` without any service changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from overair.errors import ErrorKind, OverairError


class Surface(StrEnum):
    """Where a request came in."""

    API = "api"
    CODEPUSH = "codepush"
    CONSOLE = "console"
    SYSTEM = "system"


class Action(StrEnum):
    """What a principal may be allowed to do."""

    READ = "read"
    MANAGE_APPS = "manage-apps"
    MANAGE_DEPLOYMENTS = "manage-deployments"
    MANAGE_BINARIES = "manage-binaries"
    MANAGE_SIGNING_KEYS = "manage-signing-keys"
    PUBLISH = "publish"
    CHANGE_RELEASES = "change-releases"
    MANAGE_ACCESS_KEYS = "manage-access-keys"
    OPERATE_SERVER = "operate-server"
    """See the server's own work (background jobs): an administrator's right."""


ALL_ACTIONS = frozenset(Action)


class Forbidden(OverairError):
    """The principal is known but may not do this."""

    kind = ErrorKind.FORBIDDEN


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor for the length of one request."""

    name: str
    """Who acts (recorded as the author of releases, binaries and keys)."""
    key_id: int | None
    """The access key used (None for the server itself)."""
    surface: Surface
    rights: frozenset[Action] = ALL_ACTIONS
    client_address: str | None = None
    user_agent: str | None = None

    def may(self, action: Action, *, app: str | None = None, deployment: str | None = None) -> bool:
        """Whether this principal may do ``action`` (on ``app`` and ``deployment``, where named)."""
        return action in self.rights

    def require(self, action: Action, *, app: str | None = None, deployment: str | None = None) -> None:
        """Raise :class:`Forbidden` unless :meth:`may` allows ``action``."""
        if not self.may(action, app=app, deployment=deployment):
            where = f" on {app}" + (f"/{deployment}" if deployment else "") if app else ""
            raise Forbidden(
                f'"{self.name}" may not {action.value.replace("-", " ")}{where}.',
                subject={k: v for k, v in (("app", app), ("deployment", deployment)) if v},
            )


SYSTEM = Principal(name="overair", key_id=None, surface=Surface.SYSTEM)
"""The server acting by itself (background work, start-up)."""
