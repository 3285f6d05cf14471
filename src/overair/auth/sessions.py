"""Console sessions: a signed-in browser holds a random token; the server keeps its digest, the access key
it belongs to, a CSRF token and an expiry.

A session is opened only through :meth:`AccessKeyService.verify_id`, the same check every management API
call makes, and every later request re-reads the key with the session: a revoked key deletes its sessions
(foreign key cascade) and an expired key ends them, so the console never outlives the key behind it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from overair.auth.access import load_access
from overair.auth.models import ConsoleSession
from overair.auth.principal import Principal, Surface
from overair.auth.roles import Access
from overair.auth.service import AccessKeyService, check_enabled, hash_key
from overair.db import Clock, precise_now
from overair.errors import Fix, Unauthorized


class NotSignedIn(Unauthorized):
    """The request carries no session, or one the server does not know (signed out, or never opened)."""


class SessionExpired(Unauthorized):
    """The session has expired."""


class KeyExpired(SessionExpired):
    """The access key behind the session has expired."""


@dataclass(frozen=True, slots=True)
class ConsoleIdentity:
    """Who a console request acts as: the access key's name, with the session's CSRF token."""

    key_name: str
    csrf_token: str
    expires_at: dt.datetime
    key_id: int
    client_address: str | None = None
    user_agent: str | None = None
    access: Access | None = None
    """What the key's account may do (read with the session on every request)."""

    @property
    def principal(self) -> Principal:
        """Who the services see acting: the signed-in key, through the console."""
        return Principal(
            self.key_name,
            self.key_id,
            Surface.CONSOLE,
            client_address=self.client_address,
            user_agent=self.user_agent,
            access=self.access,
        )

    def seen_from(self, client_address: str | None, user_agent: str | None) -> ConsoleIdentity:
        """This identity, with the client the request came from."""
        return dataclasses.replace(self, client_address=client_address, user_agent=user_agent)


class ConsoleSessions:
    """Server-side console sessions over the database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        keys: AccessKeyService,
        lifetime: dt.timedelta,
        clock: Clock = precise_now,
    ) -> None:
        self._clock = clock  # to the microsecond: a session of a few seconds must not live a second longer
        self._sessions = sessions
        self._keys = keys
        self.lifetime = lifetime

    def open(self, access_key: str, client_address: str | None = None) -> tuple[str, ConsoleIdentity]:
        """Check ``access_key`` like the management API does and open a session: (token, identity).

        The session ends after the configured lifetime, or when the key expires if that comes first.
        Failed attempts count against ``client_address`` as they do on the API.
        """
        key_id, key_name = self._keys.verify_id(access_key.strip(), client_address)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions.begin() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
            record = ConsoleSession(
                token_hash=hash_key(token), key_id=key_id, csrf_token=csrf, expires_at=now + self.lifetime
            )
            session.add(record)
            session.flush()
            key_expiry = record.key.expires_at
            if key_expiry is not None and key_expiry < record.expires_at:
                record.expires_at = key_expiry
            identity = ConsoleIdentity(
                key_name, csrf, record.expires_at, key_id, access=load_access(session, record.key)
            )
        return token, identity

    def resolve(self, token: str | None) -> ConsoleIdentity:
        """The identity of a session token; :class:`NotSignedIn` or :class:`SessionExpired` otherwise."""
        if not token:
            raise NotSignedIn("You are not signed in: sign in with an access key.")
        now = self._clock()
        with self._sessions() as session:
            record = session.scalar(
                select(ConsoleSession).where(ConsoleSession.token_hash == hash_key(token))
            )
            if record is None:
                raise NotSignedIn(
                    "Your session has ended (you signed out, or the access key was revoked): sign in again."
                )
            key = record.key
            # expired rows stay until the next sign-in purges them, so every request with the cookie
            # gets the same explanation
            if key.expires_at is not None and key.expires_at <= now:
                raise KeyExpired(
                    f'The access key "{key.name}" expired on {key.expires_at:%Y-%m-%d %H:%M} UTC: ask an '
                    "admin for a new key and sign in with it.",
                    subject={"access_key": key.name},
                    fixes=[Fix("new-access-key")],
                )
            if record.expires_at <= now:
                raise SessionExpired(
                    f"Your session expired at {record.expires_at:%Y-%m-%d %H:%M} UTC: sign in again with "
                    "your access key."
                )
            check_enabled(key)
            return ConsoleIdentity(
                key.name, record.csrf_token, record.expires_at, key.id, access=load_access(session, key)
            )

    def close(self, token: str | None) -> None:
        """Sign out: delete the session on the server (a no-op for an unknown token)."""
        if not token:
            return
        with self._sessions.begin() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_key(token)))
