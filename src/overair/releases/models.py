"""Tables of the release domain: apps, deployments, packages (content) and releases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overair.db import Base, UTCDateTime, utcnow

LABEL_LENGTH = 20
"""The longest release label the database stores (``v1`` … ``v99999…``); longer ones name no release."""


def is_production_name(name: str) -> bool:
    """The default of a deployment's production flag: true for a deployment named Production."""
    return name.lower() == "production"


class App(Base):
    """An app: one store binary family with its deployments."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    platforms: Mapped[str] = mapped_column(String(50), default="ios,android")
    distribution: Mapped[str] = mapped_column(String(20), default="hybrid")
    # the last release sequence number given out: every release of the app gets the next one, so signed
    # manifests carry a number that only grows and devices can refuse an older one
    release_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # who owns the app: an account or an organisation (neither: only server admins manage it); ids, not
    # foreign keys, as SQLite cannot add those to an existing table (accounts are disabled, never deleted)
    owner_account_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    owner_organisation_id: Mapped[int | None] = mapped_column(nullable=True, index=True)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True, order_by="Deployment.id"
    )


class SigningKey(Base):
    """A publisher's Ed25519 public key trusted for an app's release manifests (retired keys stay listed)."""

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("app_id", "key_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100), default="")
    added_by: Mapped[str] = mapped_column(String(100), default="")
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Binary(Base):
    """A store binary of an app (version + build number) and what it contains (its descriptor)."""

    __tablename__ = "binaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    build_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    descriptor: Mapped[str] = mapped_column(Text)
    registered_by: Mapped[str] = mapped_column(String(100), default="")
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deployment(Base):
    """A channel of an app (Production, Staging, ...), addressed by devices through its key."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    production: Mapped[bool] = mapped_column(
        Boolean,
        default=lambda context: is_production_name(context.get_current_parameters()["name"]),
        server_default="0",
    )
    """Whether the deployment counts as production (developers may not release to it)."""

    app: Mapped[App] = relationship(back_populates="deployments")
    releases: Mapped[list[Release]] = relationship(
        back_populates="deployment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Release.seq",
    )


class Package(Base):
    """Bundle content, stored once however many releases use it."""

    __tablename__ = "packages"

    package_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(100))
    manifest_key: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    total_size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # an Expo update's launch asset, assets and public config (``overair.packages.expo.ExpoContent`` as
    # JSON); None for every other package
    expo: Mapped[str | None] = mapped_column(Text, nullable=True)


class PackageDiff(Base):
    """A CodePush diff archive that turns package ``base_hash`` into package ``package_hash``.

    Keyed by content, not by release: a promotion or rollback to the same content reuses it.
    """

    __tablename__ = "package_diffs"

    package_hash: Mapped[str] = mapped_column(ForeignKey("packages.package_hash"), primary_key=True)
    base_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PackageDelta(Base):
    """An overair binary delta (``overair.packages.delta``) from package ``base_hash`` to ``package_hash``.

    Keyed by content like :class:`PackageDiff`. A delta is stored even when it saves too little to be
    offered, so that it is not built again. ``blob_key`` is the format-1 delta every engine reads; when
    the target has Hermes bytecode the transform shrinks, ``transformed_blob_key`` is the (smaller)
    format-2 delta too, offered to engines that read it.
    """

    __tablename__ = "package_deltas"

    package_hash: Mapped[str] = mapped_column(ForeignKey("packages.package_hash"), primary_key=True)
    base_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    build_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    transformed_blob_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    transformed_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Release(Base):
    """A label of a deployment pointing at a package, with its targeting and rollout."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("deployment_id", "seq"), UniqueConstraint("deployment_id", "label"))

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    package_hash: Mapped[str] = mapped_column(ForeignKey("packages.package_hash"))
    target_version: Mapped[str] = mapped_column(String(200))
    build_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rollout: Mapped[int] = mapped_column(Integer, default=100)
    mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # who disabled the release, when and why (empty while it is enabled): shown before it is enabled again
    # or republished by a rollback
    disabled_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    sync_before_update: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    description: Mapped[str] = mapped_column(Text, default="")
    released_by: Mapped[str] = mapped_column(String(100), default="")
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(20), default="upload")
    origin_label: Mapped[str | None] = mapped_column(String(20), nullable=True)
    origin_deployment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    installs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    rollbacks: Mapped[int] = mapped_column(Integer, default=0)
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    signed_manifest: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[str | None] = mapped_column(String(100), nullable=True)
    signing_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # the one platform the release is for (``ios``, ``android``); None: every platform of the app
    platform: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Expo releases: the runtime version devices must send, exactly, and the update id (a UUID) their
    # manifest carries; None for every other release
    runtime_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    update_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # an Expo release signed by its publisher: the manifest's exact bytes and the signatures (JSON)
    expo_signed: Mapped[str | None] = mapped_column(Text, nullable=True)

    deployment: Mapped[Deployment] = relationship(back_populates="releases")
    package: Mapped[Package] = relationship(lazy="joined")


class DeploymentRolloutPolicy(Base):
    """A deployment's guarded-rollout policy (``overair.rollouts.RolloutPolicy`` as JSON): every release
    published to it ramps under this policy unless the release brings its own."""

    __tablename__ = "rollout_policies"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    set_by: Mapped[str] = mapped_column(String(100), default="")
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class ReleaseRollout(Base):
    """A release's guarded rollout: the policy it ramps under, where it stands (``RolloutState`` as JSON),
    the last decision with its reason and numbers, and what people did to it (who, when, why)."""

    __tablename__ = "release_rollouts"

    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    """Evaluated by the background job (False once it waits for a person, finished or was ended)."""
    acts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """What people did: ``{"act", "by", "at", "reason", ...}``, oldest first."""
    halt_reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutEvent(Base):
    """Something that happened to a guarded rollout (a step, a halt, a person's act, ...), kept in order:
    what notifications (webhooks) read, by ``id`` after the last one they handled."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    app: Mapped[str] = mapped_column(String(100), index=True)
    deployment: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
