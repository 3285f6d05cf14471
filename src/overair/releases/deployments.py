"""Deployments of an app: list, add, rename, remove, clear their history, and what the next release is."""

from __future__ import annotations

from sqlalchemy import delete, select

from overair.audit.rules import AuditAction
from overair.auth.principal import Action, Principal
from overair.releases import repository as repo
from overair.releases.apps import new_deployment_key
from overair.releases.errors import NameTaken
from overair.releases.models import App, Deployment, Release
from overair.releases.outputs import deployment_out
from overair.releases.rules import check_deployment_key
from overair.releases.schemas import DeploymentCreate, DeploymentOut, NextRelease
from overair.releases.unit import Changes, touch


def _check_free(app: App, name: str, keep: Deployment | None = None) -> None:
    if any(d.name.lower() == name.lower() and d is not keep for d in app.deployments):
        raise NameTaken(
            f'App "{app.name}" already has a deployment named "{name}".',
            subject={"app": app.name, "deployment": name},
        )


class DeploymentService:
    """Deployments over the database; each method is one transaction."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def list_deployments(self, actor: Principal, app_name: str) -> list[DeploymentOut]:
        """The app's deployments with their keys."""
        actor.require(Action.READ, app=app_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            return [deployment_out(session, d) for d in app.deployments]

    def add_deployment(self, actor: Principal, app_name: str, spec: DeploymentCreate) -> DeploymentOut:
        """Add a deployment, with a new key or the one given."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            _check_free(app, spec.name)
            key = check_deployment_key(spec.key) if spec.key else new_deployment_key()
            if session.scalar(select(Deployment.id).where(Deployment.key == key)) is not None:
                raise NameTaken("That deployment key is already in use by another deployment.")
            deployment = Deployment(name=spec.name, key=key)
            app.deployments.append(deployment)
            session.flush()
            changed.add(key)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.DEPLOYMENT_CREATE,
                app=app.name,
                deployment=deployment.name,
                after={"name": deployment.name, "key_given": spec.key is not None},
            )
            return deployment_out(session, deployment)

    def rename_deployment(self, actor: Principal, app_name: str, name: str, new_name: str) -> DeploymentOut:
        """Rename a deployment; devices keep using its key."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name, deployment=name)
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, name)
            _check_free(app, new_name, keep=deployment)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.DEPLOYMENT_RENAME,
                app=app.name,
                deployment=new_name,
                before={"name": deployment.name},
                after={"name": new_name},
            )
            deployment.name = new_name
            return deployment_out(session, deployment)

    def remove_deployment(self, actor: Principal, app_name: str, name: str) -> None:
        """Delete a deployment and its releases; devices using its key get 'unknown deployment key'."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name, deployment=name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, name)
            changed.add(deployment.key)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.DEPLOYMENT_REMOVE,
                app=app.name,
                deployment=deployment.name,
                before={"name": deployment.name, "releases": len(repo.releases_of(session, deployment))},
            )
            app.deployments.remove(deployment)
            session.delete(deployment)

    def clear_history(self, actor: Principal, app_name: str, deployment_name: str) -> None:
        """Delete every release of a deployment; labels start again at v1, the key and stored content stay."""
        actor.require(Action.MANAGE_DEPLOYMENTS, app=app_name, deployment=deployment_name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            self._changes.audit.record(
                session,
                actor,
                AuditAction.DEPLOYMENT_CLEAR,
                app=app.name,
                deployment=deployment.name,
                before={"releases": len(repo.releases_of(session, deployment))},
                after={"releases": 0},
            )
            session.execute(delete(Release).where(Release.deployment_id == deployment.id))
            touch(session, deployment, changed)

    def next_release(self, actor: Principal, app_name: str, deployment_name: str) -> NextRelease:
        """The label and sequence number the deployment's next release gets (what a publisher signs)."""
        actor.require(Action.READ, app=app_name, deployment=deployment_name)
        with self._changes.sessions() as session:
            app = repo.get_app(session, app_name)
            deployment = repo.get_deployment(session, app, deployment_name)
            history = repo.releases_of(session, deployment)
            seq = (history[-1].seq if history else 0) + 1
            return NextRelease(label=f"v{seq}", sequence=app.release_sequence + 1)
