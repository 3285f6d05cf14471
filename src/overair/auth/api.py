"""Management API routes for access keys, and the dependency that authenticates every management call."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response

from overair.auth.principal import Principal, Surface
from overair.auth.roles import KeyScope
from overair.auth.schemas import AccessKeyCreate, AccessKeyCreated, AccessKeyOut
from overair.auth.service import AccessKeyService

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
