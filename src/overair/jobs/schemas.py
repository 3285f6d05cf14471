"""What the jobs route answers."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from overair.jobs.rules import JobState


class JobOut(BaseModel):
    """A background job: what it is, where it stands, and why its last try failed."""

    id: int
    kind: str
    key: str
    state: JobState
    attempts: int
    last_error: str
    created_at: dt.datetime
    run_after: dt.datetime
    finished_at: dt.datetime | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
