"""HTTP routes of the metrics domain: the management metrics of a deployment and ``GET /metrics``."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from overair.auth.api import Caller
from overair.errors import Unauthorized
from overair.metrics.schemas import (
    DeploymentMetricsOut,
    RehearsalClearedOut,
    RehearsalOut,
    RehearsalReleaseOut,
)
from overair.metrics.scrape import ScrapeAccess
from overair.metrics.service import MAX_HOURS, MetricsService

router = APIRouter(prefix="/api/v1", tags=["metrics"])
prometheus_router = APIRouter()


def get_metrics(request: Request) -> MetricsService:
    """The metrics service of the running app (wired in ``overair.app``)."""
    service: MetricsService = request.app.state.metrics
    return service


Metrics = Annotated[MetricsService, Depends(get_metrics)]


@router.get("/apps/{app}/deployments/{deployment}/metrics", response_model=DeploymentMetricsOut)
def deployment_metrics(
    app: str,
    deployment: str,
    service: Metrics,
    caller: Caller,
    hours: Annotated[
        int, Query(description=f"How many hours back, the current one included (1 to {MAX_HOURS}).")
    ] = 48,
) -> DeploymentMetricsOut:
    """Reports per label and hour, active devices per label over time and now, failure rates."""
    return service.deployment_metrics(caller, app, deployment, hours)


@router.get("/apps/{app}/deployments/{deployment}/rehearsal", response_model=RehearsalOut)
def rehearsal(app: str, deployment: str, service: Metrics, caller: Caller) -> RehearsalOut:
    """What simulated devices (``Overair-Simulated: 1`` reports) did on each release; never in the metrics."""
    found = service.rehearsal(caller, app, deployment)
    return RehearsalOut(
        app=found.app,
        deployment=found.deployment,
        devices=found.devices,
        reports=found.reports,
        releases=[RehearsalReleaseOut(**dataclasses.asdict(r)) for r in found.releases],
    )


@router.delete("/apps/{app}/deployments/{deployment}/rehearsal", response_model=RehearsalClearedOut)
def clear_rehearsal(app: str, deployment: str, service: Metrics, caller: Caller) -> RehearsalClearedOut:
    """Remove every trace simulated devices left on the deployment; production numbers are untouched."""
    return RehearsalClearedOut(**dataclasses.asdict(service.clear_rehearsal(caller, app, deployment)))


def _check_scrape_key(request: Request) -> None:
    access: ScrapeAccess = request.app.state.scrape_access
    if not access.allows(request.headers.get("authorization", "")):
        raise Unauthorized(
            f"/metrics needs this server's metrics key (from {access.source}): send Authorization: Bearer "
            "<key> (in Prometheus: authorization: {credentials_file: ...} in the scrape config), or set "
            "OVERAIR_METRICS_PUBLIC=true to open it."
        )


@prometheus_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition, computed from the database at scrape time."""
    _check_scrape_key(request)
    registry: CollectorRegistry = request.app.state.prometheus
    body = await anyio.to_thread.run_sync(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
