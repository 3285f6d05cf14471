"""HTTP route of the job queue: ``GET /api/v1/jobs`` lists recent jobs for operators (``overair jobs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from overair.auth.api import Caller
from overair.jobs.queue import MAX_LISTED, JobQueue
from overair.jobs.rules import JobState
from overair.jobs.schemas import JobOut

router = APIRouter(prefix="/api/v1", tags=["operations"])


def get_jobs(request: Request) -> JobQueue:
    """The job queue of the running app (wired in ``overair.app``)."""
    queue: JobQueue = request.app.state.jobs.queue
    return queue


Jobs = Annotated[JobQueue, Depends(get_jobs)]


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    queue: Jobs,
    caller: Caller,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="At most this many, newest first.")] = 50,
) -> list[JobOut]:
    """Background jobs of every host, newest first: diff and delta builds, metrics pruning (admins only)."""
    return queue.recent(caller, state=state.value if state else None, limit=limit)
