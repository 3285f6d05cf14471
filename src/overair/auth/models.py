"""Accounts, organisations, per-app grants, access keys and console sessions.

Only SHA-256 digests of keys and session tokens are stored. Who owns an app is a column of the app
(``apps.owner_account_id`` or ``apps.owner_organisation_id``); the grants here add collaborators.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overair.db import Base, UTCDateTime, utcnow


class Account(Base):
    """A person (or a robot) who holds access keys; server admins manage accounts and every app."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    server_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Organisation(Base):
    """A group of accounts that can own apps together (App Center's organisations)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrganisationMember(Base):
    """An account's membership of an organisation, with its organisation role (admin or member)."""

    __tablename__ = "organisation_members"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20))


class AppGrant(Base):
    """A collaborator: an account's role on one app (owner, admin, release-manager, developer, viewer)."""

    __tablename__ = "app_grants"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20))


class AccessKey(Base):
    """A named bearer key for the management API (and the console's sign-in)."""

    __tablename__ = "access_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_by_key_id: Mapped[int | None] = mapped_column(nullable=True)
    """The key that created this one (None: made by the server itself); not a foreign key, so that
    revoking a creator leaves the keys it made."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    account_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    """The account the key acts for: a key never grants more than its account. Always set; not a foreign
    key only because SQLite cannot add one to an existing table without rebuilding it (accounts are
    disabled, never deleted)."""
    # the key's scope: None (no limit) or the only apps, deployments and actions it may act on
    scope_apps: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    scope_deployments: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    scope_actions: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    account: Mapped[Account] = relationship(
        lazy="joined", primaryjoin="foreign(AccessKey.account_id) == Account.id"
    )


class ConsoleSession(Base):
    """A signed-in console session, bound to the access key that opened it.

    Deleting the key (revoking it) deletes its sessions with it, so a revoked key signs its console users
    out at once.
    """

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("access_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

    key: Mapped[AccessKey] = relationship(lazy="joined")
