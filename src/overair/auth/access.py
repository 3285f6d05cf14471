"""Load what an account may do for one request: its :class:`~overair.auth.roles.Access` snapshot.

One read per request of the account's app roles (owned apps, organisation apps, grants), the
production deployments of those apps and who can grant rights on them; deciding is then pure.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Boolean, Integer, String, column, or_, select, table
from sqlalchemy.orm import Session

from overair.auth.models import AccessKey, Account, AppGrant, Organisation, OrganisationMember
from overair.auth.roles import Access, KeyScope, OrgRole, Role, effective_role

# the release domain's tables, as far as rights need them (auth does not import the release domain)
_apps = table(
    "apps",
    column("id", Integer),
    column("name", String),
    column("owner_account_id", Integer),
    column("owner_organisation_id", Integer),
)
_deployments = table(
    "deployments", column("app_id", Integer), column("name", String), column("production", Boolean)
)


def key_scope(key: AccessKey) -> KeyScope:
    """The stored scope of ``key``."""
    return KeyScope.of(key.scope_apps, key.scope_deployments, key.scope_actions)


def load_access(session: Session, key: AccessKey) -> Access:
    """What ``key``'s account may do now, through ``key``."""
    account = key.account
    scope = key_scope(key)
    if account.server_admin:
        return Access(account.name, server_admin=True, scope=scope)
    memberships = {
        org_id: OrgRole(role)
        for org_id, role in session.execute(
            select(OrganisationMember.organisation_id, OrganisationMember.role).where(
                OrganisationMember.account_id == account.id
            )
        )
    }
    org_names = {
        org_id: name
        for org_id, name in session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(memberships))
        )
    }
    grants = {
        app_id: Role(role)
        for app_id, role in session.execute(
            select(AppGrant.app_id, AppGrant.role).where(AppGrant.account_id == account.id)
        )
    }
    apps = session.execute(
        select(_apps.c.id, _apps.c.name, _apps.c.owner_account_id, _apps.c.owner_organisation_id).where(
            or_(
                _apps.c.owner_account_id == account.id,
                _apps.c.owner_organisation_id.in_(memberships),
                _apps.c.id.in_(grants),
            )
        )
    ).all()
    roles: dict[str, Role] = {}
    for app_id, name, owner_account, owner_org in apps:
        role = effective_role(
            owner_account == account.id, memberships.get(owner_org) if owner_org else None, grants.get(app_id)
        )
        if role is not None:
            roles[name] = role
    app_ids = [a[0] for a in apps]
    production = frozenset(
        (app, deployment.lower())
        for app, deployment in session.execute(
            select(_apps.c.name, _deployments.c.name)
            .join(_deployments, _deployments.c.app_id == _apps.c.id)
            .where(_apps.c.id.in_(app_ids), _deployments.c.production.is_(True))
        )
    )
    return Access(
        account.name,
        roles=roles,
        production=production,
        stewards=stewards(session, app_ids),
        organisations={org_names[i]: r for i, r in memberships.items() if i in org_names},
        scope=scope,
        server_admins=tuple(
            session.scalars(
                select(Account.name)
                .where(Account.server_admin.is_(True), Account.disabled.is_(False))
                .order_by(Account.name)
            )
        ),
        organisation_admins=_organisation_admins(session, org_names),
    )


def _organisation_admins(session: Session, org_names: dict[int, str]) -> dict[str, tuple[str, ...]]:
    """The admins of each of these organisations (by name): who can grant a role in them."""
    found: defaultdict[str, list[str]] = defaultdict(list)
    for org_id, who in session.execute(
        select(OrganisationMember.organisation_id, Account.name)
        .join(Account, Account.id == OrganisationMember.account_id)
        .where(
            OrganisationMember.organisation_id.in_(org_names),
            OrganisationMember.role == OrgRole.ADMIN.value,
        )
        .order_by(Account.name)
    ):
        found[org_names[org_id]].append(who)
    return {name: tuple(who) for name, who in found.items()}


def stewards(session: Session, app_ids: list[int]) -> dict[str, tuple[str, ...]]:
    """Who can grant rights on each app (by name): its owning account, the admins of its owning
    organisation, and the accounts granted owner or admin."""
    found: defaultdict[str, set[str]] = defaultdict(set)
    if not app_ids:
        return {}
    for app, who in session.execute(
        select(_apps.c.name, Account.name)
        .join(Account, Account.id == _apps.c.owner_account_id)
        .where(_apps.c.id.in_(app_ids), Account.disabled.is_(False))
    ):
        found[app].add(who)
    for app, who in session.execute(
        select(_apps.c.name, Account.name)
        .join(OrganisationMember, OrganisationMember.organisation_id == _apps.c.owner_organisation_id)
        .join(Account, Account.id == OrganisationMember.account_id)
        .where(
            _apps.c.id.in_(app_ids),
            OrganisationMember.role == OrgRole.ADMIN.value,
            Account.disabled.is_(False),
        )
    ):
        found[app].add(who)
    for app, who in session.execute(
        select(_apps.c.name, Account.name)
        .join(AppGrant, AppGrant.app_id == _apps.c.id)
        .join(Account, Account.id == AppGrant.account_id)
        .where(
            _apps.c.id.in_(app_ids),
            AppGrant.role.in_([Role.OWNER.value, Role.ADMIN.value]),
            Account.disabled.is_(False),
        )
    ):
        found[app].add(who)
    return {app: tuple(sorted(names)) for app, names in found.items()}
