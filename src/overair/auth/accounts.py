"""Accounts and organisations: server admins manage accounts; any account may create an organisation
and administers it; organisation admins manage its members. Disabling an account stops its keys and
console sessions at once."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from overair.audit.log import AuditLog
from overair.audit.rules import AuditAction
from overair.auth.models import AccessKey, Account, ConsoleSession, Organisation, OrganisationMember
from overair.auth.principal import Action, Principal
from overair.auth.roles import OrgRole
from overair.auth.schemas import (
    AccountCreated,
    AccountOut,
    MemberOut,
    OrganisationOut,
)
from overair.auth.service import AccessKeyService
from overair.errors import Conflict, NotFound


class NoSuchAccount(NotFound):
    """No account by that name."""


class NoSuchOrganisation(NotFound):
    """No organisation by that name (or none the caller belongs to)."""


def visible_organisation(session: Session, actor: Principal, name: str) -> Organisation:
    """The organisation ``name`` if the actor belongs to it (a server admin: any); :class:`NoSuchOrganisation`
    otherwise, as for one that does not exist (others' organisations stay unknown)."""
    org = session.scalar(select(Organisation).where(Organisation.name == name))
    member = actor.access is not None and name in actor.access.organisations
    if org is None or not (actor.server_admin or member):
        raise NoSuchOrganisation(f'No organisation named "{name}".', subject={"organisation": name})
    return org


class LastServerAdmin(Conflict):
    """The change would leave no enabled server admin."""


def account_out(account: Account) -> AccountOut:
    """An account as listed."""
    return AccountOut(
        name=account.name,
        email=account.email,
        disabled=account.disabled,
        server_admin=account.server_admin,
        created_at=account.created_at,
    )


class AccountService:
    """Accounts and organisations over the database; each method is one transaction."""

    def __init__(
        self, sessions: sessionmaker[Session], keys: AccessKeyService, audit: AuditLog | None = None
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._audit = audit or AuditLog()

    # -- accounts ------------------------------------------------------------------------------------

    def create(
        self, actor: Principal, name: str, email: str = "", server_admin: bool = False
    ) -> AccountCreated:
        """Create an account with a first access key (named after it), shown only in the answer."""
        actor.require(Action.MANAGE_ACCOUNTS)
        try:
            with self._sessions.begin() as session:
                if session.scalar(select(Account.id).where(Account.name == name)) is not None:
                    raise Conflict(f'An account named "{name}" already exists; pick another name.')
                if session.scalar(select(AccessKey.id).where(AccessKey.name == f"{name}-key")) is not None:
                    raise Conflict(
                        f'An access key named "{name}-key" (the name of a new account\'s first key) already '
                        "exists; pick another account name, or rename that key."
                    )
                session.add(Account(name=name, email=email, server_admin=server_admin))
                self._audit.record(
                    session, actor, AuditAction.ACCOUNT_CREATE, item=name,
                    after={"email": email, "server_admin": server_admin},
                )  # fmt: skip
        except IntegrityError as exc:
            raise Conflict(f'An account named "{name}" already exists; pick another name.') from exc
        key = self._keys.create(actor, f"{name}-key", account=name)
        with self._sessions() as session:
            created = account_out(self._named(session, name))
        return AccountCreated(**created.model_dump(), key=key.key, key_name=key.name)

    def list_accounts(self, actor: Principal) -> list[AccountOut]:
        """Every account, by name."""
        actor.require(Action.MANAGE_ACCOUNTS)
        with self._sessions() as session:
            return [account_out(a) for a in session.scalars(select(Account).order_by(Account.name))]

    def me(self, actor: Principal) -> AccountOut | None:
        """The acting account (None: the server itself)."""
        if actor.account is None:
            return None
        with self._sessions() as session:
            return account_out(self._named(session, actor.account))

    def set_disabled(self, actor: Principal, name: str, disabled: bool) -> AccountOut:
        """Disable an account (its keys are refused and its console sessions end at once) or enable it."""
        actor.require(Action.MANAGE_ACCOUNTS)
        with self._sessions.begin() as session:
            account = self._named(session, name)
            if disabled and account.server_admin and not account.disabled and self._admins(session) <= 1:
                raise LastServerAdmin(
                    f'"{name}" is the last enabled server admin: without it nobody could manage accounts. '
                    "Make another server admin first.",
                    subject={"account": name},
                )
            before = {"disabled": account.disabled}
            account.disabled = disabled
            verb = AuditAction.ACCOUNT_DISABLE if disabled else AuditAction.ACCOUNT_ENABLE
            self._audit.record(session, actor, verb, item=name, before=before, after={"disabled": disabled})
            if disabled:
                keys = select(AccessKey.id).where(AccessKey.account_id == account.id)
                session.execute(delete(ConsoleSession).where(ConsoleSession.key_id.in_(keys)))
            session.flush()
            return account_out(account)

    @staticmethod
    def _admins(session: Session) -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(Account)
                .where(Account.server_admin.is_(True), Account.disabled.is_(False))
            )
            or 0
        )

    @staticmethod
    def _named(session: Session, name: str) -> Account:
        account = session.scalar(select(Account).where(Account.name == name))
        if account is None:
            raise NoSuchAccount(f'No account named "{name}".', subject={"account": name})
        return account

    # -- organisations -------------------------------------------------------------------------------

    def create_organisation(self, actor: Principal, name: str) -> OrganisationOut:
        """Create an organisation; the acting account becomes its admin."""
        actor.require(Action.MANAGE_ORGANISATIONS)
        try:
            with self._sessions.begin() as session:
                if session.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
                    raise Conflict(f'An organisation named "{name}" already exists; pick another name.')
                org = Organisation(name=name)
                session.add(org)
                session.flush()
                if actor.account is not None:
                    me = self._named(session, actor.account)
                    session.add(
                        OrganisationMember(organisation_id=org.id, account_id=me.id, role=OrgRole.ADMIN.value)
                    )
                self._audit.record(
                    session, actor, AuditAction.ORGANISATION_CREATE, item=name, after={"admin": actor.account}
                )
                session.flush()
                return self._out(session, org)
        except IntegrityError as exc:
            raise Conflict(f'An organisation named "{name}" already exists; pick another name.') from exc

    def organisations(self, actor: Principal) -> list[OrganisationOut]:
        """The organisations the acting account belongs to (a server admin: all)."""
        with self._sessions() as session:
            orgs = session.scalars(select(Organisation).order_by(Organisation.name)).all()
            return [self._out(session, o) for o in orgs if actor.server_admin or self._member(o.name, actor)]

    def organisation(self, actor: Principal, name: str) -> OrganisationOut:
        """One organisation the acting account belongs to, with its members."""
        with self._sessions() as session:
            return self._out(session, visible_organisation(session, actor, name))

    def set_member(self, actor: Principal, organisation: str, account: str, role: OrgRole) -> OrganisationOut:
        """Add ``account`` to the organisation with ``role``, or change its role."""
        with self._sessions.begin() as session:
            org = visible_organisation(session, actor, organisation)
            actor.require(Action.MANAGE_ORGANISATIONS, organisation=org.name)
            member = self._named(session, account)
            record = session.get(OrganisationMember, (org.id, member.id))
            before = {"role": record.role} if record is not None else {}
            if record is None:
                session.add(OrganisationMember(organisation_id=org.id, account_id=member.id, role=role.value))
            else:
                self._keep_an_admin(session, org, record, role)
                record.role = role.value
            verb = AuditAction.MEMBER_ROLE if before else AuditAction.MEMBER_ADD
            self._audit.record(
                session, actor, verb, item=f"{org.name}/{member.name}", before=before, after={"role": role}
            )
            session.flush()
            return self._out(session, org)

    def remove_member(self, actor: Principal, organisation: str, account: str) -> OrganisationOut:
        """Take ``account`` out of the organisation (anyone may leave)."""
        with self._sessions.begin() as session:
            org = visible_organisation(session, actor, organisation)
            if account != actor.account:
                actor.require(Action.MANAGE_ORGANISATIONS, organisation=org.name)
            member = self._named(session, account)
            record = session.get(OrganisationMember, (org.id, member.id))
            if record is None:
                raise NoSuchAccount(
                    f'"{account}" is not a member of {org.name}.', subject={"organisation": org.name}
                )
            self._keep_an_admin(session, org, record, None)
            session.delete(record)
            self._audit.record(
                session, actor, AuditAction.MEMBER_REMOVE, item=f"{org.name}/{member.name}",
                before={"role": record.role},
            )  # fmt: skip
            session.flush()
            return self._out(session, org)

    @staticmethod
    def _keep_an_admin(
        session: Session, org: Organisation, record: OrganisationMember, role: OrgRole | None
    ) -> None:
        if record.role != OrgRole.ADMIN.value or role is OrgRole.ADMIN:
            return
        admins = session.scalar(
            select(func.count())
            .select_from(OrganisationMember)
            .where(
                OrganisationMember.organisation_id == org.id, OrganisationMember.role == OrgRole.ADMIN.value
            )
        )
        if (admins or 0) <= 1:
            raise Conflict(
                f"This is the last admin of {org.name}: make another member an admin first.",
                subject={"organisation": org.name},
            )

    @staticmethod
    def _member(name: str, actor: Principal) -> bool:
        return actor.access is not None and name in actor.access.organisations

    @staticmethod
    def _out(session: Session, org: Organisation) -> OrganisationOut:
        members = session.execute(
            select(Account.name, OrganisationMember.role)
            .join(OrganisationMember, OrganisationMember.account_id == Account.id)
            .where(OrganisationMember.organisation_id == org.id)
            .order_by(Account.name)
        )
        return OrganisationOut(
            name=org.name, members=[MemberOut(account=a, role=OrgRole(r)) for a, r in members]
        )
