"""Who may do what: roles, organisation roles and key scopes, as pure functions over a request's snapshot.

Each rule is written once here and table-tested (``tests/unit/auth/test_roles.py``):

- an app role gives a fixed set of actions (:data:`ROLE_ACTIONS`); a developer releases only to
  deployments that are not production;
- an organisation role gives a role on every app the organisation owns (:data:`ORG_APP_ROLE`);
  an account's role on an app is the highest of what it owns, what its organisations give and its grant;
- a key's scope only narrows: it never grants more than its account;
- server admins may do everything; accounts without an app role cannot even see the app.

:class:`Access` is what :class:`~overair.auth.principal.Principal` carries: loaded once per request,
so that deciding is pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from overair.auth.actions import Action
from overair.errors import ErrorKind, OverairError


class Role(StrEnum):
    """A role on one app, from the most to the least powerful."""

    OWNER = "owner"
    ADMIN = "admin"
    RELEASE_MANAGER = "release-manager"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class OrgRole(StrEnum):
    """A role in an organisation."""

    ADMIN = "admin"
    MEMBER = "member"


RANK = {role: rank for rank, role in enumerate(reversed(Role))}
"""How powerful each role is (viewer 0 … owner 4)."""

_VIEWER = frozenset({Action.READ})
_DEVELOPER = _VIEWER | {Action.PUBLISH, Action.CHANGE_RELEASES, Action.MANAGE_BINARIES}
_RELEASE_MANAGER = _DEVELOPER
_ADMIN = _RELEASE_MANAGER | {
    Action.MANAGE_APPS,
    Action.MANAGE_DEPLOYMENTS,
    Action.MANAGE_SIGNING_KEYS,
    Action.MANAGE_COLLABORATORS,
}
_OWNER = _ADMIN | {Action.REMOVE_APPS, Action.TRANSFER_APPS}

ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.OWNER: _OWNER,
    Role.ADMIN: _ADMIN,
    Role.RELEASE_MANAGER: _RELEASE_MANAGER,
    Role.DEVELOPER: _DEVELOPER,
    Role.VIEWER: _VIEWER,
}
"""What each app role may do on its app (a developer's releases: non-production deployments only)."""

RELEASING = frozenset({Action.PUBLISH, Action.CHANGE_RELEASES})
"""Actions on a deployment's releases: a developer may do them only where the deployment is not
production."""

ORG_APP_ROLE: Mapping[OrgRole, Role] = {OrgRole.ADMIN: Role.OWNER, OrgRole.MEMBER: Role.VIEWER}
"""The role an organisation role gives on the organisation's apps (App Center: admins manage, members
see; a grant can give a member more on one app)."""

ACCOUNT_ACTIONS = frozenset({Action.CREATE_APPS, Action.MANAGE_ACCESS_KEYS, Action.MANAGE_ORGANISATIONS})
"""What every account may do without an app: create apps (it owns them), manage its own keys, create
organisations (it administers them)."""

SERVER_ACTIONS = frozenset({Action.MANAGE_ACCOUNTS, Action.OPERATE_SERVER})
"""What only server admins may do."""


def highest(roles: Iterable[Role | None]) -> Role | None:
    """The most powerful of ``roles`` (None: none at all)."""
    given = [r for r in roles if r is not None]
    return max(given, key=RANK.__getitem__) if given else None


def effective_role(owns: bool, org_role: OrgRole | None, grant: Role | None) -> Role | None:
    """An account's role on an app: owner if it owns the app, else the higher of what its organisation
    role (for an organisation's app) and its grant give."""
    if owns:
        return Role.OWNER
    return highest([ORG_APP_ROLE[org_role] if org_role else None, grant])


def role_allows(role: Role, action: Action, production: bool) -> bool:
    """Whether ``role`` may do ``action`` on its app (``production``: the deployment acted on is one)."""
    if action not in ROLE_ACTIONS[role]:
        return False
    return not (role is Role.DEVELOPER and action in RELEASING and production)


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What a key is limited to (None: no limit of that kind). Names compare without case for
    deployments, exactly for apps. Reading is part of every scope: a key sees what it may act on."""

    apps: frozenset[str] | None = None
    deployments: frozenset[str] | None = None
    actions: frozenset[Action] | None = None

    @classmethod
    def of(
        cls,
        apps: Collection[str] | None,
        deployments: Collection[str] | None,
        actions: Collection[str] | None,
    ) -> KeyScope:
        """A scope from stored lists."""
        return cls(
            frozenset(apps) if apps is not None else None,
            frozenset(d.lower() for d in deployments) if deployments is not None else None,
            frozenset(Action(a) for a in actions) if actions is not None else None,
        )

    @property
    def unlimited(self) -> bool:
        """Whether the key has no scope at all."""
        return self.apps is None and self.deployments is None and self.actions is None

    def allows(self, action: Action, app: str | None, deployment: str | None) -> bool:
        """Whether the scope lets the key try ``action`` (its account must allow it too)."""
        if self.actions is not None and action is not Action.READ and action not in self.actions:
            return False
        if self.apps is not None and (app is None or app not in self.apps):
            return False
        if self.deployments is not None and action is not Action.READ:
            return deployment is not None and deployment.lower() in self.deployments
        return True

    def within(self, other: KeyScope) -> bool:
        """Whether this scope is no wider than ``other`` (a key may only make keys narrower than itself)."""
        return all(
            theirs is None or (mine is not None and set(mine) <= set(theirs))
            for mine, theirs in (
                (self.apps, other.apps),
                (self.deployments, other.deployments),
                (self.actions, other.actions),
            )
        )


UNSCOPED = KeyScope()


@dataclass(frozen=True, slots=True)
class Access:
    """What one account may do during one request, and through which key scope."""

    account: str
    server_admin: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    """The account's role on each app it can see, by app name."""
    production: frozenset[tuple[str, str]] = frozenset()
    """(app, deployment in lower case) of the production deployments of those apps."""
    stewards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Who can grant rights on each of those apps (its owners and admins), by app name."""
    organisations: Mapping[str, OrgRole] = field(default_factory=dict)
    """The account's role in each organisation it belongs to."""
    scope: KeyScope = UNSCOPED
    server_admins: tuple[str, ...] = ()
    """Who can grant what only server admins may do (the enabled server admins), for refusals."""
    organisation_admins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The admins of each organisation the account belongs to, for refusals."""

    def sees(self, app: str) -> bool:
        """Whether the app exists for this account and key at all (others answer as unknown)."""
        return self.allows(Action.READ, app, None)

    def account_allows(
        self, action: Action, app: str | None, deployment: str | None, organisation: str | None = None
    ) -> bool:
        """Whether the account (any key of it, unscoped) may do ``action``."""
        if self.server_admin:
            return True
        if action in SERVER_ACTIONS:
            return False
        if organisation is not None and action is Action.MANAGE_ORGANISATIONS:
            return self.organisations.get(organisation) is OrgRole.ADMIN
        if app is None:
            return action in ACCOUNT_ACTIONS
        role = self.roles.get(app)
        if role is None:
            return False
        production = deployment is not None and (app, deployment.lower()) in self.production
        return role_allows(role, action, production)

    def allows(
        self, action: Action, app: str | None, deployment: str | None, organisation: str | None = None
    ) -> bool:
        """Whether this account, through this key, may do ``action``."""
        return self.scope.allows(action, app, deployment) and self.account_allows(
            action, app, deployment, organisation
        )


class GrantRefused(OverairError):
    """A role change beyond what the acting account's own role allows."""

    kind = ErrorKind.FORBIDDEN


def check_grant(app: str, actor_role: Role | None, current: Role | None, wanted: Role | None) -> None:
    """Refuse a collaborator change (``current`` → ``wanted``, None: no grant) that the acting role may not
    make (``actor_role`` None: a server admin, who may make any). Only owners make or unmake owners."""
    if actor_role is None or actor_role is Role.OWNER:
        return
    if Role.OWNER in (current, wanted):
        raise GrantRefused(
            f"Only an owner of {app} can give or take away the owner role; an {actor_role} manages the "
            "other roles.",
            subject={"app": app},
        )


def least_role(action: Action, production: bool) -> Role | None:
    """The least powerful role that may do ``action`` (on a production deployment), None: no app role."""
    for role in sorted(Role, key=RANK.__getitem__):
        if role_allows(role, action, production):
            return role
    return None
