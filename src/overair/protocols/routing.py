"""Device routes: a table per protocol adapter, one dispatcher for all of them (raw ASGI, no framework).

Each adapter describes itself as a :class:`RouteTable`: its :class:`DeviceRoute` rows (methods, path,
endpoint), how it refuses a request (its own wire format for 404 and 405), and optionally a path prefix it
owns entirely. :class:`DeviceRouter` compiles the tables once, so finding the update check costs one dict
lookup and never a regular expression; adding a protocol is adding a table.

A path is exact (``/v1/report``) or ends in one ``{name}`` (``/v1/blobs/{digest}``): then it matches every
path with that prefix and the rest is in ``scope["path_params"][name]``. The dispatcher answers, in order:
an exact path, the longest prefix route, an owned prefix (refused as not found), and otherwise declines,
so the request can go to the management app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from overair.protocols.asgi import Receive, Scope, Send

Endpoint = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI endpoint of one route."""


Refuse = Callable[[Scope, Send, int, tuple[str, ...], str], Awaitable[None]]
"""How a protocol answers ``(scope, send, status, allowed, hint)``: a path it has no route for (404,
``allowed`` empty) or a method a route does not take (405, the path's ``allowed`` methods and its
route's ``hint``)."""


@dataclass(frozen=True, slots=True)
class DeviceRoute:
    """One row of a route table: ``endpoint`` answers ``methods`` on ``path``.

    ``hint`` tells a client that used another method what to do instead (the native protocol's 405 body).
    """

    methods: tuple[str, ...]
    path: str
    endpoint: Endpoint
    hint: str = ""


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes of one device protocol, how it refuses, and the prefix it owns (``""`` for none)."""

    routes: Sequence[DeviceRoute]
    refuse: Refuse
    owns: str = ""


@dataclass(slots=True)
class _Target:
    """Everything routed to one path (or prefix): the endpoint per method and how to refuse the others."""

    table: RouteTable
    param: str = ""
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()
    hint: str = ""


class Resolution(NamedTuple):
    """What the router does with a method and path: call ``endpoint``, or let ``table`` refuse with
    ``status`` (404: no such path; 405: not with this method, ``allowed`` are the ones it takes)."""

    status: int
    endpoint: Endpoint | None
    table: RouteTable
    allowed: tuple[str, ...] = ()
    hint: str = ""
    path_params: dict[str, str] | None = None


def _split(path: str) -> tuple[str, str]:
    """(prefix, parameter name) of a path pattern; the name is "" for an exact path."""
    start = path.find("{")
    if start == -1:
        if "}" in path:
            raise ValueError(f"unbalanced braces in route path {path!r}")
        return path, ""
    name = path[start + 1 : -1]
    if not path.endswith("}") or not name.isidentifier() or not path[:start].endswith("/"):
        raise ValueError(f"a route path may end in one /{{name}} only: {path!r}")
    return path[:start], name


class DeviceRouter:
    """All device protocols' routes, compiled once; ``dispatch`` answers a request or declines it."""

    def __init__(self, tables: Sequence[RouteTable]) -> None:
        self._exact: dict[str, _Target] = {}
        prefixes: dict[str, _Target] = {}
        for table in tables:
            for route in table.routes:
                prefix, param = _split(route.path)
                targets = prefixes if param else self._exact
                target = targets.setdefault(prefix, _Target(table, param))
                if target.table is not table or target.param != param:
                    raise ValueError(f"two route tables claim {route.path!r}")
                for method in route.methods:
                    if method in target.endpoints:
                        raise ValueError(f"two routes for {method} {route.path!r}")
                    target.endpoints[method] = route.endpoint
                    target.allowed += (method,)
                target.hint = target.hint or route.hint
            if table.owns and prefixes.setdefault(table.owns, _Target(table)).table is not table:
                raise ValueError(f"two route tables claim {table.owns!r}")
        # longest first, so /v1/blobs/{digest} wins over the native protocol's /v1/
        self._prefixes = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)

    def _find(self, path: str) -> tuple[_Target, str] | None:
        """The target of ``path`` and the rest of it after a prefix (no allocation but the tuple)."""
        target = self._exact.get(path)
        if target is not None:
            return target, ""
        for prefix, candidate in self._prefixes:
            if path.startswith(prefix):
                return candidate, path[len(prefix) :]
        return None

    def resolve(self, method: str, path: str) -> Resolution | None:
        """Where ``method path`` goes; None when no device protocol serves the path."""
        found = self._find(path)
        if found is None:
            return None
        target, rest = found
        endpoint = target.endpoints.get(method)
        if endpoint is None:
            status = 405 if target.endpoints else 404
            return Resolution(status, None, target.table, target.allowed, target.hint)
        return Resolution(
            200, endpoint, target.table, path_params={target.param: rest} if target.param else None
        )

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer an HTTP request for a device route; False (and nothing sent) for any other path.

        The same rules as :meth:`resolve`, without building a :class:`Resolution`: this is the hot path.
        """
        found = self._find(scope["path"])
        if found is None:
            return False
        target, rest = found
        endpoint = target.endpoints.get(scope["method"])
        if endpoint is None:
            status = 405 if target.endpoints else 404
            await target.table.refuse(scope, send, status, target.allowed, target.hint)
            return True
        if target.param:
            scope["path_params"] = {target.param: rest}
        await endpoint(scope, receive, send)
        return True
