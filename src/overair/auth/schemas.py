"""Access key bodies of the management API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class AccessKeyCreate(BaseModel):
    """Create a named access key."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$", description="1-100 characters")
    expires_in_seconds: int | None = Field(
        default=None, ge=1, le=100 * 365 * 24 * 3600, description="Lifetime of the key; none: never expires."
    )


class AccessKeyOut(BaseModel):
    """A key as listed: never the key itself."""

    model_config = ConfigDict(from_attributes=True)  # read from the stored row, field by field

    name: str
    created_by: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None = None


class AccessKeyCreated(AccessKeyOut):
    """A key just created: the only time the key is shown."""

    key: str
