"""What every management operation stands on: :class:`Call` (one request) and :class:`Operations` (the
services, and running them in a worker thread with the reference's error answers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from overair.auth.accounts import AccountService
from overair.auth.principal import Principal, Surface
from overair.auth.service import AccessKeyService
from overair.auth.throttle import TooManyAttempts
from overair.errors import OverairError, Unauthorized
from overair.packages import InvalidBundle
from overair.protocols.codepush_management.encoders import Encoder, Person
from overair.protocols.codepush_management.errors import UNAUTHORIZED, Refused, translate
from overair.protocols.codepush_management.uploads import Uploads
from overair.protocols.codepush_management.validation import body_object, is_key
from overair.releases.domain import ReleaseDomain
from overair.releases.read_model import DeploymentReads
from overair.releases.schemas import AppOut, CollaboratorOut

T = TypeVar("T")


class Call:
    """One authenticated request as a handler sees it: who, in which dialect, with which parameters."""

    def __init__(self, request: Request, caller: Principal, encoder: Encoder, base: str) -> None:
        self.request = request
        self.caller = caller
        self.encoder = encoder
        self.base = base
        """Base URL of download links."""
        self.me = Person(caller.account or caller.name)
        """The acting account by name (:meth:`Operations.me` reads its e-mail too)."""

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    async def json(self) -> dict[str, Any]:
        """The JSON object in the body (``{}`` for no body, or a JSON value that is not an object)."""
        return body_object(await self.request.body())

    def answer(self, body: Any, status: int = 200, location: str | None = None) -> Response:
        """A JSON answer; ``location``: where the created object is, in the dialects that say so."""
        headers = self.encoder.location(location) if location is not None else None
        return JSONResponse(body, status_code=status, headers=headers)


class Operations:
    """The services the operations call, and what they share."""

    def __init__(
        self,
        releases: ReleaseDomain,
        keys: AccessKeyService,
        accounts: AccountService,
        reads: DeploymentReads,
        uploads: Uploads,
        max_upload_bytes: int,
        scratch: Path | None = None,
    ) -> None:
        self.releases = releases
        self.keys = keys
        self.accounts = accounts
        self.reads = reads
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes
        self.scratch = scratch

    # -- plumbing -------------------------------------------------------------------------------------

    async def run(self, operation: str, ctx: Mapping[str, Any], fn: Callable[..., T], *args: Any) -> T:
        """Run a service call in a worker thread; translate its domain errors (:func:`translate`)."""

        def run() -> T:
            try:
                return fn(*args)
            except (OverairError, InvalidBundle) as exc:
                raise translate(operation, exc, ctx) from exc

        return await anyio.to_thread.run_sync(run)

    async def caller(self, token: str, request: Request) -> Principal:
        """The :class:`Principal` acting with the key, or a 401 refusal (429 after too many wrong keys)."""
        client = request.client.host if request.client else None
        if not is_key(token):
            raise Refused(401, UNAUTHORIZED)
        agent = request.headers.get("user-agent")
        try:
            return await anyio.to_thread.run_sync(
                self.keys.authenticate, token, Surface.CODEPUSH, client, agent
            )
        except Unauthorized as exc:
            raise Refused(401, UNAUTHORIZED) from exc
        except TooManyAttempts as exc:
            raise Refused(429, exc.message) from exc

    async def _on_app(self, call: Call, operation: str, fn: Callable[[Principal, str], T]) -> T:
        """``fn(caller, app)`` for the app in the path."""
        name = call.params["app"]
        return await self.run(operation, {"app": name}, fn, call.caller, name)

    async def _on_deployment(self, call: Call, operation: str, fn: Callable[[Principal, str, str], T]) -> T:
        """``fn(caller, app, deployment)`` for the deployment in the path."""
        app, deployment = call.params["app"], call.params["deployment"]
        return await self.run(operation, call.params, fn, call.caller, app, deployment)

    async def me(self, call: Call) -> Person:
        """The acting account with its e-mail."""
        account = await self.run("account", {}, self.accounts.me, call.caller)
        return Person(account.name, account.email) if account is not None else call.me

    async def owned(self, call: Call) -> None:
        """Refuse an App Center path whose ``<owner>`` is not the app's owner (an app nobody owns: the
        caller's account), as App Center answered an app under another owner: not found."""
        owner, name = call.params["owner"], call.params["app"]
        app = await self.run("app.get", {"app": name}, self.releases.apps.get_app, call.caller, name)
        real = app.owner or call.me.name
        if owner != real:
            raise Refused(
                404, f'App "{owner}/{name}" does not exist: {name} belongs to {real}, as "{real}/{name}".'
            )

    async def _team(self, call: Call, app: str) -> list[CollaboratorOut]:
        """The app's collaborators."""
        return await self.run("app.get", {"app": app}, self.releases.team.collaborators, call.caller, app)

    async def _team_shown(self, call: Call, app: str) -> list[CollaboratorOut]:
        """The app's collaborators if the dialect shows them in app objects, else none."""
        return await self._team(call, app) if call.encoder.needs_teams else []

    async def _apps(self, call: Call, apps: list[AppOut]) -> Response:
        teams = {a.name: await self._team_shown(call, a.name) for a in apps}
        return call.answer(call.encoder.apps(apps, await self.me(call), teams))

    async def _app(
        self,
        call: Call,
        app: AppOut,
        team: list[CollaboratorOut],
        status: int = 200,
        location: str | None = None,
    ) -> Response:
        return call.answer(call.encoder.app(app, await self.me(call), team), status, location)
