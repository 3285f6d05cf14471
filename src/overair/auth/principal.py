"""Who is acting: one :class:`Principal` per request, built by each surface and passed to every service.

The management API, the CodePush dialects and the console authenticate in their own way, then hand the
services the same object: who acts, through which key, from which surface and client, with which rights.
Services ask :meth:`Principal.require` before they read or change anything (the one place rights are
checked), and record :attr:`Principal.name` as the author of what they store. What an account may do
through a key is its :class:`~overair.auth.roles.Access`, loaded once per request; the rules themselves
are the pure functions of :mod:`overair.auth.roles`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from overair.auth.actions import Action
from overair.auth.roles import SERVER_ACTIONS, Access, Role, least_role
from overair.errors import ErrorKind, Fix, NotFound, OverairError

__all__ = ["ALL_ACTIONS", "SYSTEM", "Action", "AppNotFound", "Forbidden", "Principal", "Surface"]


class Surface(StrEnum):
    """Where a request came in."""

    API = "api"
    CODEPUSH = "codepush"
    CONSOLE = "console"
    SYSTEM = "system"


ALL_ACTIONS = frozenset(Action)


class Forbidden(OverairError):
    """The principal is known but may not do this."""

    kind = ErrorKind.FORBIDDEN


class AppNotFound(NotFound):
    """No app by that name (or none this principal may see: the answer is the same)."""


def _words(action: Action) -> str:
    return action.value.replace("-", " ")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor for the length of one request."""

    name: str
    """Who acts (recorded as the author of releases, binaries and keys)."""
    key_id: int | None
    """The access key used (None for the server itself)."""
    surface: Surface
    rights: frozenset[Action] = ALL_ACTIONS
    """An upper bound on what this principal may do, whoever it is."""
    client_address: str | None = None
    user_agent: str | None = None
    access: Access | None = None
    """The account's roles and the key's scope for this request (None: the server itself, unlimited)."""

    @property
    def account(self) -> str | None:
        """The account acting (None: the server itself)."""
        return self.access.account if self.access is not None else None

    @property
    def server_admin(self) -> bool:
        """Whether the principal may do everything (the server itself, or a server admin's unscoped key)."""
        return self.access is None or (self.access.server_admin and self.access.scope.unlimited)

    def may(
        self,
        action: Action,
        *,
        app: str | None = None,
        deployment: str | None = None,
        organisation: str | None = None,
    ) -> bool:
        """Whether this principal may do ``action`` (on ``app``, ``deployment`` or ``organisation``)."""
        if action not in self.rights:
            return False
        return self.access is None or self.access.allows(action, app, deployment, organisation)

    def role_on(self, app: str) -> Role | None:
        """The principal's role on ``app`` (None: it has none, or is the server or a server admin)."""
        if self.access is None or self.access.server_admin:
            return None
        return self.access.roles.get(app)

    def sees(self, app: str) -> bool:
        """Whether ``app`` exists for this principal at all (others answer as if there were no such app)."""
        return self.access is None or self.access.sees(app)

    def require(
        self,
        action: Action,
        *,
        app: str | None = None,
        deployment: str | None = None,
        organisation: str | None = None,
    ) -> None:
        """Raise unless :meth:`may` allows ``action``: :class:`AppNotFound` when the app is one this
        principal cannot see (so that other apps' names never leak), else :class:`Forbidden` naming the
        missing right and who can grant it."""
        if self.may(action, app=app, deployment=deployment, organisation=organisation):
            return
        access = self.access
        if app is not None and access is not None and not access.sees(app):
            if access.server_admin:  # a server admin's scoped key: the apps of its scope
                visible = sorted(access.scope.apps or ())
            else:
                visible = sorted(a for a in access.roles if access.sees(a))
            raise AppNotFound(
                f'No app named "{app}" (apps: {", ".join(visible) or "none yet"}).',
                subject={"app": app},
                fixes=[Fix("create-app", {"app": app})],
            )
        raise Forbidden(
            self._refusal(action, app, deployment, organisation),
            subject=_subject(app, deployment),
            fixes=self._fixes(action, app, deployment, organisation),
        )

    def _fixes(
        self, action: Action, app: str | None, deployment: str | None, organisation: str | None = None
    ) -> list[Fix]:
        """What the caller can do: ask for a role (naming the least one that would do), or use a key
        whose scope includes this."""
        access = self.access
        if access is None or action not in self.rights:
            return []
        if not access.scope.allows(action, app, deployment):
            return [Fix("use-wider-key", {"access_key": self.name})]
        if app is None and organisation is not None and action not in SERVER_ACTIONS:
            admins = ", ".join(access.organisation_admins.get(organisation, ())) or "a server admin"
            return [Fix("ask-organisation-admin", {"organisation": organisation, "by": admins})]
        if app is None:
            admins = ", ".join(access.server_admins) or "a server admin"
            return [Fix("ask-server-admin", {"by": admins})] if action in SERVER_ACTIONS else []
        production = deployment is not None and (app, deployment.lower()) in access.production
        role = least_role(action, production)
        if role is None:
            return []
        stewards = ", ".join(access.stewards.get(app, ())) or "a server admin"
        return [
            Fix("grant-role", {"app": app, "account": access.account, "role": role.value, "by": stewards})
        ]

    def _refusal(
        self, action: Action, app: str | None, deployment: str | None, organisation: str | None
    ) -> str:
        where = f" on {app}" + (f"/{deployment}" if deployment else "") if app else ""
        if organisation:
            where = f" of the organisation {organisation}"
        said = f'"{self.name}" may not {_words(action)}{where}'
        access = self.access
        if access is None or action not in self.rights:
            return said + "."
        if not access.scope.allows(action, app, deployment):
            return (
                f"{said}: the key is limited to {_scope_words(access)}. Use another key, or ask for a key "
                "whose scope includes it."
            )
        if app is None:
            if organisation:
                admins = ", ".join(access.organisation_admins.get(organisation, ())) or "a server admin"
                return f"{said}: only the organisation's admins may ({admins})."
            admins = ", ".join(access.server_admins) or "a server admin"
            return f"{said}: only a server admin may ({admins})."
        role = access.roles.get(app)
        stewards = ", ".join(access.stewards.get(app, ())) or "a server admin"
        reason = f'the account "{access.account}" is {_article(role)} of {app}' if role else ""
        if role == "developer" and deployment and action in {Action.PUBLISH, Action.CHANGE_RELEASES}:
            reason += f", and {deployment} is a production deployment"
        return (
            f"{said} ({_words(action)} is missing: {reason}). Who can grant it: the owners and admins of "
            f"{app} ({stewards})."
        )


def _article(role: object) -> str:
    word = str(role)
    return ("an " if word[0] in "aeiou" else "a ") + word


def _scope_words(access: Access) -> str:
    scope = access.scope
    parts = []
    if scope.apps is not None:
        parts.append("apps " + ", ".join(sorted(a for a in scope.apps if access.sees(a))))
    if scope.deployments is not None:
        parts.append("deployments " + ", ".join(sorted(scope.deployments)))
    if scope.actions is not None:
        parts.append("actions " + ", ".join(sorted(a.value for a in scope.actions)))
    return "; ".join(parts)


def _subject(app: str | None, deployment: str | None) -> dict[str, str]:
    return {k: v for k, v in (("app", app), ("deployment", deployment)) if v}


SYSTEM = Principal(name="overair", key_id=None, surface=Surface.SYSTEM)
"""The server acting by itself (background work, start-up)."""
