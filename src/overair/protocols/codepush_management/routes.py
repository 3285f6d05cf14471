"""The two dialects' route tables over the same :class:`Handlers`, and the ASGI app that picks the dialect.

* **standalone**: what ``microsoft/code-push-server`` and the ``code-push`` management SDK up to 2.x speak:
  ``Authorization: Bearer KEY``, ``/authenticated``, ``/account``, ``/accessKeys``, ``/sessions``,
  ``/apps/<app>/deployments/<deployment>/{release,history,metrics,promote,rollback}``.
* **App Center**: what ``code-push-cli`` 3.0.0 speaks through its ``code-push`` 4.0.2 SDK when given a server
  URL: ``x-api-token: KEY``, ``/user``, ``/api_tokens``, ``/apps/<owner>/<app>/…``, uploads in two steps
  (``…/uploads``, then the chunked upload protocol under ``/upload/``), organisations under ``/orgs``. A
  request with ``x-api-token`` and no ``Authorization`` header is App Center's. ``<owner>`` is checked
  against the app's real owner (:meth:`Handlers.owned`) before any handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, Router

from overair.auth.accounts import AccountService
from overair.auth.service import AccessKeyService
from overair.db import Clock, utcnow
from overair.errors import DATABASE_DOWN, DatabaseDown, note_outage
from overair.metrics.service import MetricsService
from overair.problems import UNSTORABLE, client_gone
from overair.protocols.asgi import Receive, Scope, Send, base_url, header, send_bytes
from overair.protocols.codepush_management.calls import Call
from overair.protocols.codepush_management.encoders import AppCenterEncoder, Encoder, StandaloneEncoder
from overair.protocols.codepush_management.errors import Refused
from overair.protocols.codepush_management.handlers import Handlers
from overair.protocols.codepush_management.uploads import UploadEndpoints, Uploads
from overair.protocols.downloads import Downloads, download_url
from overair.releases.domain import ReleaseDomain
from overair.releases.read_model import DeploymentReads
from overair.storage import StorageUnavailable

log = logging.getLogger("overair")

ROOTS = frozenset(
    {"authenticated", "account", "accessKeys", "sessions", "apps", "user", "api_tokens", "upload", "orgs"}
)

Handler = Callable[[Call], Awaitable[Response]]
Table = list[tuple[str, str, Handler]]
"""(methods, path, handler) rows."""


def handles(path: str) -> bool:
    """True for the paths of the CodePush management API (both dialects)."""
    return path[1:].split("/", 1)[0] in ROOTS


def standalone_table(h: Handlers) -> Table:
    """code-push-server's management routes (``routes/management.ts``)."""
    app = "/apps/{app}"
    dep = app + "/deployments/{deployment}"
    return [
        ("GET", "/authenticated", h.authenticated),
        ("GET", "/account", h.account),
        ("GET", "/accessKeys", h.list_keys),
        ("POST", "/accessKeys", h.add_key),
        ("GET", "/accessKeys/{key}", h.get_key),
        ("PATCH", "/accessKeys/{key}", h.patch_key),
        ("DELETE", "/accessKeys/{key}", h.remove_key),
        ("DELETE", "/sessions/{machine}", h.remove_sessions),
        ("GET", "/apps", h.list_apps),
        ("POST", "/apps", h.add_app),
        ("GET", app, h.get_app),
        ("PATCH", app, h.rename_app),
        ("DELETE", app, h.remove_app),
        ("POST", app + "/transfer/{email}", h.transfer),
        ("GET", app + "/collaborators", h.collaborators),
        ("POST", app + "/collaborators/{email}", h.add_collaborator),
        ("DELETE", app + "/collaborators/{email}", h.remove_collaborator),
        ("GET", app + "/deployments", h.list_deployments),
        ("POST", app + "/deployments", h.add_deployment),
        ("GET", dep, h.get_deployment),
        ("PATCH", dep, h.rename_deployment),
        ("DELETE", dep, h.remove_deployment),
        ("POST", dep + "/release", h.release),
        ("PATCH", dep + "/release", h.patch_release),
        ("GET", dep + "/history", h.history),
        ("DELETE", dep + "/history", h.clear_history),
        ("GET", dep + "/metrics", h.metrics),
        ("POST", dep + "/promote/{destination}", h.promote),
        ("POST", dep + "/rollback", h.rollback),
        ("POST", dep + "/rollback/{label}", h.rollback),
    ]


def appcenter_table(h: Handlers) -> Table:
    """App Center's routes as the ``code-push`` 4.0.2 SDK calls them."""
    app = "/apps/{owner}/{app}"
    dep = app + "/deployments/{deployment}"
    return [
        ("GET", "/user", h.account),
        ("GET", "/api_tokens", h.list_keys),
        ("POST", "/api_tokens", h.add_key),
        ("DELETE", "/api_tokens/{key}", h.remove_key),
        ("GET", "/apps", h.list_apps),
        ("POST", "/apps", h.add_app),
        ("GET", "/orgs", h.organisations),
        ("GET", "/orgs/{org}", h.organisation),
        ("GET", "/orgs/{org}/apps", h.organisation_apps),
        ("POST", "/orgs/{org}/apps", h.add_app),
        ("GET", app, h.get_app),
        ("PATCH", app, h.rename_app),
        ("DELETE", app, h.remove_app),
        ("GET", app + "/users", h.collaborators),
        ("POST", app + "/invitations", h.add_collaborator),
        ("DELETE", app + "/invitations/{email}", h.remove_collaborator),
        ("POST", app + "/transfer/{org}", h.transfer),
        ("GET", app + "/deployments", h.list_deployments),
        ("POST", app + "/deployments", h.add_deployment),
        ("GET", dep, h.get_deployment),
        ("PATCH", dep, h.rename_deployment),
        ("DELETE", dep, h.remove_deployment),
        ("GET", dep + "/releases", h.history),
        ("POST", dep + "/releases", h.release_upload),
        ("DELETE", dep + "/releases", h.clear_history),
        ("PATCH", dep + "/releases/{label}", h.patch_release),
        ("POST", dep + "/uploads", h.start_upload),
        ("POST", dep + "/promote_release/{destination}", h.promote),
        ("POST", dep + "/rollback_release", h.rollback),
        ("GET", dep + "/metrics", h.metrics),
    ]


def router(table: Table, handlers: Handlers, encoder: Encoder, public_url: str) -> Router:
    """A table's routes, each authenticated and answering errors in ``encoder``'s dialect."""

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            try:
                caller = await handlers.caller(encoder.token(request.headers), request)
                call = Call(request, caller, encoder, public_url or base_url(request.scope))
                if "owner" in call.params:
                    await handlers.owned(call)
                return await handler(call)
            except ValidationError as exc:  # a value the reference accepts but overair's schema does not
                refusal = Refused(400, f"Invalid value: {exc.errors()[0]['msg']}")
            except Refused as refused:
                refusal = refused
            except DataError:  # a NUL character or an out-of-range number the database cannot take
                refusal = Refused(400, UNSTORABLE)
            except DATABASE_DOWN as exc:
                note_outage(exc)
                refusal = Refused(503, DatabaseDown().message)
            except StorageUnavailable as exc:
                note_outage(exc, "object store")
                refusal = Refused(503, f"The object store is unavailable; try again later. {exc.message}")
            return encoder.refusal(refusal)

        return answer

    routes = [Route(path, endpoint(h), methods=methods.split()) for methods, path, h in table]
    return Router(routes, redirect_slashes=False)


class CodePushManagement:
    """The ASGI app behind :data:`ROOTS`: the standalone and App Center dialects, and chunked uploads."""

    def __init__(
        self,
        releases: ReleaseDomain,
        keys: AccessKeyService,
        public_url: str,
        max_upload_bytes: int,
        sessions: sessionmaker[Session],
        metrics: MetricsService | None = None,
        scratch: Path | None = None,
        downloads: Downloads | None = None,
        clock: Clock = utcnow,
    ) -> None:
        uploads = Uploads(sessions, max_upload_bytes, scratch, clock)
        links = downloads.download_url if downloads is not None else download_url
        reads = DeploymentReads(releases, metrics)
        accounts = AccountService(sessions, keys)
        handlers = Handlers(releases, keys, accounts, reads, uploads, max_upload_bytes, scratch)
        self.standalone = router(standalone_table(handlers), handlers, StandaloneEncoder(links), public_url)
        self.appcenter = router(appcenter_table(handlers), handlers, AppCenterEncoder(links), public_url)
        self.upload_router = Router(UploadEndpoints(uploads, public_url).routes(), redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):  # express routes ignore one trailing slash; the SDKs send it
            scope = {**scope, "path": path[:-1]}
        if scope["path"].startswith("/upload/"):
            router = self.upload_router
        elif header(scope, b"x-api-token") is not None and header(scope, b"authorization") is None:
            router = self.appcenter
        else:
            router = self.standalone
        try:
            await router(scope, receive, send)
        except ClientDisconnect:
            client_gone(scope["method"], path)
        except Exception:
            log.exception("CodePush management request failed: %s %s", scope["method"], path)
            await send_bytes(send, 500, b"Internal Server Error", [(b"content-type", b"text/plain")])
