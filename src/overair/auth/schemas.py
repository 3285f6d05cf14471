"""Access key bodies of the management API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from overair.auth.actions import Action
from overair.auth.roles import OrgRole

Name = Annotated[str, Field(min_length=1, max_length=100)]

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
    account: str | None = Field(
        default=None, description="The account the key is for (a server admin's choice); none: yours."
    )
    apps: list[Name] | None = Field(default=None, description="The only apps the key may act on.")
    deployments: list[Name] | None = Field(
        default=None, description="The only deployments the key may change (it still reads the others)."
    )
    actions: list[Action] | None = Field(
        default=None, description="The only actions the key may take besides reading."
    )


class AccessKeyOut(BaseModel):
    """A key as listed: never the key itself."""

    model_config = ConfigDict(from_attributes=True)  # read from the stored row, field by field

    name: str
    created_by: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None = None
    account: str = ""
    """The account the key acts for."""
    apps: list[str] | None = None
    deployments: list[str] | None = None
    actions: list[str] | None = None


class AccessKeyCreated(AccessKeyOut):
    """A key just created: the only time the key is shown."""

    key: str


class AccountCreate(BaseModel):
    """Create an account (a server admin's call); its first key is in the answer."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$", description="1-100 characters")
    email: str = Field(default="", max_length=200)
    server_admin: bool = False


class AccountOut(BaseModel):
    """An account as listed."""

    name: str
    email: str
    disabled: bool
    server_admin: bool
    created_at: dt.datetime


class AccountCreated(AccountOut):
    """An account just created, with its first access key (the only time it is shown)."""

    key: str
    key_name: str


class AccountPatch(BaseModel):
    """Disable or enable an account."""

    model_config = ConfigDict(extra="forbid")
    disabled: bool


class OrganisationCreate(BaseModel):
    """Create an organisation (you become its admin)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$", description="1-100 characters")


class MemberOut(BaseModel):
    """An organisation member and its organisation role."""

    account: str
    role: OrgRole


class MemberSet(BaseModel):
    """Add a member to an organisation, or change its role."""

    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=100)
    role: OrgRole = OrgRole.MEMBER


class OrganisationOut(BaseModel):
    """An organisation and its members."""

    name: str
    members: list[MemberOut]
