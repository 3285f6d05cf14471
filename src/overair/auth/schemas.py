"""Access key bodies of the management API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

MAX_KEY_LIFETIME_SECONDS = 100 * 365 * 24 * 3600
"""The longest lifetime a key may be given (100 years), in every dialect."""


class AccessKeyCreate(BaseModel):
    """Create a named access key."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$", description="1-100 characters")
    expires_in_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_KEY_LIFETIME_SECONDS,
        description="Lifetime of the key; none: never expires.",
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
