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
from overair.auth.models import AccessKey
from overair.auth.principal import Action, Principal, Surface
from overair.auth.schemas import AccessKeyCreated, AccessKeyOut
from overair.auth.throttle import FailureThrottle
from overair.db import Clock, precise_now
from overair.errors import Conflict, Fix, NotFound, Unauthorized

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

    def create(self, actor: Principal, name: str, expires_in: dt.timedelta | None = None) -> AccessKeyCreated:
        """Create a key (valid for ``expires_in``, or forever), recorded as created by ``actor``; the
        returned object is the only place the key appears."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + expires_in if expires_in is not None else None
        record = AccessKey(
            name=name,
            key_hash=hash_key(key),
            created_by=actor.name,
            created_by_key_id=actor.key_id,
            created_at=now,
            expires_at=expires_at,
        )
        try:
            with self._sessions.begin() as session:
                rules.check_expiry(actor.name, self._expiry_of(session, actor), expires_at)
                if session.scalar(select(AccessKey.id).where(AccessKey.name == name)) is not None:
                    raise Conflict(f'An access key named "{name}" already exists; pick another name.')
                session.add(record)
                self._audit.record(
                    session, actor, AuditAction.ACCESS_KEY_CREATE, item=name, after={"expires_at": expires_at}
                )
        except IntegrityError as exc:
            raise Conflict(f'An access key named "{name}" already exists; pick another name.') from exc
        return AccessKeyCreated(key=key, **AccessKeyOut.model_validate(record).model_dump())

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
        """Every key, by name."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions() as session:
            return [
                AccessKeyOut.model_validate(r)
                for r in session.scalars(select(AccessKey).order_by(AccessKey.name))
            ]

    def revoke(self, actor: Principal, name: str) -> None:
        """Delete a key; requests with it are refused from then on."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions.begin() as session:
            record = session.scalar(select(AccessKey).where(AccessKey.name == name))
            if record is None:
                names = ", ".join(session.scalars(select(AccessKey.name).order_by(AccessKey.name)))
                raise NotFound(f'No access key named "{name}" (keys: {names or "none"}).')
            acting = session.get(AccessKey, actor.key_id) if actor.key_id is not None else None
            rules.check_not_creator(record.name, record.id, acting.created_by_key_id if acting else None)
            rules.check_keeps_a_manager(record.name, record.expires_at is None, self._lasting(session))
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
        """How many keys can manage keys and never expire (today every key can manage keys)."""
        return (
            session.scalar(select(func.count()).select_from(AccessKey).where(AccessKey.expires_at.is_(None)))
            or 0
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
        record = self._verify(key, client_address)
        return Principal(
            record.name, record.id, surface, client_address=client_address, user_agent=user_agent
        )

    def verify_id(self, key: str | None, client_address: str | None = None) -> tuple[int, str]:
        """The key's id and name (what a console session is bound to), checked as by :meth:`authenticate`."""
        record = self._verify(key, client_address)
        return record.id, record.name

    def _verify(self, key: str | None, client_address: str | None) -> AccessKey:
        self._throttle.check(client_address)
        try:
            return self._check_key(key)
        except Unauthorized:
            self._throttle.failed(client_address)
            raise

    def _check_key(self, key: str | None) -> AccessKey:
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
            if record.last_used_at is None or now - record.last_used_at > _LAST_USED_RESOLUTION:
                record.last_used_at = now
                session.commit()
            return record

    def set_expiry(self, actor: Principal, name: str, expires_in: dt.timedelta | None) -> AccessKeyOut:
        """Let a key expire ``expires_in`` from now (None: never)."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions.begin() as session:
            record = session.scalar(select(AccessKey).where(AccessKey.name == name))
            if record is None:
                raise NotFound(f'No access key named "{name}".')
            expires_at = self._clock() + expires_in if expires_in is not None else None
            rules.check_expiry(actor.name, self._expiry_of(session, actor), expires_at)
            if expires_at is not None:
                rules.check_keeps_a_manager(record.name, record.expires_at is None, self._lasting(session))
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
            return AccessKeyOut.model_validate(record)

    def get(self, actor: Principal, name: str) -> AccessKeyOut:
        """One key by name (never the key itself); :class:`NotFound` if there is none."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        with self._sessions() as session:
            record = session.scalar(select(AccessKey).where(AccessKey.name == name))
            if record is None:
                raise NotFound(f'No access key named "{name}".')
            return AccessKeyOut.model_validate(record)

    def rename(self, actor: Principal, name: str, new_name: str) -> AccessKeyOut:
        """Rename a key; the key itself keeps working."""
        actor.require(Action.MANAGE_ACCESS_KEYS)
        try:
            with self._sessions.begin() as session:
                record = session.scalar(select(AccessKey).where(AccessKey.name == name))
                if record is None:
                    raise NotFound(f'No access key named "{name}".')
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
                return AccessKeyOut.model_validate(record)
        except IntegrityError as exc:
            raise Conflict(f'An access key named "{new_name}" already exists; pick another name.') from exc
