"""The composition root: ``create_app(settings)`` builds every part and wires them together.

Nothing else in overair constructs engines, stores or services; tests build their own app with their own
settings. Device routes (``/v1/…`` and the CodePush acquisition paths) are raw ASGI, dispatched by one
route table (:mod:`overair.protocols.routing`) and never passed through FastAPI; everything else is the
FastAPI management app with its OpenAPI schema at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from overair import __version__
from overair.audit import api as audit_api
from overair.audit.log import AuditLog
from overair.audit.service import PRUNE_EVERY as PRUNE_AUDIT_EVERY
from overair.audit.service import AuditService
from overair.auth import api as auth_api
from overair.auth.accounts import AccountService
from overair.auth.service import AccessKeyService
from overair.auth.sessions import ConsoleSessions
from overair.config import Settings
from overair.console import create_console
from overair.db import Clock, make_engine, make_sessionmaker, migrated, precise_now
from overair.health import readiness
from overair.hosts import HostPolicy
from overair.jobs import JobQueue, Worker
from overair.jobs import api as jobs_api
from overair.jobs.worker import period_key
from overair.maintenance import describe_sweep, sweep_abandoned_uploads, sweep_leftovers
from overair.metrics import api as metrics_api
from overair.metrics.prometheus import make_registry
from overair.metrics.scrape import scrape_access
from overair.metrics.service import PRUNE_EVERY, MetricsService, RetentionPolicy
from overair.packages import Limits, signing
from overair.problems import EXPECTED_FAILURES, UNSTORABLE, client_gone, describe, document_problems
from overair.protocols.asgi import Receive, Scope, Send, header, send_bytes
from overair.protocols.codepush import CodePushProtocol
from overair.protocols.codepush_management import CodePushManagement
from overair.protocols.codepush_management import handles as codepush_management_handles
from overair.protocols.downloads import Downloads
from overair.protocols.expo import ExpoProtocol, StoredPatches
from overair.protocols.facts import RecordedFacts
from overair.protocols.native import AnswerSigner, NativeProtocol
from overair.protocols.routing import DeviceRouter
from overair.releases import api as releases_api
from overair.releases.devices import DeviceCache
from overair.releases.domain import ReleaseDomain
from overair.releases.launch_patches import LaunchPatches
from overair.serverkey import check_server_key, load_server_key
from overair.webhooks import Webhooks
from overair.webhooks import api as webhooks_api
from overair.webhooks.events import release_published, tell_rollout

log = logging.getLogger("overair")

PROBLEM = "application/problem+json"
PRUNE_METRICS = "metrics.prune"
PRUNE_AUDIT = "audit.prune"
EVALUATE_ROLLOUTS = "rollouts.evaluate"
EVALUATE_ROLLOUTS_EVERY = dt.timedelta(minutes=5)
"""Guarded rollouts are evaluated this often, and after the reports of each minute (``REPORTS_SETTLE``)."""
REPORTS_SETTLE = dt.timedelta(minutes=1)
PROBES = frozenset({"/healthz", "/readyz"})
"""Liveness and readiness (:mod:`overair.health`): open, and never waiting for anything else."""
READINESS_SECONDS = 5.0
"""A dependency that has not answered the readiness probe in this time is reported as not ready."""


def _problem(status: int, title: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":  # FastAPI's location is a character offset
            reason = error.get("ctx", {}).get("error", "malformed")
            return f"The request body is not valid JSON: {reason} (at character {error['loc'][-1]})."
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(location) or "request body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def unreadable_body(cause: BaseException | None) -> str | None:
    """What is wrong with a JSON body FastAPI could not parse (it answers them all "There was an error
    parsing the body"), or None when ``cause`` is not a parsing failure it knows (malformed JSON is a
    RequestValidationError, answered as a 422)."""
    if isinstance(cause, RecursionError):
        reason = "it is nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        reason = "it is not UTF-8 text"
    elif isinstance(cause, ValueError) and "digits" in str(cause):  # int() past 4,300 digits
        reason = "a number has too many digits"
    else:
        return None
    return f"The request body is not valid JSON: {reason}."


def _install_error_table(api: FastAPI) -> None:
    """The one table that turns domain errors into HTTP answers."""

    async def expected_failure(_request: Request, exc: Exception) -> JSONResponse:
        problem = describe(exc)
        return JSONResponse(
            problem.to_json(), status_code=problem.status, media_type=PROBLEM, headers=problem.headers
        )

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _problem(422, "Invalid request", _validation_detail(exc))

    async def disconnected(request: Request, _exc: Exception) -> Response:
        client_gone(request.method, request.url.path)
        return Response(status_code=400)  # nobody reads it

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, ClientDisconnect):  # FastAPI wraps what reading a JSON body raised
            return await disconnected(request, exc.__cause__)
        detail = unreadable_body(exc.__cause__) if exc.status_code == 400 else None
        if detail is not None:
            return _problem(400, "Invalid request", detail)
        detail = str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = "No such API route; see /api/v1/docs for the routes."
        if exc.status_code == 405:
            # each method of a path is its own route: Allow lists them all, not only the first one found
            documented = api.openapi()["paths"]
            allowed = sorted(
                {
                    method.upper()
                    for template, operations in documented.items()
                    if compile_path(template)[0].match(request.url.path)
                    for method in operations
                }
                or set(headers.get("Allow", "GET").replace(" ", "").split(","))
            )
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
        return _problem(
            exc.status_code, "Method not allowed" if exc.status_code == 405 else detail, detail, headers
        )

    async def unstorable(_request: Request, _exc: Exception) -> JSONResponse:
        return _problem(400, "Bad Request", UNSTORABLE)

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _problem(500, "Internal error", "The server failed unexpectedly; the error is in its log.")

    for failure in EXPECTED_FAILURES:
        api.add_exception_handler(failure, expected_failure)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(ClientDisconnect, disconnected)
    api.add_exception_handler(DataError, unstorable)
    api.add_exception_handler(Exception, unexpected)


class ServerKeyOut(BaseModel):
    """The server's online public key (signs update-check answers; not a publisher key)."""

    public_key: str
    key_id: str


@dataclass(eq=False)
class OverairApp:
    """The ASGI app: device routes first (raw ASGI), the management app for the rest."""

    management: FastAPI
    devices: DeviceRouter
    state: Any
    codepush_management: CodePushManagement | None = None
    hosts: HostPolicy = field(default_factory=lambda: HostPolicy.build(""))
    metrics: MetricsService | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = header(scope, b"host")
            if not self.hosts.allows(host):
                await _misdirected(send, host or "", self.hosts)
                return
            if await self.devices.dispatch(scope, receive, send):
                return
            if self.metrics is not None and self.metrics.pending_reports and scope["path"] not in PROBES:
                # what a person or script reads next includes every report this process accepted
                with contextlib.suppress(Exception):  # the database is down: the request says so itself
                    await anyio.to_thread.run_sync(self.metrics.flush)
            if self.codepush_management is not None and codepush_management_handles(scope["path"]):
                await self.codepush_management(scope, receive, send)
                return
        await self.management(scope, receive, send)


async def _misdirected(send: Send, host: str, hosts: HostPolicy) -> None:
    """421 for a request naming a host this server does not answer for (see :mod:`overair.hosts`)."""
    shown = host[:100].encode("ascii", "backslashreplace").decode()
    detail = (
        f"This server does not answer for the host {shown!r}; it answers for {', '.join(hosts.names())}. "
        "If devices or people reach it by that name, set OVERAIR_PUBLIC_URL to that URL (or add the name "
        "to OVERAIR_ALLOWED_HOSTS) and restart the server."
    )
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Misdirected Request",
            "status": 421,
            "detail": detail,
            "code": "unknown-host",
        }
    ).encode()
    await send_bytes(send, 421, body, [(b"content-type", PROBLEM.encode())])


async def _within(deadline: float, close: Callable[[], object], what: str) -> None:
    """Run ``close`` on a thread until ``deadline`` (monotonic); past it, log and go on (the process exits
    and granian kills what is left)."""
    with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as waited:
        await anyio.to_thread.run_sync(close, abandon_on_cancel=True)
    if waited.cancelled_caught:
        log.warning("shutdown: %s did not stop in time and is abandoned", what)


def _evaluate_soon(jobs: Worker, clock: Clock) -> None:
    """The reports just written may move a guarded rollout: queue its evaluation, off the report path and
    never failing the flush that wrote them. Every flush of one minute (on any host) asks for the same
    job, which runs once the minute is over, so it sees all of that minute's reports."""
    now = clock()
    minute = period_key(now, REPORTS_SETTLE)
    due = dt.datetime.fromisoformat(minute) + REPORTS_SETTLE - now
    try:
        jobs.queue.enqueue(EVALUATE_ROLLOUTS, f"reports {minute}", delay=due)
    except Exception:  # the periodic evaluation comes anyway
        log.warning("could not queue the evaluation of guarded rollouts", exc_info=True)


def create_app(settings: Settings | None = None, *, clock: Clock = precise_now) -> OverairApp:
    """Build the server for ``settings`` (defaults: SQLite and a blob folder in ``./.overair``).

    ``clock`` is where key and session expiry read the time (tests pass one they can move).
    """
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url())
    sessions = make_sessionmaker(engine)
    server_key = load_server_key(settings)
    with migrated(engine):  # the deployment's one key: recorded by the first host, checked by the others
        check_server_key(sessions, server_key)
    blobs = settings.blob_store()
    # every worker sweeps what a killed process left (overair serve did so already, before the workers)
    swept = sweep_leftovers(settings.resolved_temp_dir(), blobs, settings.temp_max_age_minutes * 60)
    if swept:
        log.warning(describe_sweep(swept))
    if abandoned := sweep_abandoned_uploads(sessions, clock()):
        log.warning(abandoned)
    limits = Limits(max_entries=settings.max_bundle_entries, max_total_size=settings.max_bundle_bytes)
    jobs = Worker(JobQueue(sessions, clock), clock)  # background work every host shares (overair.jobs)
    audit = AuditLog(clock)  # every service records its changes here, in the change's transaction
    releases = ReleaseDomain.open(
        sessions,
        blobs,
        limits,
        delta_min_saving=settings.delta_min_saving,
        scratch=settings.resolved_temp_dir(),
        jobs=jobs,
        audit=audit,
        clock=clock,
    )
    webhooks = Webhooks(sessions, jobs, clock, timeout=settings.webhook_timeout_seconds)
    launch_patches = LaunchPatches(sessions, blobs, jobs)  # Expo launch-asset bsdiff patches (issue 18)
    releases.releases.on_published(launch_patches.on_published)
    releases.releases.on_published(
        lambda session, app, release: webhooks.emit(
            app, "release.published", release_published(release), session=session
        )
    )
    releases.rollouts.on_event(lambda session, event: tell_rollout(webhooks, session, event))
    access_keys = AccessKeyService(sessions, clock, audit=audit)
    console_sessions = ConsoleSessions(
        sessions, access_keys, dt.timedelta(minutes=settings.console_session_minutes), clock
    )
    cache = DeviceCache(releases.snapshots, settings.cache_recheck_seconds)
    metrics = MetricsService(
        sessions,
        policy=RetentionPolicy(
            retention_days=settings.metrics_retention_days, active_days=settings.metrics_active_days
        ),
        clock=clock,
        audit=audit,
        after_flush=lambda: _evaluate_soon(jobs, clock),
    )
    jobs.every(PRUNE_METRICS, PRUNE_EVERY, lambda _payload: metrics.prune())
    audit_log = AuditService(sessions, settings.audit_retention_days, clock)
    jobs.every(PRUNE_AUDIT, PRUNE_AUDIT_EVERY, lambda _payload: audit_log.prune())
    jobs.every(
        EVALUATE_ROLLOUTS,
        EVALUATE_ROLLOUTS_EVERY,
        lambda _payload: releases.rollouts.evaluate(metrics.health),
    )
    signer = AnswerSigner(server_key, settings.answer_ttl_seconds)
    downloads = Downloads(
        blobs,
        settings.public_url,
        cdn_url=settings.download_url,
        presign_seconds=settings.s3_presign_seconds if settings.s3_presign else 0,
        clock=clock,
    )
    native = NativeProtocol(cache, metrics, downloads, signer, releases.downloads.request_delta)
    active = dt.timedelta(days=settings.metrics_active_days)
    # what a device runs, learnt from its checks, is told again well before it could count as silent
    remember_running = min(dt.timedelta(days=1), active / 2) if active else dt.timedelta(days=1)
    codepush = CodePushProtocol(cache, metrics, downloads, RecordedFacts(clock, remember_running))
    expo = ExpoProtocol(
        cache,
        metrics,
        downloads,
        releases.snapshots,
        StoredPatches(launch_patches),
        clock,
        remember_running,
    )
    devices = DeviceRouter([native.routes(), codepush.routes(), expo.routes()])
    codepush_management = CodePushManagement(
        releases,
        access_keys,
        settings.public_url,
        settings.max_upload_bytes,
        sessions,
        metrics=metrics,
        scratch=settings.resolved_temp_dir(),
        downloads=downloads,
        clock=clock,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        # On SIGTERM granian stops accepting and drains requests, then this runs; it must fit in
        # OVERAIR_SHUTDOWN_SECONDS with the drain (a worker still busy then is killed): reports first.
        budget = settings.shutdown_seconds
        deadline = time.monotonic() + budget
        await anyio.to_thread.run_sync(metrics.close, budget / 2, abandon_on_cancel=True)
        # the job in hand is finished or given back to the queue (another host runs it) before the deadline
        left = max(0.0, deadline - time.monotonic())
        await _within(deadline, functools.partial(jobs.stop, left * 0.8), "the background job in hand")
        engine.dispose()

    management = FastAPI(
        lifespan=lifespan,
        title="overair",
        version=__version__,
        description="Management API of the overair OTA update server.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    management.state.settings = settings
    management.state.engine = engine
    management.state.blobs = blobs
    management.state.releases = releases
    management.state.access_keys = access_keys
    management.state.accounts = AccountService(sessions, access_keys, audit)
    management.state.device_cache = cache
    management.state.metrics = metrics
    management.state.jobs = jobs
    management.state.audit = audit_log

    management.state.webhooks = webhooks
    management.state.launch_patches = launch_patches
    management.state.prometheus = make_registry(metrics)
    management.state.scrape_access = scrape_access(
        settings.metrics_key, settings.metrics_public, settings.resolved_metrics_key_file()
    )
    _install_error_table(management)
    plain_openapi = management.openapi
    management.openapi = lambda: document_problems(plain_openapi())  # type: ignore[method-assign]
    management.include_router(auth_api.router)
    management.include_router(releases_api.router)
    management.include_router(metrics_api.router)
    management.include_router(metrics_api.prometheus_router)
    management.include_router(jobs_api.router)
    management.include_router(audit_api.router)

    management.include_router(webhooks_api.router)

    # The console signs in with the same access keys and calls the same services (metrics for its charts).
    management.mount(
        "/console",
        create_console(
            releases,
            console_sessions,
            settings.public_url,
            metrics=metrics,
            access_keys=access_keys,
            audit=audit_log,
            webhooks=webhooks,
        ),
    )

    server_public_key = ServerKeyOut(
        public_key=signing.public_key_text(server_key), key_id=signing.key_id(server_key)
    )

    @management.get("/api/v1/server-key", response_model=ServerKeyOut, tags=["devices"])
    def server_key_route() -> ServerKeyOut:
        """The public half of the key that signs update-check answers: build it into the app's engine."""
        return server_public_key

    @management.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (asks no dependency; always 200)."""
        return {"status": "alive"}

    @management.get("/readyz", tags=["operations"], responses={503: {"description": "A dependency is down"}})
    async def readyz() -> JSONResponse:
        """Readiness: the database answers, its schema is not behind this version, and the blob store
        answers (200); else 503 naming the failing dependencies."""
        with anyio.move_on_after(READINESS_SECONDS) as waited:
            state = await anyio.to_thread.run_sync(readiness, engine, blobs, abandon_on_cancel=True)
        if waited.cancelled_caught:
            failing = {"database or blob store": f"no answer in {READINESS_SECONDS:g} seconds"}
        else:
            failing = state.failing
        if not failing:
            return JSONResponse({"status": "ready", "failing": {}})
        named = ", ".join(f"{name} ({problem})" for name, problem in failing.items())
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Not ready",
                "status": 503,
                "detail": f"Not ready: {named}.",
                "failing": failing,
            },
            status_code=503,
            media_type=PROBLEM,
        )

    @management.get("/", include_in_schema=False)
    def index() -> dict[str, str]:
        return {
            "name": "overair",
            "version": __version__,
            "api": "/api/v1",
            "docs": "/api/v1/docs",
            "console": "/console/",
        }

    return OverairApp(
        management, devices, management.state, codepush_management, settings.host_policy(), metrics
    )
