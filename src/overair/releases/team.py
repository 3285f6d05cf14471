"""Who works on an app: its owner, its collaborators (accounts with a role), transfer, and which
deployments count as production."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from overair.audit.rules import AuditAction
from overair.auth.accounts import NoSuchOrganisation, visible_organisation
from overair.auth.models import Account, AppGrant, Organisation, OrganisationMember
from overair.auth.principal import Action, Principal
from overair.auth.roles import ORG_APP_ROLE, RANK, OrgRole, Role, check_grant
from overair.errors import Conflict, Invalid, NotFound
from overair.releases import repository as repo
from overair.releases.outputs import app_out, deployment_out, owner_of
from overair.releases.schemas import AppOut, CollaboratorOut, DeploymentOut
from overair.releases.unit import Changes


class NoSuchAccount(NotFound):
    """No account by that name."""


class NotACollaborator(NotFound):
    """The account has no role granted on the app."""


class AlreadyCollaborator(Conflict):
    """The account already has a role granted on the app."""


class OwnerStays(Conflict):
    """The owning account cannot be removed from its app: transfer the app first."""


class AlreadyOwner(Conflict):
    """The app already belongs to the owner it is given to."""


def find_account(session: Session, who: str) -> Account | None:
    """The account named ``who``, else the one account whose e-mail is ``who`` (any case): the CodePush
    clients name collaborators by e-mail."""
    account = session.scalar(select(Account).where(Account.name == who))
    if account is None and "@" in who:
        found = session.scalars(select(Account).where(func.lower(Account.email) == who.lower())).all()
        account = found[0] if len(found) == 1 else None
    return account


def account_named(session: Session, who: str) -> Account:
    """The enabled account named ``who`` (or with that e-mail), or :class:`NoSuchAccount`."""
    account = find_account(session, who)
    if account is None or account.disabled:
        raise NoSuchAccount(f'No account named "{who}".', subject={"account": who})
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
                session,
                actor,
                AuditAction.COLLABORATOR_ADD,
                app=app.name,
                item=member.name,
                after={"role": role.value},
            )
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
                session,
                actor,
                verb,
                app=app.name,
                item=member.name,
                before=before,
                after={"role": role.value},
            )
            return CollaboratorOut(account=member.name, email=member.email, role=role, source="grant")

    def remove_collaborator(self, actor: Principal, app_name: str, account: str) -> None:
        """Take away the role granted to ``account`` (a name or an e-mail) on the app (anyone may leave an
        app)."""
        actor.require(Action.READ, app=app_name)
        with self._changes.transaction() as (session, _):
            member = find_account(session, account)
            leaving = member is not None and member.name == actor.account
            if not leaving:
                actor.require(Action.MANAGE_COLLABORATORS, app=app_name)
            app = repo.get_app(session, app_name)
            if member is not None and app.owner_account_id == member.id:
                raise OwnerStays(
                    f'"{account}" owns {app.name}: transfer the app to another owner before removing it.',
                    subject={"app": app.name, "account": account},
                )
            grant = session.get(AppGrant, (app.id, member.id)) if member is not None else None
            if grant is None:
                raise NotACollaborator(
                    f'"{account}" has no role granted on {app.name}.',
                    subject={"app": app.name, "account": account},
                )
            if not leaving:
                check_grant(app.name, actor.role_on(app_name), Role(grant.role), None)
            session.delete(grant)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.COLLABORATOR_REMOVE,
                app=app.name,
                item=member.name if member is not None else account,
                before={"role": grant.role},
            )

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

        def new_owner(session: Session) -> Account | Organisation:
            if account is not None:
                return account_named(session, account)
            return visible_organisation(session, actor, organisation or "")

        return self._transfer(actor, app_name, new_owner)

    def transfer_to(self, actor: Principal, app_name: str, owner: str) -> AppOut:
        """Give the app to ``owner``: an organisation the actor belongs to by that name, else the account
        with that name or e-mail (App Center's transfer names either in one place)."""
        actor.require(Action.TRANSFER_APPS, app=app_name)

        def new_owner(session: Session) -> Account | Organisation:
            try:
                return visible_organisation(session, actor, owner)
            except NoSuchOrganisation:
                return account_named(session, owner)

        return self._transfer(actor, app_name, new_owner)

    def _transfer(
        self, actor: Principal, app_name: str, new_owner: Callable[[Session], Account | Organisation]
    ) -> AppOut:
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            previous = app.owner_account_id
            before = {"owner": owner_of(session, app)}
            owner = new_owner(session)
            if isinstance(owner, Account):
                if app.owner_account_id == owner.id:
                    raise AlreadyOwner(
                        f'"{owner.name}" already owns {app.name}.',
                        subject={"app": app.name, "account": owner.name},
                    )
                app.owner_account_id, app.owner_organisation_id = owner.id, None
                if (grant := session.get(AppGrant, (app.id, owner.id))) is not None:
                    session.delete(grant)
            else:
                if app.owner_organisation_id == owner.id:
                    raise AlreadyOwner(
                        f'The organisation "{owner.name}" already owns {app.name}.',
                        subject={"app": app.name, "organisation": owner.name},
                    )
                app.owner_account_id, app.owner_organisation_id = None, owner.id
            if previous is not None and previous != app.owner_account_id:
                if (kept := session.get(AppGrant, (app.id, previous))) is not None:
                    kept.role = Role.ADMIN.value
                else:
                    session.add(AppGrant(app_id=app.id, account_id=previous, role=Role.ADMIN.value))
            session.flush()
            moved = app_out(session, app)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.APP_TRANSFER,
                app=app.name,
                before=before,
                after={"owner": moved.owner},
            )
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


def _rank(role: Role) -> int:
    return RANK[role]
