"""The console's management pages: apps (create, switch distribution mode), deployments (add, show and copy
their keys), collaborators (add, change role, remove) and access keys (create, list, revoke).

Every form is a POST checked like the release actions (same origin, session, CSRF token) and calls the same
service as the management API, as the signed-in key; the services' rules (names, the access-key rules of
``overair.auth.rules``) refuse what they refuse there, with the same messages.
"""

from __future__ import annotations

import datetime as dt
import re

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from overair.auth.roles import Role
from overair.auth.schemas import AccessKeyCreate
from overair.auth.service import AccessKeyService
from overair.console import views
from overair.console.core import Console, ConsoleApp, Identity, crumbs, field, url
from overair.console.security import COOKIE, COOKIE_PATH
from overair.errors import Invalid, NotFound
from overair.releases.apps import DEFAULT_DEPLOYMENTS
from overair.releases.schemas import AppCreate, DeploymentCreate, Distribution, Platform

RECENT_DELIVERIES = 5
"""Deliveries the app page shows of each webhook (``overair webhook deliveries`` shows more)."""

router = APIRouter()

_NAME_RULE = "1-100 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"
_DAYS = re.compile(r"[0-9]{1,5}")
MAX_KEY_DAYS = 100 * 365


def _distribution(mode: str) -> Distribution:
    try:
        return Distribution(mode)
    except ValueError as exc:
        raise Invalid(f"The distribution mode must be hybrid or store-only, not {mode!r}.") from exc


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        roles = ", ".join(r.value for r in Role)
        raise Invalid(f"The role must be one of {roles}; not {value!r}.") from exc


def _keys(console: Console) -> AccessKeyService:
    if console.access_keys is None:
        raise NotFound("This server's console does not manage access keys: use overair access-key.")
    return console.access_keys


# -- apps ---------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def apps(console: ConsoleApp, identity: Identity) -> Response:
    return console.page(
        "apps.html",
        identity=identity,
        apps=console.releases.apps.list_apps(identity.principal),
        platforms=list(Platform),
        default_deployments=DEFAULT_DEPLOYMENTS,
    )


@router.post("/apps")
async def create_app(console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    name = field(form, "name").strip()
    platforms = [Platform(p) for p in form.getlist("platforms") if p in set(Platform)]
    if not platforms:
        raise Invalid("Choose at least one platform (iOS, Android) for the app.")
    distribution = _distribution(field(form, "distribution") or Distribution.HYBRID.value)
    try:
        spec = AppCreate(name=name, platforms=platforms, distribution=distribution)
    except ValidationError as exc:
        raise Invalid(f'"{name}" is not a valid app name: use {_NAME_RULE}.', subject={"app": name}) from exc
    created = await anyio.to_thread.run_sync(console.releases.apps.create_app, identity.principal, spec)
    return RedirectResponse(url("apps", created.name, done="created"), status_code=303)


@router.get("/apps/{app}", response_class=HTMLResponse)
def app_page(app: str, console: ConsoleApp, identity: Identity, done: str = "", name: str = "") -> Response:
    who = identity.principal
    found = console.releases.apps.get_app(who, app)
    histories = {
        d.name: console.releases.releases.history(who, found.name, d.name) for d in found.deployments
    }
    notices = {
        "created": f"Created {found.name} with the deployments "
        f"{', '.join(d.name for d in found.deployments) or 'none'}.",
        "deployment": f"Added the deployment {name}: its key is below." if name else "",
        "distribution": f"{found.name} is now {found.distribution.value}.",
        "collaborator": f"{name} is now a collaborator of {found.name}." if name else "",
        "role": f"{name}'s role on {found.name} is changed." if name else "",
        "removed": f"{name} is no longer a collaborator of {found.name}." if name else "",
    }
    webhooks = console.webhooks
    hooks = webhooks.hooks(who, found.name) if webhooks else []
    deliveries = {
        hook.id: webhooks.deliveries(who, found.name, hook.id, RECENT_DELIVERIES)
        for hook in hooks
        if webhooks is not None
    }
    return console.page(
        "app.html",
        identity=identity,
        app=found,
        collaborators=console.releases.team.collaborators(who, found.name),
        roles=list(Role),
        histories=histories,
        webhooks=hooks,
        deliveries=deliveries,
        notice=notices.get(done, ""),
        crumbs=crumbs(found.name),
    )


@router.get("/apps/{app}/distribution/confirm", response_class=HTMLResponse)
def confirm_distribution(app: str, console: ConsoleApp, identity: Identity, mode: str = "") -> Response:
    found = console.releases.apps.get_app(identity.principal, app)
    return console.page(
        "confirm.html",
        identity=identity,
        confirmation=views.confirm_distribution(found.name, _distribution(mode)),
        action=url("apps", found.name, "distribution"),
        back=url("apps", found.name),
        mistyped="",
        crumbs=crumbs(found.name),
    )


@router.post("/apps/{app}/distribution")
async def set_distribution(app: str, console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    wanted = _distribution(field(form, "mode"))
    await anyio.to_thread.run_sync(console.releases.apps.set_distribution, identity.principal, app, wanted)
    return RedirectResponse(url("apps", app, done="distribution"), status_code=303)


# -- deployments --------------------------------------------------------------------------------------


@router.post("/apps/{app}/deployments")
async def add_deployment(app: str, console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    name = field(form, "name").strip()
    try:
        spec = DeploymentCreate(name=name)
    except ValidationError as exc:
        raise Invalid(
            f'"{name}" is not a valid deployment name: use {_NAME_RULE}.', subject={"deployment": name}
        ) from exc
    added = await anyio.to_thread.run_sync(
        console.releases.deployments.add_deployment, identity.principal, app, spec
    )
    return RedirectResponse(url("apps", app, done="deployment", name=added.name), status_code=303)


# -- collaborators ------------------------------------------------------------------------------------


@router.post("/apps/{app}/collaborators")
async def add_collaborator(app: str, console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    account, role = field(form, "account").strip(), _role(field(form, "role"))
    if not account:
        raise Invalid("Give the name of the account to add (its owner finds it with overair account show).")
    team = console.releases.team
    added = await anyio.to_thread.run_sync(team.add_collaborator, identity.principal, app, account, role)
    return RedirectResponse(url("apps", app, done="collaborator", name=added.account), status_code=303)


@router.post("/apps/{app}/collaborators/{account}/role")
async def set_collaborator_role(app: str, account: str, console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    role = _role(field(form, "role"))
    await anyio.to_thread.run_sync(console.releases.team.set_role, identity.principal, app, account, role)
    return RedirectResponse(url("apps", app, done="role", name=account), status_code=303)


@router.post("/apps/{app}/collaborators/{account}/remove")
async def remove_collaborator(app: str, account: str, console: ConsoleApp, request: Request) -> Response:
    identity, _form = await console.checked_form(request)
    team = console.releases.team
    await anyio.to_thread.run_sync(team.remove_collaborator, identity.principal, app, account)
    if account == identity.principal.account:  # left the app: its page is no longer theirs to see
        return RedirectResponse(url(), status_code=303)
    return RedirectResponse(url("apps", app, done="removed", name=account), status_code=303)


# -- access keys --------------------------------------------------------------------------------------


@router.get("/access-keys", response_class=HTMLResponse)
def access_keys(console: ConsoleApp, identity: Identity, done: str = "", name: str = "") -> Response:
    keys = _keys(console).list(identity.principal)
    notice = f'The access key "{name}" is revoked: requests with it are refused.' if done == "revoked" else ""
    return console.page(
        "access_keys.html",
        identity=identity,
        keys=keys,
        notice=notice,
        max_days=MAX_KEY_DAYS,
        crumbs=[("Access keys", url("access-keys"))],
    )


@router.post("/access-keys", response_class=HTMLResponse)
async def create_access_key(console: ConsoleApp, request: Request) -> Response:
    identity, form = await console.checked_form(request)
    name, days = field(form, "name").strip(), field(form, "expires_in_days").strip()
    if days and (not _DAYS.fullmatch(days) or not 1 <= int(days) <= MAX_KEY_DAYS):
        raise Invalid(
            f"The key's lifetime must be a whole number of days from 1 to {MAX_KEY_DAYS}, or empty for a key "
            f"that never expires; not {days!r}."
        )
    try:
        AccessKeyCreate(name=name)
    except ValidationError as exc:
        raise Invalid(
            f'"{name}" is not a valid access key name: use 1-100 letters, digits, spaces, ".", "_", "@" or '
            '"-", starting with a letter or digit.',
            subject={"access_key": name},
        ) from exc
    lifetime = dt.timedelta(days=int(days)) if days else None
    created = await anyio.to_thread.run_sync(_keys(console).create, identity.principal, name, lifetime)
    return console.page(
        "access_key_created.html",
        201,
        identity=identity,
        key=created,
        server=str(request.base_url).removesuffix("/").removesuffix(COOKIE_PATH),
        crumbs=[("Access keys", url("access-keys"))],
    )


@router.get("/access-keys/{name}/confirm-revoke", response_class=HTMLResponse)
def confirm_revoke(name: str, console: ConsoleApp, identity: Identity) -> Response:
    key = _keys(console).get(identity.principal, name)
    return console.page(
        "confirm.html",
        identity=identity,
        confirmation=views.confirm_revoke(key.name, yours=key.name == identity.key_name),
        action=url("access-keys", key.name, "revoke"),
        back=url("access-keys"),
        mistyped="",
        crumbs=[("Access keys", url("access-keys"))],
    )


@router.post("/access-keys/{name}/revoke")
async def revoke_access_key(name: str, console: ConsoleApp, request: Request) -> Response:
    identity, _form = await console.checked_form(request)
    await anyio.to_thread.run_sync(_keys(console).revoke, identity.principal, name)
    if name == identity.key_name:
        # its sessions went with it, this one included
        response = RedirectResponse(url("sign-in", reason="ended"), status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response
    return RedirectResponse(url("access-keys", done="revoked", name=name), status_code=303)
