"""Management API routes for accounts (server admins) and organisations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from overair.auth.accounts import AccountService
from overair.auth.api import Caller
from overair.auth.schemas import (
    AccountCreate,
    AccountCreated,
    AccountOut,
    AccountPatch,
    MemberSet,
    OrganisationCreate,
    OrganisationOut,
)
from overair.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["accounts"])


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
