"""What every console route needs: the :class:`Console` (services, sessions, templates), URLs, the signed-in
identity of a request, and a POST's checked form.

The routes themselves are in :mod:`overair.console.web` (pages and release actions) and
:mod:`overair.console.manage` (apps, deployments, access keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import anyio.to_thread
import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from overair.audit.service import AuditService
from overair.auth.principal import SYSTEM, Action, Principal
from overair.auth.service import AccessKeyService
from overair.auth.sessions import ConsoleIdentity, ConsoleSessions
from overair.console import views
from overair.console.metrics import MetricsReader
from overair.console.security import (
    COOKIE,
    COOKIE_PATH,
    check_csrf,
    check_same_origin,
    own_origins,
    safe_next,
)
from overair.releases.domain import ReleaseDomain
from overair.webhooks import Webhooks

HERE = Path(__file__).parent
STATIC = HERE / "static"
CHART_LIBRARY = STATIC / "vendor" / "chart.umd.min.js"
"""Copied from npm by ``make console-assets``; without it pages work and say how to get the charts."""

MAX_FIELDS = 20
"""The most fields a console form may send."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def url(*parts: str, **query: str) -> str:
    """A console URL from path segments (each escaped: app and deployment names may hold spaces)."""
    path = COOKIE_PATH + "/" + "/".join(quote(p, safe="") for p in parts)
    return path + ("?" + urlencode(query) if query else "")


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(url=url, human_size=views.human_size, static=COOKIE_PATH + "/static/")
    env.filters["when"] = _when
    env.filters["percent"] = views.percent
    return env


def _may(principal: Principal) -> Callable[..., bool]:
    """``may('publish', app, deployment)`` for templates: whether the signed-in key may do an action, so
    that a page offers only what its reader may do (the services still refuse the rest if forced)."""

    def may(action: str, app: str | None = None, deployment: str | None = None) -> bool:
        return principal.may(Action(action), app=app, deployment=deployment)

    return may


class SecurityHeaders(BaseHTTPMiddleware):
    """The console's response headers: a strict CSP, no framing, no caching of pages."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(COOKIE_PATH + "/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class Console:
    """The console's services, sessions and templates, shared by its routes."""

    def __init__(
        self,
        releases: ReleaseDomain,
        sessions: ConsoleSessions,
        public_url: str,
        metrics: MetricsReader | None,
        access_keys: AccessKeyService | None,
        audit: AuditService | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.releases = releases
        self.audit = audit
        self.webhooks = webhooks
        self.sessions = sessions
        self.public_url = public_url
        self.metrics = metrics
        self.access_keys = access_keys
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
            manage_keys=self.access_keys is not None,
            show_audit=self.audit is not None,
            may=_may(identity.principal if identity else SYSTEM),
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
        check_same_origin(request.headers, self.origins(request))
        identity = await anyio.to_thread.run_sync(self.identity, request)
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        token = form.get("csrf_token")
        check_csrf(identity.csrf_token, token if isinstance(token, str) else None)
        return identity, form

    def origins(self, request: Request) -> set[str]:
        """The origins a form of this console may come from."""
        return own_origins(request.url.scheme, request.headers.get("host", ""), self.public_url)

    def secure_cookie(self, request: Request) -> bool:
        """Mark the cookie Secure when the console is served over https."""
        return request.url.scheme == "https" or self.public_url.startswith("https://")


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _identity(request: Request) -> ConsoleIdentity:
    return _console(request).identity(request)


ConsoleApp = Annotated[Console, Depends(_console)]
"""The console of a request."""

Identity = Annotated[ConsoleIdentity, Depends(_identity)]
"""The signed-in identity of a page request (an unknown or expired session answers the sign-in page)."""


def field(form: FormData, name: str) -> str:
    """A text field of a form ("" when it is missing or is a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def crumbs(app: str, deployment: str | None = None, label: str | None = None) -> list[tuple[str, str]]:
    """The breadcrumb trail of an app's, a deployment's or a release's page."""
    trail = [("Apps", url()), (app, url("apps", app))]
    if deployment:
        trail.append((deployment, url("apps", app, "deployments", deployment)))
    if deployment and label:
        trail.append((label, url("apps", app, "deployments", deployment, "releases", label)))
    return trail
