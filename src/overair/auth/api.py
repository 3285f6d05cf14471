"""Management API routes for access keys, accounts and organisations, and the dependency that
authenticates every management call."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response

from overair.auth.accounts import AccountService
from overair.auth.principal import Principal, Surface
from overair.auth.roles import KeyScope
from overair.auth.schemas import (
    AccessKeyCreate,
    AccessKeyCreated,
    AccessKeyOut,
    AccountCreate,
    AccountCreated,
    AccountOut,
    AccountPatch,
    MemberSet,
    OrganisationCreate,
    OrganisationOut,
)
from overair.auth.service import AccessKeyService
from overair.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["access keys"])


def get_keys(request: Request) -> AccessKeyService:
    """The access key service of the running app."""
    service: AccessKeyService = request.app.state.access_keys
    return service


Keys = Annotated[AccessKeyService, Depends(get_keys)]


async def require_key(request: Request, keys: Keys) -> Principal:
    """Authenticate the ``Authorization: Bearer KEY`` header: the :class:`Principal` of the request."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    token = key.strip() if scheme.lower() == "bearer" else ""
    client = request.client.host if request.client else None
    agent = request.headers.get("user-agent")
    return await anyio.to_thread.run_sync(keys.authenticate, token, Surface.API, client, agent)


Caller = Annotated[Principal, Depends(require_key)]


@router.get("/whoami")
def whoami(caller: Caller) -> dict[str, str]:
    """The name of the key used (lets a client check a key)."""
    return {"name": caller.name}


@router.get("/access-keys", response_model=list[AccessKeyOut])
def list_keys(keys: Keys, caller: Caller) -> list[AccessKeyOut]:
    """Every key (names and dates, never the keys)."""
    return keys.list(caller)


@router.post("/access-keys", response_model=AccessKeyCreated, status_code=201)
def create_key(body: AccessKeyCreate, keys: Keys, caller: Caller) -> AccessKeyCreated:
    """Create a key (for your account, limited to some apps, deployments and actions if asked); the
    response is the only time it is shown."""
    lifetime = dt.timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    scope = KeyScope.of(body.apps, body.deployments, body.actions)
    return keys.create(caller, body.name, lifetime, scope, body.account)


@router.delete("/access-keys/{name}", status_code=204)
def revoke_key(name: str, keys: Keys, caller: Caller) -> Response:
    """Revoke a key."""
    keys.revoke(caller, name)
    return Response(status_code=204)


def get_accounts(request: Request) -> AccountService:
    """The account service of the running app."""
    service: AccountService = request.app.state.accounts
    return service


Accounts = Annotated[AccountService, Depends(get_accounts)]


@router.get("/account", response_model=AccountOut)
def my_account(accounts: Accounts, caller: Caller) -> AccountOut:
    """The account of the key used."""
    mine = accounts.me(caller)
    if mine is None:
        raise NotFound("This key belongs to no account.")
    return mine


@router.get("/accounts", response_model=list[AccountOut])
def list_accounts(accounts: Accounts, caller: Caller) -> list[AccountOut]:
    """Every account (server admins)."""
    return accounts.list_accounts(caller)


@router.post("/accounts", response_model=AccountCreated, status_code=201)
def create_account(body: AccountCreate, accounts: Accounts, caller: Caller) -> AccountCreated:
    """Create an account with its first access key, shown only in this answer (server admins)."""
    return accounts.create(caller, body.name, body.email, body.server_admin)


@router.patch("/accounts/{name}", response_model=AccountOut)
def patch_account(name: str, body: AccountPatch, accounts: Accounts, caller: Caller) -> AccountOut:
    """Disable an account (its keys and console sessions stop at once) or enable it (server admins)."""
    return accounts.set_disabled(caller, name, body.disabled)


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(accounts: Accounts, caller: Caller) -> list[OrganisationOut]:
    """The organisations you belong to."""
    return accounts.organisations(caller)


@router.post("/organisations", response_model=OrganisationOut, status_code=201)
def create_organisation(body: OrganisationCreate, accounts: Accounts, caller: Caller) -> OrganisationOut:
    """Create an organisation; you become its admin."""
    return accounts.create_organisation(caller, body.name)


@router.get("/organisations/{name}", response_model=OrganisationOut)
def get_organisation(name: str, accounts: Accounts, caller: Caller) -> OrganisationOut:
    """One organisation and its members."""
    return accounts.organisation(caller, name)


@router.post("/organisations/{name}/members", response_model=OrganisationOut)
def set_member(name: str, body: MemberSet, accounts: Accounts, caller: Caller) -> OrganisationOut:
    """Add a member with an organisation role, or change its role (organisation admins)."""
    return accounts.set_member(caller, name, body.account, body.role)


@router.delete("/organisations/{name}/members/{account}", response_model=OrganisationOut)
def remove_member(name: str, account: str, accounts: Accounts, caller: Caller) -> OrganisationOut:
    """Take a member out of the organisation (organisation admins; anyone may leave)."""
    return accounts.remove_member(caller, name, account)
