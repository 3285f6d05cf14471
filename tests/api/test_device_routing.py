"""Which device route answers a method and path, through the whole app: found, 404 or 405, and what it says.

Device routes are raw ASGI in front of the management app, so this pins what a device sees for every
wrong path or method of the native protocol and the CodePush acquisition protocol.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from overair.protocols import codepush

NATIVE_NOT_FOUND = "No device route {path}."
BAD_DIGEST = "No such package: the URL must end in a SHA-256 hex digest."


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allow"),
    [
        # routed to the update check, which refuses a request without a key
        ("GET", "/v1/update-check", 400, "deployment_key is missing", None),
        ("HEAD", "/v1/update-check", 400, None, None),
        ("POST", "/v1/update-check", 405, "Use GET for the update check.", "GET, HEAD"),
        ("OPTIONS", "/v1/update-check", 405, "Use GET for the update check.", "GET, HEAD"),
        ("POST", "/v1/report", 400, "Invalid report", None),
        ("GET", "/v1/report", 405, "Use POST to send a status report.", "POST"),
        ("PUT", "/v1/report", 405, "Use POST to send a status report.", "POST"),
        ("GET", "/v1/blobs/not-a-digest", 404, BAD_DIGEST, None),
        ("GET", "/v1/blobs/", 404, BAD_DIGEST, None),
        ("GET", "/v1/blobs/a/b", 404, BAD_DIGEST, None),
        ("POST", "/v1/blobs/" + "0" * 64, 405, "Use GET to download a package.", "GET, HEAD"),
        ("DELETE", "/v1/blobs/not-a-digest", 405, "Use GET to download a package.", "GET, HEAD"),
        # unknown paths under /v1/ belong to the native protocol all the same
        ("GET", "/v1/nothing", 404, NATIVE_NOT_FOUND, None),
        ("GET", "/v1/update-check/", 404, NATIVE_NOT_FOUND, None),
        ("POST", "/v1/blobs", 404, NATIVE_NOT_FOUND, None),
        ("GET", "/v1/", 404, NATIVE_NOT_FOUND, None),
    ],
)
def test_native_routes(
    device: TestClient, method: str, path: str, status: int, error: str | None, allow: str | None
) -> None:
    response = device.request(method, path)
    assert response.status_code == status, response.text
    assert response.headers.get("allow") == allow
    if error is not None:
        assert response.headers["content-type"] == "application/json"
        assert error.format(path=path) in response.json()["error"]


ORIGIN = {"Origin": "http://localhost"}


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", codepush.LEGACY_CHECK, 400, codepush.BAD_KEY),
        ("HEAD", codepush.LEGACY_CHECK, 400, ""),
        ("GET", codepush.V01_CHECK, 400, codepush.BAD_KEY),
        ("POST", codepush.LEGACY_DEPLOY, 400, codepush.DEPLOY_MISSING),
        ("POST", codepush.V01_DEPLOY, 400, codepush.DEPLOY_MISSING),
        ("POST", codepush.LEGACY_DOWNLOAD, 400, codepush.DOWNLOAD_MISSING),
        ("POST", codepush.V01_DOWNLOAD, 400, codepush.DOWNLOAD_MISSING),
        # the reference answers a wrong method like an unknown path: 404, with CORS headers
        ("POST", codepush.LEGACY_CHECK, 404, "Not Found"),
        ("PUT", codepush.V01_CHECK, 404, "Not Found"),
        ("GET", codepush.LEGACY_DEPLOY, 404, "Not Found"),
        ("GET", codepush.V01_DOWNLOAD, 404, "Not Found"),
        # CORS preflight on every acquisition path
        ("OPTIONS", codepush.LEGACY_CHECK, 204, ""),
        ("OPTIONS", codepush.V01_CHECK, 204, ""),
        ("OPTIONS", codepush.LEGACY_DEPLOY, 204, ""),
        ("OPTIONS", codepush.V01_DOWNLOAD, 204, ""),
    ],
)
def test_codepush_routes(device: TestClient, method: str, path: str, status: int, body: str) -> None:
    response = device.request(method, path, headers=ORIGIN)
    assert response.status_code == status, response.text
    assert response.text == body
    assert response.headers["access-control-allow-origin"] == "http://localhost"
    assert response.headers["access-control-allow-methods"] == "GET, POST, DELETE, PUT"
    assert "allow" not in response.headers
    if status == 404:
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/updatecheck", "/updateCheck/", "/v0.1/public/codepush/nothing", "/reportStatus", "/v2/x"]
)
def test_other_paths_reach_the_management_app(device: TestClient, path: str) -> None:
    response = device.get(path, headers=ORIGIN)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in response.headers
