"""Access keys: creation (shown once), listing, revocation and verification of bearer keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from overair.audit.log import AuditLog
from overair.audit.rules import AuditAction
from overair.auth import rules
from overair.auth.access import key_scope, load_access
from overair.auth.models import AccessKey, Account
from overair.auth.principal import Action, Principal, Surface
from overair.auth.roles import UNSCOPED, Access, KeyScope
from overair.auth.schemas import AccessKeyCreated, AccessKeyOut
from overair.auth.throttle import FailureThrottle
from overair.db import Clock, precise_now
from overair.errors import Conflict, Fix, Invalid, NotFound, Unauthorized

KEY_PREFIX = "oa_"
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored in place of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _audited(record: AccessKey) -> dict[str, object]:
    """What the audit log records of a key (never the key or its hash)."""
    return {"name": record.name, "created_by": record.created_by, "expires_at": record.expires_at}


class AccessKeyService:
    """Bearer keys for the management API. Only hashes are stored."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock = precise_now,
        throttle: FailureThrottle | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._throttle = throttle or FailureThrottle()
        self._audit = audit or AuditLog(clock)

    def create(
        self,
        actor: Principal,
        name: str,
        expires_in: dt.timedelta | None = None,
        scope: KeyScope = UNSCOPED,
        account: str | None = None,
    ) -> AccessKeyCreated:
        """Create a key (valid for ``expires_in``, or forever, limited to ``scope``) for the acting account
        (a server admin may name another ``account``), recorded as created by ``actor``; the returned
        object is the only place the key appears. A key is never wider than the key that makes it."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        if account is not None and account != actor.account:
            actor.require(Action.MANAGE_ACCOUNTS)
        if actor.access is not None:
            rules.check_scope_within(actor.name, scope, actor.access.scope)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + expires_in if expires_in is not None else None
        try:
            with self._sessions.begin() as session:
                owner = self._owner(session, account or actor.account)
                rules.check_expiry(actor.name, self._expiry_of(session, actor), expires_at)
                if session.scalar(select(AccessKey.id).where(AccessKey.name == name)) is not None:
                    raise Conflict(f'An access key named "{name}" already exists; pick another name.')
                record = AccessKey(
                    name=name,
                    key_hash=hash_key(key),
                    created_by=actor.name,
                    created_by_key_id=actor.key_id,
                    created_at=now,
                    expires_at=expires_at,
                    account=owner,
                    scope_apps=sorted(scope.apps) if scope.apps is not None else None,
                    scope_deployments=sorted(scope.deployments) if scope.deployments is not None else None,
                    scope_actions=sorted(scope.actions) if scope.actions is not None else None,
                )
                session.add(record)
                self._audit.record(
                    session, actor, AuditAction.ACCESS_KEY_CREATE, item=name, after={"expires_at": expires_at}
                )
                session.flush()
                out = key_out(record)
        except IntegrityError as exc:
            raise Conflict(f'An access key named "{name}" already exists; pick another name.') from exc
        return AccessKeyCreated(key=key, **out.model_dump())

    @staticmethod
    def _owner(session: Session, account: str | None) -> Account:
        """The account a new key belongs to (None: the server acts, for the first server admin)."""
        if account is None:
            found = session.scalar(
                select(Account).where(Account.server_admin.is_(True)).order_by(Account.id).limit(1)
            )
        else:
            found = session.scalar(select(Account).where(Account.name == account))
        if found is None:
            # named in the request's body, not its path: a bad value (422), not a missing resource
            raise Invalid(
                f'No account named "{account}": give the name of an existing account (overair account list).',
                subject={"account": account or ""},
            )
        if found.disabled:
            raise Invalid(
                f'The account "{found.name}" is disabled: enable it before giving it keys.',
                subject={"account": found.name},
            )
        return found

    def _mine(self, actor: Principal, record: AccessKey | None, name: str) -> AccessKey:
        """``record`` if the actor may manage it (its own account's key, or any for a server admin);
        :class:`NotFound` otherwise, as for a key that does not exist."""
        if record is None or not (actor.server_admin or record.account.name == actor.account):
            raise NotFound(f'No access key named "{name}".', subject={"access_key": name})
        return record

    def ensure_initial_key(self) -> AccessKeyCreated | None:
        """On a server without keys, create the first admin key and return it; otherwise None."""
        with self._sessions() as session:
            if session.scalar(select(func.count()).select_from(AccessKey)):
                return None
        try:
            return self.create(Principal("overair serve", None, Surface.SYSTEM), "admin")
        except Conflict:
            return None  # another worker made it first

    def list(self, actor: Principal) -> list[AccessKeyOut]:
        """The keys the actor manages (its account's; a server admin: every key), by name."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions() as session:
            query = select(AccessKey).order_by(AccessKey.name)
            if not actor.server_admin:
                query = query.join(Account, Account.id == AccessKey.account_id).where(
                    Account.name == actor.account
                )
            return [key_out(r) for r in session.scalars(query)]

    def revoke(self, actor: Principal, name: str) -> None:
        """Delete a key; requests with it are refused from then on."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions.begin() as session:
            record = session.scalar(select(AccessKey).where(AccessKey.name == name))
            if record is None and actor.server_admin:
                names = ", ".join(session.scalars(select(AccessKey.name).order_by(AccessKey.name)))
                raise NotFound(f'No access key named "{name}" (keys: {names or "none"}).')
            record = self._mine(actor, record, name)
            acting = session.get(AccessKey, actor.key_id) if actor.key_id is not None else None
            rules.check_not_creator(record.name, record.id, acting.created_by_key_id if acting else None)
            rules.check_keeps_a_manager(record.name, self._lasts(record), self._lasting(session))
            self._audit.record(
                session, actor, AuditAction.ACCESS_KEY_REVOKE, item=name, before=_audited(record)
            )
            session.delete(record)

    @staticmethod
    def _expiry_of(session: Session, actor: Principal) -> dt.datetime | None:
        """When the acting key expires (None: never, or the server itself acts)."""
        if actor.key_id is None:
            return None
        return session.scalar(select(AccessKey.expires_at).where(AccessKey.id == actor.key_id))

    @staticmethod
    def _lasting(session: Session) -> int:
        """How many keys can manage every key and never expire: unscoped keys of enabled server admins."""
        return (
            session.scalar(
                select(func.count())
                .select_from(AccessKey)
                .join(Account, Account.id == AccessKey.account_id)
                .where(
                    AccessKey.expires_at.is_(None),
                    Account.server_admin.is_(True),
                    Account.disabled.is_(False),
                    AccessKey.scope_apps.is_(None),
                    AccessKey.scope_deployments.is_(None),
                    AccessKey.scope_actions.is_(None),
                )
            )
            or 0
        )

    @staticmethod
    def _lasts(record: AccessKey) -> bool:
        """Whether ``record`` is one of the keys :meth:`_lasting` counts."""
        return (
            record.expires_at is None
            and record.account.server_admin
            and not record.account.disabled
            and key_scope(record).unlimited
        )

    def authenticate(
        self,
        key: str | None,
        surface: Surface,
        client_address: str | None = None,
        user_agent: str | None = None,
    ) -> Principal:
        """The :class:`Principal` acting with ``key``; :class:`Unauthorized` for a missing, unknown or
        expired key, :class:`TooManyAttempts` when ``client_address`` failed too often lately."""
        key_id, name, access = self._verify(key, client_address)
        return Principal(
            name, key_id, surface, client_address=client_address, user_agent=user_agent, access=access
        )

    def verify_id(self, key: str | None, client_address: str | None = None) -> tuple[int, str]:
        """The key's id and name (what a console session is bound to), checked as by :meth:`authenticate`."""
        key_id, name, _ = self._verify(key, client_address)
        return key_id, name

    def access_of(self, key_id: int) -> Access:
        """What the key ``key_id``'s account may do now through it (a console session's rights);
        :class:`Unauthorized` once the key is gone or its account disabled."""
        with self._sessions() as session:
            record = session.get(AccessKey, key_id)
            if record is None:
                raise Unauthorized("The access key was revoked.", fixes=[Fix("new-access-key")])
            check_enabled(record)
            return load_access(session, record)

    def _verify(self, key: str | None, client_address: str | None) -> tuple[int, str, Access]:
        self._throttle.check(client_address)
        try:
            return self._check_key(key)
        except Unauthorized:
            self._throttle.failed(client_address)
            raise

    def _check_key(self, key: str | None) -> tuple[int, str, Access]:
        if not key:
            raise Unauthorized(
                "No access key given: send the header `Authorization: Bearer KEY`.",
                fixes=[Fix("sign-in")],
            )
        digest = hash_key(key)
        with self._sessions() as session:
            record = session.scalar(select(AccessKey).where(AccessKey.key_hash == digest))
            if record is None:
                raise Unauthorized(
                    "The access key was rejected: it is unknown or was revoked.",
                    fixes=[Fix("new-access-key")],
                )
            now = self._clock()
            if record.expires_at is not None and record.expires_at <= now:
                raise Unauthorized(
                    f'The access key "{record.name}" expired on {record.expires_at:%Y-%m-%d %H:%M} UTC.',
                    subject={"access_key": record.name},
                    fixes=[Fix("new-access-key")],
                )
            check_enabled(record)
            access = load_access(session, record)
            key_id, name = record.id, record.name
            if record.last_used_at is None or now - record.last_used_at > _LAST_USED_RESOLUTION:
                record.last_used_at = now
                session.commit()
            return key_id, name, access

    def set_expiry(self, actor: Principal, name: str, expires_in: dt.timedelta | None) -> AccessKeyOut:
        """Let a key expire ``expires_in`` from now (None: never)."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions.begin() as session:
            record = self._mine(actor, session.scalar(select(AccessKey).where(AccessKey.name == name)), name)
            expires_at = self._clock() + expires_in if expires_in is not None else None
            rules.check_expiry(actor.name, self._expiry_of(session, actor), expires_at)
            if expires_at is not None:
                rules.check_keeps_a_manager(record.name, self._lasts(record), self._lasting(session))
            self._audit.record(
                session,
                actor,
                AuditAction.ACCESS_KEY_EXPIRY,
                item=name,
                before={"expires_at": record.expires_at},
                after={"expires_at": expires_at},
            )
            record.expires_at = expires_at
            session.flush()
            return key_out(record)

    def get(self, actor: Principal, name: str) -> AccessKeyOut:
        """One key by name (never the key itself); :class:`NotFound` if there is none."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions() as session:
            record = self._mine(actor, session.scalar(select(AccessKey).where(AccessKey.name == name)), name)
            return key_out(record)

    def rename(self, actor: Principal, name: str, new_name: str) -> AccessKeyOut:
        """Rename a key; the key itself keeps working."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        try:
            with self._sessions.begin() as session:
                found = session.scalar(select(AccessKey).where(AccessKey.name == name))
                record = self._mine(actor, found, name)
                taken = session.scalar(select(AccessKey.id).where(AccessKey.name == new_name))
                if new_name != name and taken is not None:
                    raise Conflict(f'An access key named "{new_name}" already exists; pick another name.')
                self._audit.record(
                    session,
                    actor,
                    AuditAction.ACCESS_KEY_RENAME,
                    item=new_name,
                    before={"name": name},
                    after={"name": new_name},
                )
                record.name = new_name
                session.flush()
                return key_out(record)
        except IntegrityError as exc:
            raise Conflict(f'An access key named "{new_name}" already exists; pick another name.') from exc


class AccountDisabled(Unauthorized):
    """The key's account is disabled: its keys and console sessions are refused."""


def check_enabled(record: AccessKey) -> None:
    """Refuse a key whose account is disabled."""
    if record.account.disabled:
        raise AccountDisabled(
            f'The account "{record.account.name}" of the access key "{record.name}" is disabled: ask a '
            "server admin to enable it.",
            subject={"access_key": record.name, "account": record.account.name},
        )


def key_out(record: AccessKey) -> AccessKeyOut:
    """A key as listed: its account and scope, never the key."""
    return AccessKeyOut(
        name=record.name,
        created_by=record.created_by,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
        account=record.account.name,
        apps=record.scope_apps,
        deployments=record.scope_deployments,
        actions=record.scope_actions,
    )
