"""Malformed numbers and JSON get a clear 4xx in each surface's own format, never a 500 (issue 13, items 8-9).

What the attacker sent: Unicode digits (``²``, ``①`` pass ``str.isdigit()`` but not ``int()``), numbers of
4,301 digits (over Python's int-from-text limit), 100,000 ``[`` (a RecursionError in the JSON parser),
``NaN``/``Infinity``/``1e300`` where a number is expected, and clients that hang up halfway through a body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import bundle, call_asgi
from overair.app import OverairApp, create_app
from overair.config import Settings

DEEP = b"[" * 100_000
HALF_MULTIPART = (
    b'--x\r\nContent-Disposition: form-data; name="package"; filename="p.zip"\r\n'
    b"Content-Type: application/zip\r\n\r\n" + b"z" * 300
)
HUGE = "1" * 4301


@pytest.fixture
def codepush(server: OverairApp, admin_key: str) -> TestClient:
    """The CodePush management API (standalone dialect) with the admin key; an app CoolApp."""
    client = TestClient(server, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {admin_key}"
    assert client.post("/apps", json={"name": "CoolApp"}).status_code == 201
    return client


@pytest.fixture
def appcenter(server: OverairApp, admin_key: str) -> TestClient:
    """The CodePush management API in App Center's dialect, with the admin key."""
    client = TestClient(server, base_url="http://testserver")
    client.headers["x-api-token"] = admin_key
    return client


@pytest.fixture
def upload(codepush: TestClient, appcenter: TestClient) -> dict[str, str]:
    """An App Center upload in progress (its id and token)."""
    started = appcenter.post("/apps/admin/CoolApp/deployments/Staging/uploads")
    assert started.status_code == 201, started.text
    return dict(started.json())


# -- item 8: numbers in the App Center upload routes -----------------------------------------------------


@pytest.mark.parametrize(
    "size", ["%C2%B2", "%E2%91%A0", "%D9%A3", HUGE, "-1", "1e3", "0x10", "%2010", "", "10.0"]
)
def test_a_file_size_that_is_not_a_whole_number_is_a_400(
    device: TestClient, upload: dict[str, str], size: str
) -> None:
    answer = device.post(f"/upload/set_metadata/{upload['id']}?token={upload['token']}&file_size={size}")
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": True,
        "message": "file_size must be the file's size in bytes, a whole number like 1048576.",
    }


def test_a_file_size_over_the_limit_is_a_413_however_many_digits(
    device: TestClient, upload: dict[str, str]
) -> None:
    for size in ("9" * 15, "9" * 30):
        answer = device.post(f"/upload/set_metadata/{upload['id']}?token={upload['token']}&file_size={size}")
        assert answer.status_code in (400, 413), answer.text
        assert answer.json()["error"] is True


@pytest.mark.parametrize("number", ["%E2%91%A0", "%C2%B9", HUGE, "-1", "one", ""])
def test_a_block_number_that_is_not_a_whole_number_is_a_400(
    device: TestClient, upload: dict[str, str], number: str
) -> None:
    query = f"token={upload['token']}"
    assert device.post(f"/upload/set_metadata/{upload['id']}?{query}&file_size=10").status_code == 200
    answer = device.post(
        f"/upload/upload_chunk/{upload['id']}?{query}&block_number={number}", content=b"x" * 10
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": True,
        "message": "block_number must be the chunk's number, a whole number like 1.",
    }


def test_a_huge_block_number_is_not_part_of_the_upload(device: TestClient, upload: dict[str, str]) -> None:
    query = f"token={upload['token']}"
    assert device.post(f"/upload/set_metadata/{upload['id']}?{query}&file_size=10").status_code == 200
    answer = device.post(f"/upload/upload_chunk/{upload['id']}?{query}&block_number={'9' * 12}", content=b"x")
    assert answer.status_code == 400 and answer.json()["error"] is True


@pytest.mark.parametrize("length", ["\u00b2", "1" * 4301])
def test_a_content_length_that_is_not_a_number_is_never_a_500(
    codepush: TestClient, admin_key: str, length: str
) -> None:
    """Servers reject such headers before overair sees them; the apps still refuse them cleanly."""
    headers = {"content-length": length, "content-type": "multipart/form-data; boundary=x"}
    body = [b"--x\r\n\r\n--x--\r\n"]
    headers["authorization"] = f"Bearer {admin_key}"
    answered = statuses(codepush.app, "POST", "/apps/CoolApp/deployments/Staging/release", headers, body)
    assert answered == [400]
    answered = statuses(
        codepush.app, "POST", "/api/v1/apps/CoolApp/deployments/Staging/releases", headers, body
    )
    assert answered == [411]


# -- item 9: JSON bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "it is nested too deeply (at most 32 levels)"),
        (b"[" * 33 + b"]" * 33, "it is nested too deeply (at most 32 levels)"),
        (b'{"ttl": NaN}', "NaN is not a number JSON allows"),
        (b'{"ttl": Infinity}', "Infinity is not a number JSON allows"),
        (b'{"ttl": -Infinity}', "-Infinity is not a number JSON allows"),
        (b'{"ttl": 1e400}', "the number 1e400 is out of range"),
        (b'{"ttl": ' + HUGE.encode() + b"}", "a number has more than 300 digits"),
        (b'{"ttl": ', "Expecting value: line 1 column 9 (char 8)"),
        (b"\xff\xfe{}", "it is not UTF-8 text"),
    ],
)
def test_unreadable_json_is_a_400_naming_what_is_wrong(
    codepush: TestClient, body: bytes, reason: str
) -> None:
    for method, path in (("PATCH", "/accessKeys/admin"), ("POST", "/accessKeys"), ("POST", "/apps")):
        answer = codepush.request(method, path, content=body)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.text == f"The request body is not valid JSON: {reason}."


def test_app_center_answers_unreadable_json_in_its_format(appcenter: TestClient) -> None:
    answer = appcenter.post("/api_tokens", content=DEEP)
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "BadRequest",
        "message": "The request body is not valid JSON: it is nested too deeply (at most 32 levels).",
    }


@pytest.mark.parametrize("ttl", [1e300, 1e20, 3.2e12, 2**64, -1])
def test_a_ttl_out_of_range_is_an_invalid_field(codepush: TestClient, ttl: float) -> None:
    """At most 100 years, as the management API allows (`ttl` is in milliseconds)."""
    created = codepush.post("/accessKeys", json={"friendlyName": "ci", "ttl": ttl})
    assert created.status_code == 400, created.text
    assert created.json() == [{"field": "ttl", "message": "Field is invalid"}]
    patched = codepush.patch("/accessKeys/admin", json={"ttl": ttl})
    assert patched.status_code == 400, patched.text


def test_a_ttl_of_a_hundred_years_is_accepted(codepush: TestClient) -> None:
    century = 100 * 365 * 24 * 3600 * 1000
    assert codepush.post("/accessKeys", json={"friendlyName": "ci", "ttl": century}).status_code == 201


def test_a_package_info_nested_too_deeply_counts_as_empty(codepush: TestClient) -> None:
    """The multipart field ``packageInfo`` that is not JSON counts as ``{}``: no appVersion, a 400."""
    answer = codepush.post(
        "/apps/CoolApp/deployments/Staging/release",
        files={"package": ("p.zip", bundle("one"), "application/zip")},
        data={"packageInfo": "[" * 100_000},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == [{"field": "appVersion", "message": "Field is required"}]


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/api/v1/apps", DEEP, "The request body is not valid JSON: it is nested too deeply."),
        ("/api/v1/access-keys", DEEP, "The request body is not valid JSON: it is nested too deeply."),
        ("/api/v1/apps", b'{"name": ' + HUGE.encode() + b"}", "JSON: a number has too many digits."),
        (
            "/api/v1/apps",
            b"\xff\xfe{}",
            "The request body is not valid JSON: Expecting value (at character 0).",
        ),
        (
            "/api/v1/apps",
            b'{"name": ',
            "The request body is not valid JSON: Expecting value (at character 9).",
        ),
        ("/api/v1/apps", b'{"name": NaN}', "name: Input should be a valid string"),
        ("/api/v1/apps", b'{"name": 1e400}', "name: Input should be a valid string"),
        (
            "/api/v1/access-keys",
            b'{"name": "x", "expires_in_seconds": NaN}',
            "expires_in_seconds: Input should be a finite number",
        ),
        ("/api/v1/access-keys", b'{"name": "x", "expires_in_seconds": 1e300}', "expires_in_seconds:"),
        ("/api/v1/access-keys", b'{"name": "x", "expires_in_seconds": Infinity}', "expires_in_seconds:"),
    ],
)
def test_the_management_api_refuses_the_same_payloads_clearly(
    api: TestClient, path: str, body: bytes, detail: str
) -> None:
    answer = api.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert detail in answer.json()["detail"]


def test_the_release_options_field_refuses_the_same_payloads(api: TestClient) -> None:
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    for raw in ("[" * 100_000, '{"target_version": "1.0.0", "rollout": NaN}'):
        answer = api.post(
            "/api/v1/apps/CoolApp/deployments/Production/releases",
            files={"package": ("p.zip", bundle("one"), "application/zip")},
            data={"release": raw},
        )
        assert answer.status_code == 422, answer.text
        assert "The `release` field is not JSON" in answer.json()["detail"]


# -- item 9: a client that hangs up halfway through its body ---------------------------------------------


def statuses(
    server: Any, method: str, target: str, headers: dict[str, str], chunks: list[bytes], hang_up: bool = False
) -> list[int]:
    """The statuses ``server`` answered a request with (none, or one)."""
    path, _, query = target.partition("?")
    answer = call_asgi(
        server,
        method,
        path,
        query=query.encode(),
        headers=list(headers.items()),
        chunks=chunks,
        hang_up=hang_up,
    )
    return [answer.status] if answer else []


@pytest.mark.parametrize(
    ("method", "path", "content_type", "dialect"),
    [
        ("PATCH", "/accessKeys/admin", "application/json", "standalone"),
        ("POST", "/apps", "application/json", "appcenter"),
        (
            "POST",
            "/apps/CoolApp/deployments/Staging/release",
            "multipart/form-data; boundary=x",
            "standalone",
        ),
        ("POST", "/upload/upload_chunk/{upload}?block_number=1", "application/octet-stream", "upload"),
        ("POST", "/api/v1/apps", "application/json", "api"),
        (
            "POST",
            "/api/v1/apps/CoolApp/deployments/Staging/releases",
            "multipart/form-data; boundary=x",
            "api",
        ),
        ("POST", "/console/sign-in", "application/x-www-form-urlencoded", "console"),
        ("POST", "/v1/report", "application/json", "device"),
        ("POST", "/reportStatus/deploy", "application/json", "device"),
    ],
)
def test_a_client_that_hangs_up_mid_body_is_one_log_line_and_no_500(
    server: OverairApp,
    codepush: TestClient,
    upload: dict[str, str],
    admin_key: str,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    content_type: str,
    dialect: str,
) -> None:
    path, _, query = path.format(upload=upload["id"]).partition("?")
    headers = {"host": "testserver", "origin": "http://testserver", "content-type": content_type}
    if dialect == "appcenter":
        headers["x-api-token"] = admin_key
    elif dialect in ("standalone", "api"):
        headers["authorization"] = f"Bearer {admin_key}"
    if dialect == "upload":
        codepush.post(f"/upload/set_metadata/{upload['id']}?token={upload['token']}&file_size=1000")
        query += f"&token={upload['token']}"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        half = [
            HALF_MULTIPART if content_type.startswith("multipart/") else b'{"friendlyName": "' + b"x" * 480
        ]
        target = path + ("?" + query if query else "")
        answered = statuses(server, method, target, {**headers, "content-length": "1000"}, half, hang_up=True)
    assert not [s for s in answered if s >= 500], answered
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    if dialect != "device":  # devices hang up often: a short report is a bad request, as it always was
        (line,) = [r.getMessage() for r in caplog.records if r.name == "overair"]
        assert "disconnected before sending the whole request" in line and path in line
        assert json.dumps(line).count("\\n") == 0


@pytest.mark.parametrize(
    ("surface", "method", "path", "body"),
    [
        ("api", "POST", "/api/v1/apps", {"name": "Cool\u0000App"}),
        ("api", "GET", "/api/v1/apps/Cool%00App", None),
        ("codepush", "GET", "/accessKeys/ad%00min", None),
        ("codepush", "POST", "/apps", {"name": "Cool\u0000App"}),
        ("device", "GET", "/v1/update-check?deployment_key=%00&app_version=1.0.0", None),
        ("device", "GET", "/updateCheck?deploymentKey=abc%00defghijk&appVersion=1.0.0", None),
    ],
)
def test_a_nul_character_is_refused_or_not_found_on_every_backend(
    request: pytest.FixtureRequest, surface: str, method: str, path: str, body: Any
) -> None:
    """PostgreSQL cannot store or compare text holding NUL (SQLite can): never a 500 on either."""
    client: TestClient = request.getfixturevalue(surface)
    response = client.request(method, path, json=body)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_a_nul_deployment_key_asked_again_is_still_no_update(settings: Settings) -> None:
    """The second check revalidates the cached answer (every time here): PostgreSQL is never asked either."""
    server = create_app(settings.model_copy(update={"cache_recheck_seconds": 0.0}))
    with TestClient(server, base_url="http://testserver") as device:
        for _ in range(3):
            answer = device.get("/v1/update-check", params={"deployment_key": "\x00", "app_version": "1.0.0"})
            assert answer.status_code < 500, answer.text
