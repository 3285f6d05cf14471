"""Queries of the release domain, shared by the service's operations."""

from __future__ import annotations

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session, selectinload

from overair.errors import Fix
from overair.releases.errors import AppNotFound, DeploymentNotFound, ReleaseNotFound
from overair.releases.models import App, Deployment, Release
from overair.releases.schemas import ReportStatus

_REPORT_COLUMNS = {
    ReportStatus.DOWNLOADED: Release.downloads,
    ReportStatus.INSTALLED: Release.installs,
    ReportStatus.FAILED: Release.failures,
    ReportStatus.ROLLED_BACK: Release.rollbacks,
}


def get_app(session: Session, name: str) -> App:
    """The app called ``name``, or :class:`AppNotFound` listing what exists."""
    app = session.scalar(select(App).where(App.name == name).options(selectinload(App.deployments)))
    if app is None:
        names = session.scalars(select(App.name).order_by(App.name)).all()
        known = ", ".join(names) if names else "none yet"
        raise AppNotFound(
            f'No app named "{name}" (apps: {known}).',
            subject={"app": name},
            fixes=[Fix("create-app", {"app": name})],
        )
    return app


def get_deployment(session: Session, app: App, name: str) -> Deployment:
    """The deployment ``name`` of ``app`` (case-insensitive), or :class:`DeploymentNotFound`."""
    for deployment in app.deployments:
        if deployment.name.lower() == name.lower():
            return deployment
    known = ", ".join(d.name for d in app.deployments) or "none"
    raise DeploymentNotFound(
        f'App "{app.name}" has no deployment "{name}" (deployments: {known}).',
        subject={"app": app.name, "deployment": name},
        fixes=[Fix("add-deployment", {"app": app.name, "deployment": name})],
    )


def releases_of(session: Session, deployment: Deployment) -> list[Release]:
    """The deployment's releases, oldest first."""
    return list(
        session.scalars(select(Release).where(Release.deployment_id == deployment.id).order_by(Release.seq))
    )


def get_release(session: Session, deployment: Deployment, label: str) -> Release:
    """The release ``label`` of ``deployment``, or :class:`ReleaseNotFound` listing the labels."""
    release = session.scalar(
        select(Release).where(Release.deployment_id == deployment.id, Release.label == label)
    )
    if release is None:
        labels = [r.label for r in releases_of(session, deployment)]
        known = ", ".join(labels[-10:]) if labels else "none yet"
        raise ReleaseNotFound(
            f'Deployment "{deployment.name}" has no release "{label}" (labels: {known}).',
            subject={"deployment": deployment.name, "release": label},
            fixes=[Fix("list-releases", {"deployment": deployment.name})],
        )
    return release


def with_history(session: Session, release_id: int) -> tuple[Release, list[Release]] | None:
    """A release and its deployment's whole history (oldest first, the release itself in it), or None
    when the release is gone (a background job may run after a deletion)."""
    release = session.get(Release, release_id)
    if release is None:
        return None
    history = list(
        session.scalars(
            select(Release).where(Release.deployment_id == release.deployment_id).order_by(Release.seq)
        )
    )
    return release, history


def deployment_by_key(session: Session, key: str) -> Deployment | None:
    """The deployment a device addresses by its key."""
    return session.scalar(
        select(Deployment).where(Deployment.key == key).options(selectinload(Deployment.app))
    )


def count_report(session: Session | Connection, deployment_id: int, label: str, status: ReportStatus) -> bool:
    """Add a device report to the release's counters (one UPDATE); False when there is no such release.

    ``running`` reports have no release counter: for them this only checks that the release exists.
    """
    where = (Release.deployment_id == deployment_id, Release.label == label)
    column = _REPORT_COLUMNS.get(status)
    if column is None:
        return session.scalar(select(Release.id).where(*where)) is not None
    result = session.execute(update(Release).where(*where).values({column: column + 1}))
    return bool(result.rowcount)  # type: ignore[attr-defined]
