"""Stored rows as the release domain hands them out (the ``*Out`` schemas of every surface)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from overair.auth.models import Account, Organisation
from overair.releases.models import App, Binary, Deployment, Release
from overair.releases.schemas import AppOut, BinaryOut, DeploymentOut, Distribution, Platform, ReleaseOut


def binary_name(binary: Binary) -> str:
    """``1.2.0`` or ``1.2.0 build 42``."""
    return binary.version + (f" build {binary.build_number}" if binary.build_number is not None else "")


def binary_out(binary: Binary) -> BinaryOut:
    """A registered store binary."""
    return BinaryOut(
        version=binary.version,
        build_number=binary.build_number,
        descriptor=json.loads(binary.descriptor),
        registered_by=binary.registered_by,
        registered_at=binary.registered_at,
    )


def release_out(release: Release, deployment: Deployment) -> ReleaseOut:
    """A release with its counters and signature."""
    return ReleaseOut(
        label=release.label,
        deployment=deployment.name,
        package_hash=release.package_hash,
        size=release.package.size,
        file_count=release.package.file_count,
        target_version=release.target_version,
        build_number=release.build_number,
        rollout=release.rollout,
        mandatory=release.mandatory,
        disabled=release.disabled,
        disabled_by=release.disabled_by,
        disabled_at=release.disabled_at,
        disabled_reason=release.disabled_reason,
        sync_before_update=release.sync_before_update,
        description=release.description,
        released_by=release.released_by,
        released_at=release.released_at,
        method=release.method,
        origin_label=release.origin_label,
        origin_deployment=release.origin_deployment,
        downloads=release.downloads,
        installs=release.installs,
        failures=release.failures,
        rollbacks=release.rollbacks,
        sequence=release.sequence,
        signed_manifest=release.signed_manifest,
        signature=release.signature,
        signing_key_id=release.signing_key_id,
        platform=release.platform,
        runtime_version=release.runtime_version,
        update_id=release.update_id,
    )


def deployment_out(session: Session, deployment: Deployment) -> DeploymentOut:
    """A deployment with its key and newest label."""
    latest = session.scalar(
        select(Release.label)
        .where(Release.deployment_id == deployment.id)
        .order_by(Release.seq.desc())
        .limit(1)
    )
    return DeploymentOut(
        name=deployment.name,
        key=deployment.key,
        created_at=deployment.created_at,
        latest_label=latest,
        production=deployment.production,
    )


def app_out(session: Session, app: App) -> AppOut:
    """An app with its deployments."""
    return AppOut(
        name=app.name,
        platforms=[Platform(p) for p in app.platforms.split(",") if p],
        distribution=Distribution(app.distribution),
        created_at=app.created_at,
        deployments=[deployment_out(session, d) for d in app.deployments],
        owner=owner_of(session, app),
        owner_is_organisation=app.owner_organisation_id is not None,
    )


def owner_of(session: Session, app: App) -> str | None:
    """The name of the account or organisation that owns ``app`` (None: nobody, only server admins)."""
    if app.owner_organisation_id is not None:
        return session.scalar(select(Organisation.name).where(Organisation.id == app.owner_organisation_id))
    if app.owner_account_id is not None:
        return session.scalar(select(Account.name).where(Account.id == app.owner_account_id))
    return None
