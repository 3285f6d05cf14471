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
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import anyio.to_thread
import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from overair.auth.principal import Principal
from overair.auth.sessions import (
    ConsoleIdentity,
    ConsoleSessions,
    KeyExpired,
    NotSignedIn,
    SessionExpired,
)
from overair.auth.throttle import TooManyAttempts
from overair.console import views
from overair.console.fixes import TITLES, console_fixes
from overair.console.metrics import MetricsReader
from overair.console.security import (
    COOKIE,
    COOKIE_PATH,
    check_csrf,
    check_same_origin,
    own_origins,
    safe_next,
)
from overair.errors import Invalid, NotFound, Unauthorized
from overair.inputs import whole_number
from overair.problems import EXPECTED_FAILURES, client_gone, describe
from overair.releases import rules
from overair.releases.domain import ReleaseDomain
from overair.releases.schemas import (
    AppOut,
    Distribution,
    PromoteRequest,
    ReleaseOut,
    ReleasePatch,
)

log = logging.getLogger("overair.console")

HERE = Path(__file__).parent
STATIC = HERE / "static"
CHART_LIBRARY = STATIC / "vendor" / "chart.umd.min.js"
"""Copied from npm by ``make console-assets``; without it pages work and say how to get the charts."""

CHART_HOURS = 48

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

ACTIONS = ("rollout", "mandatory", "disabled", "rollback", "promote")

SIGN_IN_REASONS = {
    "ended": "Your session has ended (you signed out, or the access key was revoked): sign in again.",
    "expired": "Your session expired: sign in again with your access key.",
    "key-expired": "The access key you signed in with has expired: ask an admin for a new key "
    "(overair access-key create) and sign in with it.",
    "signed-out": "You are signed out.",
}
"""Why the sign-in page is shown after a redirect (``?reason=``): fixed texts, never taken from the URL."""


def url(*parts: str, **query: str) -> str:
    """A console URL from path segments (each escaped: app and deployment names may hold spaces)."""
    path = COOKIE_PATH + "/" + "/".join(quote(p, safe="") for p in parts)
    return path + ("?" + urlencode(query) if query else "")


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(url=url, human_size=views.human_size, static=COOKIE_PATH + "/static/")
    env.filters["when"] = lambda d: d.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if d else "—"
    env.filters["percent"] = lambda r: "—" if r is None else f"{r * 100:.1f}%"
    return env


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(COOKIE_PATH + "/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class Console:
    """The console's handlers and what they need."""

    def __init__(
        self,
        releases: ReleaseDomain,
        sessions: ConsoleSessions,
        public_url: str,
        metrics: MetricsReader | None,
    ) -> None:
        self.releases = releases
        self.sessions = sessions
        self.public_url = public_url
        self.metrics = metrics
        self.env = _templates()

    # -- rendering ------------------------------------------------------------------------------------

    def page(
        self,
        template: str,
        status: int = 200,
        identity: ConsoleIdentity | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """Render a page; signed-in pages get the CSRF token for their forms."""
        html = self.env.get_template(template).render(
            identity=identity,
            csrf=identity.csrf_token if identity else "",
            charts_ready=CHART_LIBRARY.exists(),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def sign_in_page(
        self, status: int, message: str = "", error: bool = False, next_url: str = ""
    ) -> HTMLResponse:
        """The sign-in form, with why it is shown."""
        return self.page("sign_in.html", status, message=message, error=error, next_url=safe_next(next_url))

    # -- request checks -------------------------------------------------------------------------------

    def identity(self, request: Request) -> ConsoleIdentity:
        """The signed-in identity of a request (raises :class:`Unauthorized` subclasses), with the
        :class:`Principal` the services are called as."""
        found = self.sessions.resolve(request.cookies.get(COOKIE))
        client = request.client.host if request.client else None
        return found.seen_from(client, request.headers.get("user-agent"))

    async def checked_form(self, request: Request) -> tuple[ConsoleIdentity, FormData]:
        """A POST's identity and form, once the origin, the session and the CSRF token are checked."""
        check_same_origin(request.headers, self._origins(request))
        identity = await anyio.to_thread.run_sync(self.identity, request)
        form = await request.form(max_files=0, max_fields=20)
        token = form.get("csrf_token")
        check_csrf(identity.csrf_token, token if isinstance(token, str) else None)
        return identity, form

    def _origins(self, request: Request) -> set[str]:
        return own_origins(request.url.scheme, request.headers.get("host", ""), self.public_url)

    def secure_cookie(self, request: Request) -> bool:
        """Mark the cookie Secure when the console is served over https."""
        return request.url.scheme == "https" or self.public_url.startswith("https://")


def _identity(request: Request) -> ConsoleIdentity:
    console: Console = request.app.state.console
    return console.identity(request)


Identity = Annotated[ConsoleIdentity, Depends(_identity)]
"""The signed-in identity of a page request (an unknown or expired session answers the sign-in page)."""


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


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
) -> FastAPI:
    """The console as an ASGI app, to be mounted at ``/console``."""
    console = Console(releases, sessions, public_url, metrics)
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.state.console = console
    web.add_middleware(_SecurityHeaders)
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
        check_same_origin(request.headers, console._origins(request))
        form = await request.form(max_files=0, max_fields=5)
        key, next_url = _field(form, "access_key"), _field(form, "next")
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

    # -- pages ----------------------------------------------------------------------------------------

    @web.get("/", response_class=HTMLResponse)
    def apps(identity: Identity) -> Response:
        return console.page("apps.html", identity=identity, apps=releases.apps.list_apps(identity.principal))

    @web.get("/apps/{app}", response_class=HTMLResponse)
    def app_page(app: str, identity: Identity) -> Response:
        who = identity.principal
        found = releases.apps.get_app(who, app)
        histories = {d.name: releases.releases.history(who, found.name, d.name) for d in found.deployments}
        return console.page("app.html", identity=identity, app=found, histories=histories)

    @web.get("/apps/{app}/distribution/confirm", response_class=HTMLResponse)
    def confirm_distribution(app: str, identity: Identity, mode: str = "") -> Response:
        found = releases.apps.get_app(identity.principal, app)
        try:
            wanted = Distribution(mode)
        except ValueError as exc:
            raise Invalid(f"The distribution mode must be hybrid or store-only, not {mode!r}.") from exc
        confirmation = views.confirm_distribution(found.name, wanted)
        return console.page(
            "confirm.html",
            identity=identity,
            confirmation=confirmation,
            action=url("apps", found.name, "distribution"),
            back=url("apps", found.name),
            crumbs=_crumbs(found.name),
        )

    @web.post("/apps/{app}/distribution")
    async def set_distribution(app: str, request: Request) -> Response:
        identity, form = await console.checked_form(request)
        mode = _field(form, "mode")
        try:
            wanted = Distribution(mode)
        except ValueError as exc:
            raise Invalid(f"The distribution mode must be hybrid or store-only, not {mode!r}.") from exc
        await anyio.to_thread.run_sync(releases.apps.set_distribution, identity.principal, app, wanted)
        return RedirectResponse(url("apps", app, done="distribution"), status_code=303)

    @web.get("/apps/{app}/deployments/{deployment}", response_class=HTMLResponse)
    def deployment_page(
        app: str, deployment: str, identity: Identity, done: str = "", label: str = ""
    ) -> Response:
        who = identity.principal
        found = releases.apps.get_app(who, app)
        history = releases.releases.history(who, found.name, deployment)
        name = next((d.name for d in found.deployments if d.name.lower() == deployment.lower()), deployment)
        charts = _charts(console.metrics, found.name, name, history)
        notice = _notice(done, label, history)
        return console.page(
            "deployment.html",
            identity=identity,
            app=found,
            deployment=name,
            history=list(reversed(history)),
            latest=history[-1] if history else None,
            previous=history[-2] if len(history) > 1 else None,
            charts=charts,
            notice=notice,
            signed_only=_signed_only(releases, who, found.name),
            active=console.metrics.active_devices(found.name, name) if console.metrics else None,
            crumbs=_crumbs(found.name, name),
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
        changes = views.compare_manifests(old_manifest, new_manifest)
        rates = _failure_rates(history)
        rate_chart = {
            "x": [r.label for r in (previous, release) if r is not None],
            "series": [
                {
                    "name": "failure rate (%)",
                    "values": [
                        round((rates.get(r.label) or 0.0) * 100, 1)
                        for r in (previous, release)
                        if r is not None
                    ],
                }
            ],
        }
        return console.page(
            "release.html",
            identity=identity,
            app=found,
            deployment=release.deployment,
            release=release,
            previous=previous,
            latest=history[-1],
            changes=changes,
            file_count=sum(1 for e in new_manifest if not e.is_directory),
            diffs=releases.releases.diffs(who, found.name, release.deployment, release.label),
            signature=views.signature_status(release),
            rates=rates,
            last_failure=(
                console.metrics.last_failures(found.name, release.deployment).get(release.label)
                if console.metrics
                else None
            ),
            charts={"rate": rate_chart} if any(rates.get(r.label) is not None for r in history) else {},
            others=[d.name for d in found.deployments if d.name != release.deployment],
            signed_only=_signed_only(releases, who, found.name),
            notice=_notice(done, release.label, history),
            crumbs=_crumbs(found.name, release.deployment, release.label),
        )

    @web.get(
        "/apps/{app}/deployments/{deployment}/releases/{label}/confirm/{action}",
        response_class=HTMLResponse,
    )
    def confirm_action(
        app: str, deployment: str, label: str, action: str, request: Request, identity: Identity
    ) -> Response:
        who = identity.principal
        found = releases.apps.get_app(who, app)
        history = releases.releases.history(who, found.name, deployment)
        release = _release_in(history, label, deployment)
        query = request.query_params
        confirmation = _confirmation(releases, who, found, release, history, action, dict(query))
        base = url("apps", found.name, "deployments", release.deployment, "releases", release.label)
        return console.page(
            "confirm.html",
            identity=identity,
            confirmation=confirmation,
            action=f"{base}/{action}",
            back=base,
            crumbs=_crumbs(found.name, release.deployment, release.label),
        )

    @web.post("/apps/{app}/deployments/{deployment}/releases/{label}/{action}")
    async def act(app: str, deployment: str, label: str, action: str, request: Request) -> Response:
        identity, form = await console.checked_form(request)
        if action not in ACTIONS:
            raise NotFound(f"There is no action {action!r}; the actions are {', '.join(ACTIONS)}.")
        actor = identity.principal
        if action == "rollout":
            patch = ReleasePatch(label=label, rollout=_percentage(_field(form, "rollout")))
        elif action == "mandatory":
            patch = ReleasePatch(label=label, mandatory=_bool(_field(form, "mandatory"), "mandatory"))
        elif action == "disabled":
            patch = ReleasePatch(label=label, disabled=_bool(_field(form, "disabled"), "disabled"))
        elif action == "rollback":
            done = await anyio.to_thread.run_sync(releases.releases.rollback, actor, app, deployment, label)
            target = url("apps", app, "deployments", done.deployment, done="rollback", label=done.label)
            return RedirectResponse(target, status_code=303)
        else:
            request_body = PromoteRequest(
                source=deployment, destination=_field(form, "destination"), label=label
            )
            done = await anyio.to_thread.run_sync(releases.releases.promote, actor, app, request_body)
            target = url("apps", app, "deployments", done.deployment, done="promote", label=done.label)
            return RedirectResponse(target, status_code=303)
        changed = await anyio.to_thread.run_sync(releases.releases.patch, actor, app, deployment, patch)
        target = url("apps", app, "deployments", changed.deployment, "releases", changed.label, done=action)
        return RedirectResponse(target, status_code=303)

    return web


def _signed_only(releases: ReleaseDomain, who: Principal, app: str) -> bool:
    """The app accepts signed releases only: rollback and promote need the publisher's offline key,
    which never reaches the server, so the console points to the CLI for them."""
    return any(k.retired_at is None for k in releases.signing_keys.list_signing_keys(who, app))


def _crumbs(app: str, deployment: str | None = None, label: str | None = None) -> list[tuple[str, str]]:
    crumbs = [("Apps", url()), (app, url("apps", app))]
    if deployment:
        crumbs.append((deployment, url("apps", app, "deployments", deployment)))
    if deployment and label:
        crumbs.append((label, url("apps", app, "deployments", deployment, "releases", label)))
    return crumbs


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
        return f"Rolled back: {release.label} now serves the content of {release.origin_label}."
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


def _failure_rates(history: list[ReleaseOut]) -> dict[str, float | None]:
    # the release counters are the ones the metrics store's rates are computed from, so one rule on them
    # shows the same rate as the API and /metrics, with or without the store
    return {r.label: views.failure_rate(r) for r in history}


def _charts(
    metrics: MetricsReader | None, app: str, deployment: str, history: list[ReleaseOut]
) -> dict[str, Any]:
    charts: dict[str, Any] = {"totals": views.totals_chart(history)}
    if metrics is not None:
        end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(hours=CHART_HOURS - 1)
        points = metrics.series(app, deployment, hours=CHART_HOURS, now=end)
        charts.update(views.hourly_charts(points, start, end))
    return charts


def _install_error_pages(web: FastAPI, console: Console) -> None:
    """Errors as pages a person can act on: sign-in for an unknown or expired session, else a message."""

    def error_page(status: int, title: str, message: str, fixes: Sequence[str] = ()) -> HTMLResponse:
        return console.page("error.html", status, title=title, message=message, fixes=fixes)

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

    async def expected_failure(_request: Request, exc: Exception) -> Response:
        problem = describe(exc)
        title = TITLES.get(problem.code, problem.title)
        return error_page(problem.status, title, problem.detail, console_fixes(problem.fixes))

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

    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected console error", exc_info=exc)
        return error_page(500, "Internal error", "The server failed unexpectedly; the error is in its log.")

    web.add_exception_handler(Unauthorized, unauthorized)
    for failure in EXPECTED_FAILURES:  # Unauthorized above is more specific: Starlette picks it first
        web.add_exception_handler(failure, expected_failure)
    web.add_exception_handler(RequestValidationError, validation_error)
    web.add_exception_handler(StarletteHTTPException, http_error)
    web.add_exception_handler(ClientDisconnect, disconnected)
    web.add_exception_handler(Exception, unexpected)
