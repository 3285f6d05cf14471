"""Table-driven tests of the device route tables and their dispatcher (overair.protocols.routing)."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest

from overair.app import OverairApp
from overair.protocols import codepush, native
from overair.protocols.asgi import Message, Receive, Scope, Send
from overair.protocols.routing import DeviceRoute, DeviceRouter, Endpoint, Resolution, RouteTable

# -- the dispatcher, on small tables --------------------------------------------------------------------

calls: list[tuple[str, Scope]] = []


def endpoint(name: str) -> Endpoint:
    async def answer(scope: Scope, _receive: Receive, _send: Send) -> None:
        calls.append((name, scope))

    answer.__qualname__ = name
    return answer


async def refuse(scope: Scope, _send: Send, status: int, allowed: tuple[str, ...], hint: str) -> None:
    calls.append((f"refused {status} {', '.join(allowed)} {hint}".strip(), scope))


CHECK, REPORT, BLOB, OTHER, PREFLIGHT = map(endpoint, ["check", "report", "blob", "other", "preflight"])
OWNED = RouteTable(
    [
        DeviceRoute(("GET", "HEAD"), "/v1/check", CHECK, "use GET"),
        DeviceRoute(("POST",), "/v1/report", REPORT),
        DeviceRoute(("GET", "HEAD"), "/v1/blobs/{digest}", BLOB, "use GET to download"),
    ],
    refuse,
    owns="/v1/",
)
EXACT = RouteTable(
    [
        DeviceRoute(("GET",), "/other", OTHER),
        DeviceRoute(("OPTIONS",), "/other", PREFLIGHT),
    ],
    refuse,
)
ROUTER = DeviceRouter([OWNED, EXACT])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/check", Resolution(200, CHECK, OWNED)),
        ("HEAD", "/v1/check", Resolution(200, CHECK, OWNED)),
        ("POST", "/v1/check", Resolution(405, None, OWNED, ("GET", "HEAD"), "use GET")),
        ("POST", "/v1/report", Resolution(200, REPORT, OWNED)),
        ("GET", "/v1/report", Resolution(405, None, OWNED, ("POST",))),
        ("GET", "/v1/blobs/abc", Resolution(200, BLOB, OWNED, path_params={"digest": "abc"})),
        ("GET", "/v1/blobs/", Resolution(200, BLOB, OWNED, path_params={"digest": ""})),
        ("HEAD", "/v1/blobs/a/b", Resolution(200, BLOB, OWNED, path_params={"digest": "a/b"})),
        ("PUT", "/v1/blobs/abc", Resolution(405, None, OWNED, ("GET", "HEAD"), "use GET to download")),
        # an owned prefix refuses every other path under it as not found, whatever the method
        ("GET", "/v1/", Resolution(404, None, OWNED)),
        ("GET", "/v1/blobs", Resolution(404, None, OWNED)),
        ("DELETE", "/v1/check/", Resolution(404, None, OWNED)),
        ("GET", "/other", Resolution(200, OTHER, EXACT)),
        ("OPTIONS", "/other", Resolution(200, PREFLIGHT, EXACT)),
        ("POST", "/other", Resolution(405, None, EXACT, ("GET", "OPTIONS"))),
        # paths no table serves are declined, for the management app
        ("GET", "/other/", None),
        ("GET", "/v1", None),
        ("GET", "/", None),
        ("GET", "/api/v1/apps", None),
    ],
)
def test_resolve(method: str, path: str, expected: Resolution | None) -> None:
    assert ROUTER.resolve(method, path) == expected


def scope_of(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path, "query_string": b"", "headers": []}


async def no_body() -> Message:
    return {"type": "http.request", "body": b""}


async def nothing_sent(message: Message) -> None:
    raise AssertionError(f"the router itself sent {message}")


@pytest.mark.parametrize(
    ("method", "path", "handled", "call", "path_params"),
    [
        ("GET", "/v1/check", True, "check", None),
        ("GET", "/v1/blobs/abc", True, "blob", {"digest": "abc"}),
        ("POST", "/v1/check", True, "refused 405 GET, HEAD use GET", None),
        ("GET", "/v1/report", True, "refused 405 POST", None),
        ("GET", "/v1/nothing", True, "refused 404", None),
        ("POST", "/other", True, "refused 405 GET, OPTIONS", None),
        ("GET", "/elsewhere", False, None, None),
    ],
)
def test_dispatch_calls_the_endpoint_or_the_tables_refusal(
    method: str, path: str, handled: bool, call: str | None, path_params: dict[str, str] | None
) -> None:
    calls.clear()
    scope = scope_of(method, path)
    assert anyio.run(ROUTER.dispatch, scope, no_body, nothing_sent) is handled
    assert calls == ([(call, scope)] if call else [])
    assert scope.get("path_params") == path_params


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([RouteTable([DeviceRoute(("GET",), "/a/{x}/b", CHECK)], refuse)], "may end in one"),
        ([RouteTable([DeviceRoute(("GET",), "/a{x}", CHECK)], refuse)], "may end in one"),
        ([RouteTable([DeviceRoute(("GET",), "/a/{}", CHECK)], refuse)], "may end in one"),
        ([RouteTable([DeviceRoute(("GET",), "/a}", CHECK)], refuse)], "unbalanced"),
        (
            [
                RouteTable(
                    [DeviceRoute(("GET",), "/a", CHECK), DeviceRoute(("GET", "POST"), "/a", OTHER)], refuse
                )
            ],
            "two routes for GET",
        ),
        ([OWNED, RouteTable([DeviceRoute(("PUT",), "/v1/check", OTHER)], refuse)], "two route tables"),
        ([OWNED, RouteTable([], refuse, owns="/v1/")], "two route tables"),
        ([OWNED, RouteTable([DeviceRoute(("GET",), "/v1/blobs/{key}", OTHER)], refuse)], "two route tables"),
    ],
)
def test_conflicting_or_malformed_tables_are_refused_at_start(tables: list[RouteTable], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceRouter(tables)


# -- the app's own tables ------------------------------------------------------------------------------


def endpoint_name(found: Endpoint | None) -> str | None:
    if isinstance(found, functools.partial):
        keywords = ",".join(f"{k}={v}" for k, v in found.keywords.items())
        return f"{endpoint_name(found.func)}({keywords})"
    return getattr(found, "__qualname__", None)


DIGEST = "a" * 64
CHECK_LEGACY = "CodePushProtocol.update_check(snake=False)"
CHECK_V01 = "CodePushProtocol.update_check(snake=True)"


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("GET", native.UPDATE_CHECK, 200, "NativeProtocol.update_check"),
        ("HEAD", native.UPDATE_CHECK, 200, "NativeProtocol.update_check"),
        ("POST", native.UPDATE_CHECK, 405, ("GET", "HEAD")),
        ("POST", native.REPORT, 200, "NativeProtocol.report"),
        ("GET", native.REPORT, 405, ("POST",)),
        ("GET", f"/v1/blobs/{DIGEST}", 200, "Downloads.serve"),
        ("HEAD", "/v1/blobs/anything", 200, "Downloads.serve"),
        ("POST", f"/v1/blobs/{DIGEST}", 405, ("GET", "HEAD")),
        ("GET", "/v1/nothing", 404, ()),
        ("GET", codepush.LEGACY_CHECK, 200, CHECK_LEGACY),
        ("HEAD", codepush.LEGACY_CHECK, 200, CHECK_LEGACY),
        ("GET", codepush.V01_CHECK, 200, CHECK_V01),
        ("POST", codepush.LEGACY_DEPLOY, 200, "CodePushProtocol.report_deploy"),
        ("POST", codepush.V01_DEPLOY, 200, "CodePushProtocol.report_deploy"),
        ("POST", codepush.LEGACY_DOWNLOAD, 200, "CodePushProtocol.report_download"),
        ("POST", codepush.V01_DOWNLOAD, 200, "CodePushProtocol.report_download"),
        ("OPTIONS", codepush.LEGACY_CHECK, 200, "preflight"),
        ("OPTIONS", codepush.V01_DOWNLOAD, 200, "preflight"),
        ("POST", codepush.V01_CHECK, 405, ("GET", "HEAD", "OPTIONS")),
        ("GET", codepush.LEGACY_DEPLOY, 405, ("POST", "OPTIONS")),
    ],
)
def test_the_apps_device_routes(server: OverairApp, method: str, path: str, status: int, answer: Any) -> None:
    found = server.devices.resolve(method, path)
    assert found is not None
    assert found.status == status
    if status == 200:
        assert endpoint_name(found.endpoint) == answer
    else:
        assert found.endpoint is None and found.allowed == answer


@pytest.mark.parametrize(
    "path",
    ["/", "/api/v1/apps", "/console/", "/updatecheck", "/v0.1/public/codepush/nothing", "/apps", "/v2/x"],
)
def test_other_paths_are_not_device_routes(server: OverairApp, path: str) -> None:
    assert server.devices.resolve("GET", path) is None
