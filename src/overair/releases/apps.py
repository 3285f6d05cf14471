"""Apps: create, list, rename, remove, and switch between hybrid and store-only distribution."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy import select

from overair.audit.rules import AuditAction
from overair.auth.accounts import visible_organisation
from overair.auth.models import Account
from overair.auth.principal import Action, Principal
from overair.errors import Invalid
from overair.releases import repository as repo
from overair.releases.errors import NameTaken
from overair.releases.models import App, Deployment
from overair.releases.outputs import app_out
from overair.releases.schemas import AppCreate, AppOut, Distribution
from overair.releases.unit import Changes, touch

DEFAULT_DEPLOYMENTS = ("Production", "Staging")


def new_deployment_key() -> str:
    """An unguessable deployment key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _name_taken(name: str) -> NameTaken:
    return NameTaken(f'An app named "{name}" already exists; pick another name.', subject={"app": name})


def _fields(app: App) -> dict[str, object]:
    """What the audit log records of an app."""
    return {
        "name": app.name,
        "platforms": app.platforms,
        "distribution": app.distribution,
        "deployments": [d.name for d in app.deployments],
    }


class AppService:
    """Apps over the database; each method is one transaction."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def create_app(
        self,
        actor: Principal,
        spec: AppCreate,
        deployments: Sequence[str] = DEFAULT_DEPLOYMENTS,
        organisation: str | None = None,
    ) -> AppOut:
        """Create an app with the given deployments (Production and Staging by default; may be none), owned
        by the acting account (the server itself: by nobody, so only server admins manage it), or by
        ``organisation`` (one the acting account administers)."""
        actor.require(Action.CREATE_APPS)
        with self._changes.transaction() as (session, _):
            org_id = None
            if organisation is not None:
                org_id = visible_organisation(session, actor, organisation).id
                actor.require(Action.MANAGE_ORGANISATIONS, organisation=organisation)
            if session.scalar(select(App.id).where(App.name == spec.name)) is not None:
                raise _name_taken(spec.name)
            owner = (
                None if org_id else session.scalar(select(Account.id).where(Account.name == actor.account))
            )
            app = App(
                name=spec.name,
                platforms=",".join(sorted({p.value for p in spec.platforms})),
                distribution=spec.distribution.value,
                owner_account_id=owner,
                owner_organisation_id=org_id,
            )
            app.deployments = [Deployment(name=n, key=new_deployment_key()) for n in deployments]
            session.add(app)
            session.flush()
            self._changes.audit.record(
                session,
                actor,
                AuditAction.APP_CREATE,
                app=app.name,
                after={**_fields(app), "owner": organisation} if organisation else _fields(app),
            )
            return app_out(session, app)

    def list_apps(self, actor: Principal) -> list[AppOut]:
        """Every app the actor may see, by name."""
        with self._changes.sessions() as session:
            apps = session.scalars(select(App).order_by(App.name)).all()
            return [app_out(session, a) for a in apps if actor.may(Action.READ, app=a.name)]

    def get_app(self, actor: Principal, name: str) -> AppOut:
        """One app."""
        actor.require(Action.READ, app=name)
        with self._changes.sessions() as session:
            return app_out(session, repo.get_app(session, name))

    def remove_app(self, actor: Principal, name: str) -> None:
        """Delete an app, its deployments and releases (stored content stays for other apps)."""
        actor.require(Action.REMOVE_APPS, app=name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, name)
            changed.update(d.key for d in app.deployments)
            self._changes.audit.record(
                session, actor, AuditAction.APP_REMOVE, app=app.name, before=_fields(app)
            )
            session.delete(app)

    def set_distribution(self, actor: Principal, name: str, distribution: Distribution) -> AppOut:
        """Switch an app between hybrid (OTA allowed) and store-only."""
        actor.require(Action.MANAGE_APPS, app=name)
        with self._changes.transaction() as (session, changed):
            app = repo.get_app(session, name)
            before = _fields(app)
            app.distribution = distribution.value
            self._changes.audit.record(
                session, actor, AuditAction.APP_DISTRIBUTION, app=app.name, before=before, after=_fields(app)
            )
            for deployment in app.deployments:
                touch(session, deployment, changed)
            return app_out(session, app)

    def rename_app(self, actor: Principal, name: str, new_name: str) -> AppOut:
        """Rename an app; its deployments and their keys stay."""
        actor.require(Action.MANAGE_APPS, app=name)
        try:
            new_name = AppCreate(name=new_name).name
        except ValidationError as exc:
            raise Invalid(
                f'"{new_name}" is not a valid app name: use 1-100 letters, digits, spaces, ".", "_" or "-", '
                "starting with a letter or digit.",
                subject={"app": new_name},
            ) from exc
        with self._changes.transaction() as (session, _):
            app = repo.get_app(session, name)
            if new_name != app.name and session.scalar(select(App.id).where(App.name == new_name)):
                raise _name_taken(new_name)
            before = _fields(app)
            app.name = new_name
            session.flush()
            self._changes.audit.record(
                session, actor, AuditAction.APP_RENAME, app=new_name, before=before, after=_fields(app)
            )
            return app_out(session, app)
