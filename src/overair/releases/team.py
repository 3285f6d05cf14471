"""Who works on an app: its owner, its collaborators (accounts with a role), transfer, and which
deployments count as production."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair.audit.rules import AuditAction
from overair.auth.models import Account, AppGrant, Organisation, OrganisationMember
from overair.auth.principal import Action, Principal
from overair.auth.roles import ORG_APP_ROLE, RANK, OrgRole, Role, check_grant
from overair.errors import Conflict, Invalid, NotFound
from overair.releases import repository as repo
from overair.releases.models import App
from overair.releases.outputs import app_out, deployment_out, owner_of
from overair.releases.schemas import AppOut, CollaboratorOut, DeploymentOut
from overair.releases.unit import Changes


class NoSuchAccount(NotFound):
    """No account by that name."""


class NoSuchOrganisation(NotFound):
    """No organisation by that name."""


class NotACollaborator(NotFound):
    """The account has no role granted on the app."""


class AlreadyCollaborator(Conflict):
    """The account already has a role granted on the app."""


class OwnerStays(Conflict):
    """The owning account cannot be removed from its app: transfer the app first."""


def account_named(session: Session, name: str) -> Account:
    """The enabled account ``name``, or :class:`NoSuchAccount`."""
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None or account.disabled:
        raise NoSuchAccount(f'No account named "{name}".', subject={"account": name})
    return account


class TeamService:
    """Collaborators and ownership of apps, over the database; each method is one transaction."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def collaborators(self, actor: Principal, app_name: str) -> list[CollaboratorOut]:
        """Everyone with a role on the app: its owner, its organisation's members, its grants."""
        actor.require(Action.READ, app=app_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            found: dict[str, CollaboratorOut] = {}

            def add(account: Account, role: Role, source: str) -> None:
                known = found.get(account.name)
                if known is None or _rank(role) > _rank(known.role):
                    found[account.name] = CollaboratorOut(
                        account=account.name, email=account.email, role=role, source=source
                    )

            if app.owner_account_id is not None:
                owner = session.get(Account, app.owner_account_id)
                if owner is not None:
                    add(owner, Role.OWNER, "owner")
            if app.owner_organisation_id is not None:
                org = session.get(Organisation, app.owner_organisation_id)
                for member, org_role in session.execute(
                    select(Account, OrganisationMember.role)
                    .join(OrganisationMember, OrganisationMember.account_id == Account.id)
                    .where(OrganisationMember.organisation_id == app.owner_organisation_id)
                ):
                    add(member, ORG_APP_ROLE[OrgRole(org_role)], f"organisation {org.name if org else ''}")
            for member, role in session.execute(
                select(Account, AppGrant.role)
                .join(AppGrant, AppGrant.account_id == Account.id)
                .where(AppGrant.app_id == app.id)
            ):
                add(member, Role(role), "grant")
            return sorted(found.values(), key=lambda c: (-_rank(c.role), c.account))

    def add_collaborator(self, actor: Principal, app_name: str, account: str, role: Role) -> CollaboratorOut:
        """Give ``account`` ``role`` on the app."""
        actor.require(Action.MANAGE_COLLABORATORS, app=app_name)
        check_grant(app_name, actor.role_on(app_name), None, role)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            member = account_named(session, account)
            if session.get(AppGrant, (app.id, member.id)) is not None or app.owner_account_id == member.id:
                raise AlreadyCollaborator(
                    f'"{account}" is already a collaborator of {app.name}: change its role instead.',
                    subject={"app": app.name, "account": account},
                )
            session.add(AppGrant(app_id=app.id, account_id=member.id, role=role.value))
            self._changes.audit.record(
                session, actor, AuditAction.COLLABORATOR_ADD, app=app.name, item=member.name,
                after={"role": role},
            )  # fmt: skip
            return CollaboratorOut(account=member.name, email=member.email, role=role, source="grant")

    def set_role(self, actor: Principal, app_name: str, account: str, role: Role) -> CollaboratorOut:
        """Grant ``account`` ``role`` on the app, in place of any role granted before."""
        actor.require(Action.MANAGE_COLLABORATORS, app=app_name)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            member = account_named(session, account)
            grant = session.get(AppGrant, (app.id, member.id))
            check_grant(app.name, actor.role_on(app_name), Role(grant.role) if grant else None, role)
            before = {"role": grant.role} if grant is not None else {}
            if grant is None:
                session.add(AppGrant(app_id=app.id, account_id=member.id, role=role.value))
            else:
                grant.role = role.value
            verb = AuditAction.COLLABORATOR_ROLE if before else AuditAction.COLLABORATOR_ADD
            self._changes.audit.record(
                session, actor, verb, app=app.name, item=member.name, before=before, after={"role": role}
            )
            return CollaboratorOut(account=member.name, email=member.email, role=role, source="grant")

    def remove_collaborator(self, actor: Principal, app_name: str, account: str) -> None:
        """Take away the role granted to ``account`` on the app (anyone may leave an app)."""
        if account != actor.account:
            actor.require(Action.MANAGE_COLLABORATORS, app=app_name)
        else:
            actor.require(Action.READ, app=app_name)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            owner = session.get(Account, app.owner_account_id) if app.owner_account_id is not None else None
            if owner is not None and owner.name == account:
                raise OwnerStays(
                    f'"{account}" owns {app.name}: transfer the app to another owner before removing it.',
                    subject={"app": app.name, "account": account},
                )
            grant = self._grant(session, app, account)
            if account != actor.account:
                check_grant(app.name, actor.role_on(app_name), Role(grant.role), None)
            session.delete(grant)
            self._changes.audit.record(
                session, actor, AuditAction.COLLABORATOR_REMOVE, app=app.name, item=account,
                before={"role": grant.role},
            )  # fmt: skip

    def transfer(
        self, actor: Principal, app_name: str, account: str | None = None, organisation: str | None = None
    ) -> AppOut:
        """Give the app to another account or to an organisation; the account that owned it stays an
        admin of it (as CodePush's previous owner stays a collaborator)."""
        actor.require(Action.TRANSFER_APPS, app=app_name)
        if (account is None) == (organisation is None):
            raise Invalid(
                "Name exactly one new owner: an account or an organisation.", subject={"app": app_name}
            )
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            previous, previous_owner = app.owner_account_id, owner_of(session, app)
            if account is not None:
                new_owner = account_named(session, account)
                app.owner_account_id, app.owner_organisation_id = new_owner.id, None
                if (grant := session.get(AppGrant, (app.id, new_owner.id))) is not None:
                    session.delete(grant)
            else:
                org = session.scalar(select(Organisation).where(Organisation.name == organisation))
                member = actor.access is not None and organisation in actor.access.organisations
                if org is None or not (actor.server_admin or member):  # others' organisations stay unknown
                    raise NoSuchOrganisation(
                        f'No organisation named "{organisation}".',
                        subject={"organisation": organisation or ""},
                    )
                app.owner_account_id, app.owner_organisation_id = None, org.id
            if previous is not None and previous != app.owner_account_id:
                if (kept := session.get(AppGrant, (app.id, previous))) is not None:
                    kept.role = Role.ADMIN.value
                else:
                    session.add(AppGrant(app_id=app.id, account_id=previous, role=Role.ADMIN.value))
            session.flush()
            moved = app_out(session, app)
            self._changes.audit.record(
                session, actor, AuditAction.APP_TRANSFER, app=app.name,
                before={"owner": previous_owner}, after={"owner": moved.owner},
            )  # fmt: skip
            return moved

    def set_production(
        self, actor: Principal, app_name: str, deployment_name: str, production: bool
    ) -> DeploymentOut:
        """Say whether a deployment counts as production (developers may not release to it)."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name, deployment=deployment_name)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            before = {"production": deployment.production}
            deployment.production = production
            session.flush()
            self._changes.audit.record(
                session, actor, AuditAction.DEPLOYMENT_PRODUCTION, app=app.name, deployment=deployment.name,
                before=before, after={"production": production},
            )  # fmt: skip
            return deployment_out(session, deployment)

    @staticmethod
    def _grant(session: Session, app: App, account: str) -> AppGrant:
        member = session.scalar(select(Account).where(Account.name == account))
        grant = session.get(AppGrant, (app.id, member.id)) if member is not None else None
        if grant is None:
            raise NotACollaborator(
                f'"{account}" has no role granted on {app.name}.',
                subject={"app": app.name, "account": account},
            )
        return grant


def _rank(role: Role) -> int:
    return RANK[role]
