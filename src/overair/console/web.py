"""The console's routes: server-rendered pages over the same services the management API uses.

Reading a page needs a signed-in session; every action is a GET to a confirmation page that says what
devices will see, then a POST from that page carrying the session's CSRF token. Every action acts as the
access key that signed in (``released_by`` on new releases), through :class:`ReleaseService`, so the
console can do nothing the key could not do through the API.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from overair.audit.service import AuditService
from overair.auth.principal import Action, Principal
from overair.auth.service import AccessKeyService
from overair.auth.sessions import (
    ConsoleIdentity,
    ConsoleSessions,
    KeyExpired,
    NotSignedIn,
    SessionExpired,
)
from overair.auth.throttle import TooManyAttempts
from overair.console import audit as audit_pages
from overair.console import manage, views
from overair.console.core import (
    STATIC,
    Console,
    Identity,
    SecurityHeaders,
    crumbs,
    field,
    url,
)
from overair.console.fixes import TITLES, console_fixes
from overair.console.metrics import MetricsReader
from overair.console.security import COOKIE, COOKIE_PATH, check_same_origin, safe_next
from overair.errors import Invalid, NotFound, Unauthorized
from overair.inputs import whole_number
from overair.metrics.rules import DEFAULT_THRESHOLD
from overair.problems import EXPECTED_FAILURES, UNSTORABLE, client_gone, describe
from overair.releases import rules
from overair.releases.domain import ReleaseDomain
from overair.releases.errors import ConfirmationRequired
from overair.releases.schemas import (
    AppOut,
    PromoteRequest,
    ReleaseOut,
    ReleasePatch,
)
from overair.webhooks import Webhooks

log = logging.getLogger("overair.console")

CHART_HOURS = 24 * 30
"""How far back the charts look for data; they then show the range that fits it (views.chart_range)."""

ACTIONS = ("rollout", "mandatory", "disabled", "rollback", "promote")

SIGN_IN_REASONS = {
    "ended": "Your session has ended (you signed out, or the access key was revoked): sign in again.",
    "expired": "Your session expired: sign in again with your access key.",
    "key-expired": "The access key you signed in with has expired: ask an admin for a new key "
    "(overair access-key create) and sign in with it.",
    "signed-out": "You are signed out.",
}
"""Why the sign-in page is shown after a redirect (``?reason=``): fixed texts, never taken from the URL."""


def _release_in(history: list[ReleaseOut], label: str, deployment: str) -> ReleaseOut:
    for release in history:
        if release.label == label:
            return release
    labels = ", ".join(r.label for r in history) or "none"
    raise NotFound(f'{deployment} has no release "{label}" (releases: {labels}).')


def _previous(history: list[ReleaseOut], release: ReleaseOut) -> ReleaseOut | None:
    index = history.index(release)
    return history[index - 1] if index > 0 else None


def _bool(text: str, name: str) -> bool:
    if text in ("true", "false"):
        return text == "true"
    raise Invalid(f"{name} must be true or false, not {text!r}.")


def _percentage(text: str) -> int:
    percentage = whole_number(text, 100)
    if not percentage:
        raise Invalid(f"The rollout must be a whole percentage from 1 to 100, not {text!r}.")
    return percentage


def create_console(
    releases: ReleaseDomain,
    sessions: ConsoleSessions,
    public_url: str = "",
    metrics: MetricsReader | None = None,
    access_keys: AccessKeyService | None = None,
    audit: AuditService | None = None,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """The console as an ASGI app, to be mounted at ``/console`` (its access-key pages need
    ``access_keys``, its audit page ``audit``; the app page lists webhooks and their deliveries given
    ``webhooks``)."""
    console = Console(releases, sessions, public_url, metrics, access_keys, audit, webhooks)
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.state.console = console
    web.add_middleware(SecurityHeaders)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_error_pages(web, console)

    # -- signing in and out ---------------------------------------------------------------------------

    @web.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form(request: Request, next: str = "", reason: str = "") -> Response:
        try:
            console.identity(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except Unauthorized:
            message = SIGN_IN_REASONS.get(reason, "Sign in with an access key to continue." if next else "")
            error = reason in SIGN_IN_REASONS and reason != "signed-out"
            response = console.sign_in_page(200, message, error=error, next_url=next)
            if COOKIE in request.cookies:
                response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
            return response

    @web.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        check_same_origin(request.headers, console.origins(request))
        form = await request.form(max_files=0, max_fields=5)
        key, next_url = field(form, "access_key"), field(form, "next")
        client = request.client.host if request.client else None
        try:
            token, _identity = await anyio.to_thread.run_sync(sessions.open, key, client)
        except Unauthorized as exc:
            return console.sign_in_page(401, exc.message, error=True, next_url=next_url)
        except TooManyAttempts as exc:
            refused = console.sign_in_page(429, exc.message, error=True, next_url=next_url)
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        response = RedirectResponse(safe_next(next_url), status_code=303)
        # A browser-session cookie: the server alone decides when the session expires, so it can say why
        # (the session's lifetime, or the key's expiry) instead of the cookie silently disappearing.
        response.set_cookie(
            COOKIE,
            token,
            path=COOKIE_PATH,
            secure=console.secure_cookie(request),
            httponly=True,
            samesite="strict",
        )
        old = request.cookies.get(COOKIE)
        if old:
            await anyio.to_thread.run_sync(sessions.close, old)
        return response

    @web.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await console.checked_form(request)
        await anyio.to_thread.run_sync(sessions.close, request.cookies.get(COOKIE))
        response = RedirectResponse(url("sign-in", reason="signed-out"), status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    # apps, deployments, access keys
    web.include_router(manage.router)
    web.include_router(audit_pages.router)

    # -- a deployment and its releases ----------------------------------------------------------------

    @web.get("/apps/{app}/deployments/{deployment}", response_class=HTMLResponse)
    def deployment_page(
        app: str, deployment: str, identity: Identity, done: str = "", label: str = ""
    ) -> Response:
        who = identity.principal
        found = releases.apps.get_app(who, app)
        history = releases.releases.history(who, found.name, deployment)
        name = next((d.name for d in found.deployments if d.name.lower() == deployment.lower()), deployment)
        key = next((d.key for d in found.deployments if d.name == name), "")
        window, charts = _charts(console.metrics, found.name, name, history)
        return console.page(
            "deployment.html",
            identity=identity,
            app=found,
            deployment=name,
            deployment_key=key,
            rows=views.history_rows(history),
            latest=history[-1] if history else None,
            rollback=views.main_rollback(history, name),
            threshold=DEFAULT_THRESHOLD,
            charts=charts,
            window=window,
            notice=_notice(done, label, history),
            signed_only=_signed_only(releases, who, found.name),
            crumbs=crumbs(found.name, name),
        )

    @web.get("/apps/{app}/deployments/{deployment}/releases/{label}", response_class=HTMLResponse)
    def release_page(app: str, deployment: str, label: str, identity: Identity, done: str = "") -> Response:
        who = identity.principal
        found = releases.apps.get_app(who, app)
        history = releases.releases.history(who, found.name, deployment)
        release = _release_in(history, label, deployment)
        previous = _previous(history, release)
        new_manifest = releases.releases.manifest(who, found.name, release.deployment, release.label)
        old_manifest = (
            releases.releases.manifest(who, found.name, release.deployment, previous.label)
            if previous
            else []
        )
        row = next(r for r in views.history_rows(history) if r.release.label == release.label)
        shown = [r for r in (previous, release) if r is not None]
        measured = any(views.failure_rate(r) is not None for r in history)
        metrics = console.metrics
        return console.page(
            "release.html",
            identity=identity,
            app=found,
            deployment=release.deployment,
            release=release,
            row=row,
            previous=previous,
            latest=history[-1],
            changes=views.compare_manifests(old_manifest, new_manifest),
            file_count=sum(1 for e in new_manifest if not e.is_directory),
            diffs=releases.releases.diffs(who, found.name, release.deployment, release.label),
            signature=views.signature_status(release),
            rates={r.label: views.failure_rate(r) for r in history},
            failing=rules.failing(release),
            risky=bool(rules.rollback_risks(release)),
            rollback=views.main_rollback(history, release.deployment),
            why_disabled=views.why_disabled(release),
            threshold=DEFAULT_THRESHOLD,
            active=metrics.active_devices(found.name, release.deployment) if metrics else None,
            last_failure=(
                metrics.last_failures(found.name, release.deployment).get(release.label) if metrics else None
            ),
            charts=_release_charts(releases, who, found.name, release, shown if measured else []),
            others=[  # the deployments this key may promote to: only those are offered
                d.name
                for d in found.deployments
                if d.name != release.deployment and who.may(Action.PUBLISH, app=found.name, deployment=d.name)
            ],
            signed_only=_signed_only(releases, who, found.name),
            notice=_notice(done, release.label, history),
            crumbs=crumbs(found.name, release.deployment, release.label),
        )

    @web.get(
        "/apps/{app}/deployments/{deployment}/releases/{label}/confirm/{action}",
        response_class=HTMLResponse,
    )
    def confirm_action(
        app: str, deployment: str, label: str, action: str, request: Request, identity: Identity
    ) -> Response:
        return _confirm_page(console, identity, app, deployment, label, action, dict(request.query_params))

    @web.post("/apps/{app}/deployments/{deployment}/releases/{label}/{action}")
    async def act(app: str, deployment: str, label: str, action: str, request: Request) -> Response:
        identity, form = await console.checked_form(request)
        if action not in ACTIONS:
            raise NotFound(f"There is no action {action!r}; the actions are {', '.join(ACTIONS)}.")
        actor = identity.principal
        confirm = field(form, "confirm")
        try:
            if action == "rollback":
                done = await anyio.to_thread.run_sync(
                    lambda: releases.releases.rollback(actor, app, deployment, label, confirm=confirm)
                )
                target = url("apps", app, "deployments", done.deployment, done="rollback", label=done.label)
                return RedirectResponse(target, status_code=303)
            if action == "promote":
                request_body = PromoteRequest(
                    source=deployment, destination=field(form, "destination"), label=label
                )
                done = await anyio.to_thread.run_sync(releases.releases.promote, actor, app, request_body)
                target = url("apps", app, "deployments", done.deployment, done="promote", label=done.label)
                return RedirectResponse(target, status_code=303)
            patch = _patch(action, label, form)
            changed = await anyio.to_thread.run_sync(releases.releases.patch, actor, app, deployment, patch)
        except ConfirmationRequired:
            # the label was not typed as asked: the same confirmation again, saying so
            fields = {k: field(form, k) for k in ("rollout", "mandatory", "disabled", "destination")}
            mistyped = f'You typed "{confirm}": type {label} exactly to confirm.' if confirm else ""
            return await anyio.to_thread.run_sync(
                lambda: _confirm_page(
                    console, identity, app, deployment, label, action, fields, 409, mistyped or None
                )
            )
        target = url("apps", app, "deployments", changed.deployment, "releases", changed.label, done=action)
        return RedirectResponse(target, status_code=303)

    return web


def _patch(action: str, label: str, form: Any) -> ReleasePatch:
    confirm = field(form, "confirm") or None
    if action == "rollout":
        return ReleasePatch(label=label, rollout=_percentage(field(form, "rollout")))
    if action == "mandatory":
        return ReleasePatch(label=label, mandatory=_bool(field(form, "mandatory"), "mandatory"))
    return ReleasePatch(label=label, disabled=_bool(field(form, "disabled"), "disabled"), confirm=confirm)


def _confirm_page(
    console: Console,
    identity: Any,
    app: str,
    deployment: str,
    label: str,
    action: str,
    query: dict[str, str],
    status: int = 200,
    mistyped: str | None = None,
) -> Response:
    """The confirmation step of a release action (again, with ``mistyped``, when the label was not typed
    as asked)."""
    who = identity.principal
    releases = console.releases
    found = releases.apps.get_app(who, app)
    history = releases.releases.history(who, found.name, deployment)
    release = _release_in(history, label, deployment)
    confirmation = _confirmation(releases, who, found, release, history, action, query)
    base = url("apps", found.name, "deployments", release.deployment, "releases", release.label)
    return console.page(
        "confirm.html",
        status,
        identity=identity,
        confirmation=confirmation,
        action=f"{base}/{action}",
        back=base,
        mistyped=mistyped or ("" if status == 200 else f"Type {release.label} to confirm."),
        crumbs=crumbs(found.name, release.deployment, release.label),
    )


def _signed_only(releases: ReleaseDomain, who: Principal, app: str) -> bool:
    """The app accepts signed releases only: rollback and promote need the publisher's offline key,
    which never reaches the server, so the console points to the CLI for them."""
    return any(k.retired_at is None for k in releases.signing_keys.list_signing_keys(who, app))


def _confirmation(
    releases: ReleaseDomain,
    who: Principal,
    app: AppOut,
    release: ReleaseOut,
    history: list[ReleaseOut],
    action: str,
    query: dict[str, str],
) -> views.Confirmation:
    if action == "rollout":
        rollout = _percentage(query.get("rollout", ""))
        rules.check_rollout_change(release, rollout)
        if rollout == release.rollout:
            raise Invalid(
                f"{release.label} already reaches {release.rollout}% of devices: nothing to change."
            )
        return views.confirm_rollout(release, rollout)
    if action == "mandatory":
        return views.confirm_mandatory(release, _bool(query.get("mandatory", ""), "mandatory"))
    if action == "disabled":
        return views.confirm_disabled(release, _bool(query.get("disabled", ""), "disabled"), history)
    if action == "rollback":
        rules.rollback_plan(history, release.deployment, chosen=release)
        return views.confirm_rollback(release, history)
    if action == "promote":
        destination = query.get("destination", "")
        names = [d.name for d in app.deployments if d.name != release.deployment]
        if destination not in names:
            raise Invalid(
                f"Pick a deployment to promote to ({', '.join(names) or 'the app has no other deployment'})."
            )
        return views.confirm_promote(
            release, destination, releases.releases.history(who, app.name, destination)
        )
    raise NotFound(f"There is no action {action!r}; the actions are {', '.join(ACTIONS)}.")


def _notice(done: str, label: str, history: list[ReleaseOut]) -> str:
    release = next((r for r in history if r.label == label), None)
    if release is None:
        return ""
    if done == "rollback":
        before = _previous(history, release)
        stopped = before is not None and before.disabled and before.rollout < 100
        also = f" {before.label} is disabled and stays at {before.rollout}%." if stopped and before else ""
        return f"Rolled back: {release.label} now serves the content of {release.origin_label}.{also}"
    if done == "promote":
        return (
            f"Promoted: {release.label} serves the content of {release.origin_label} "
            f"of {release.origin_deployment}."
        )
    if done == "rollout":
        return f"{release.label} now reaches {release.rollout}% of devices."
    if done == "mandatory":
        return f"{release.label} is now {'mandatory' if release.mandatory else 'optional'}."
    if done == "disabled":
        return f"{release.label} is now {'disabled' if release.disabled else 'enabled'}."
    return ""


def _release_charts(
    releases: ReleaseDomain, who: Principal, app: str, release: ReleaseOut, measured: list[ReleaseOut]
) -> dict[str, Any]:
    """The release page's charts: the failure rate next to the previous release's (once anything was
    measured) and the guarded rollout's share over time (when it ramps under a policy)."""
    charts: dict[str, Any] = {"rate": views.rate_chart(measured)} if measured else {}
    ramp = release.guarded_rollout
    if ramp is not None:
        points = releases.rollouts.ramp(who, app, release.deployment, release.label)
        charts["ramp"] = views.ramp_chart(points, release.rollout, ramp.last_evaluated_at)
    return charts


def _charts(
    metrics: MetricsReader | None, app: str, deployment: str, history: list[ReleaseOut]
) -> tuple[views.ChartRange | None, dict[str, Any]]:
    charts: dict[str, Any] = {"totals": views.totals_chart(history)}
    if metrics is None:
        return None, charts
    now = dt.datetime.now(dt.UTC)
    window, hourly = views.range_charts(metrics.series(app, deployment, hours=CHART_HOURS, now=now), now)
    charts.update(hourly)
    return window, charts


TRUST_NOTHING = ("cross-site-request", "forged-form", "database-down")
"""Refusals whose page shows nothing of the session (they may answer a request another site made, or the
session cannot be read)."""


def _signed_in(console: Console, request: Request) -> ConsoleIdentity | None:
    try:
        return console.identity(request)
    except Unauthorized:
        return None


def _came_from(request: Request) -> str:
    """The console page a refused form was sent from (the browser says so: Referrer-Policy same-origin)."""
    referer = urlsplit(request.headers.get("referer", ""))
    origin = f"{referer.scheme}://{referer.netloc}".lower()
    if origin not in console_origins(request) or not referer.path.startswith(COOKIE_PATH + "/"):
        return ""
    target = referer.path + (f"?{referer.query}" if referer.query else "")
    return target if safe_next(target) == target else ""


def console_origins(request: Request) -> set[str]:
    """The origins of this console, as :meth:`Console.origins` gives them."""
    console: Console = request.app.state.console
    return console.origins(request)


def _install_error_pages(web: FastAPI, console: Console) -> None:
    """Errors as pages a person can act on: sign-in for an unknown or expired session, else a message."""

    def error_page(
        status: int,
        title: str,
        message: str,
        fixes: Sequence[str] = (),
        identity: ConsoleIdentity | None = None,
        back: str = "",
    ) -> HTMLResponse:
        return console.page(
            "error.html", status, identity=identity, title=title, message=message, fixes=fixes, back=back
        )

    async def unauthorized(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Unauthorized)
        has_cookie = COOKIE in request.cookies
        if request.method == "GET":
            # a page: go to the sign-in page (a 200, so browsers log no failed load), saying why
            query = {"next": request.url.path}
            if isinstance(exc, KeyExpired):
                query["reason"] = "key-expired"
            elif isinstance(exc, SessionExpired):
                query["reason"] = "expired"
            elif has_cookie:
                query["reason"] = "ended"
            return RedirectResponse(url("sign-in", **query), status_code=303)
        # an action: refused right here, nothing done
        response = console.sign_in_page(401, exc.message, error=True)
        if isinstance(exc, SessionExpired | NotSignedIn) and has_cookie:
            response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    async def expected_failure(request: Request, exc: Exception) -> Response:
        problem = describe(exc)
        title = TITLES.get(problem.code, problem.title)
        # a fix the message already says is not said twice
        fixes = [f for f in console_fixes(problem.fixes) if f.rstrip(".") not in problem.detail]
        identity = None
        if problem.code not in TRUST_NOTHING:
            identity = await anyio.to_thread.run_sync(_signed_in, console, request)
        back = _came_from(request) if identity else ""
        return error_page(problem.status, title, problem.detail, fixes, identity, back)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        return error_page(422, "Invalid request", f"The request was not understood: {detail}.")

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_page(
                404, "Page not found", "There is no console page here. Start from the apps list."
            )
        return error_page(exc.status_code, str(exc.detail), str(exc.detail))

    async def disconnected(request: Request, _exc: Exception) -> Response:
        client_gone(request.method, request.url.path)
        return Response(status_code=400)  # nobody reads it

    async def unstorable(_request: Request, _exc: Exception) -> Response:
        return error_page(400, "Value not accepted", UNSTORABLE)

    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected console error", exc_info=exc)
        return error_page(500, "Internal error", "The server failed unexpectedly; the error is in its log.")

    web.add_exception_handler(Unauthorized, unauthorized)
    for failure in EXPECTED_FAILURES:  # Unauthorized above is more specific: Starlette picks it first
        web.add_exception_handler(failure, expected_failure)
    web.add_exception_handler(RequestValidationError, validation_error)
    web.add_exception_handler(StarletteHTTPException, http_error)
    web.add_exception_handler(ClientDisconnect, disconnected)
    web.add_exception_handler(DataError, unstorable)
    web.add_exception_handler(Exception, unexpected)
