"""Know what OTA may carry: registered store binaries and the full-release cases of the seeds.

Each case of "When a Full Release Is Required" is refused with its own message; each case of "Safely
Pushing OTA Updates" is accepted (Mendix Native Builder seed, §3)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from conftest import make_zip, publish

ICON = "1" * 64
SPLASH = "2" * 64
BINARY = {
    "format": 1,
    "app_name": "CoolApp",
    "runtime_version": "0.74.3",
    "native_modules": {"react-native-ble-plx": "3.1.0", "react-native-camera": "4.2.1"},
    "launcher_icon": ICON,
    "splash_screen": SPLASH,
}
BASE_FILES = {
    "index.js": b"showWelcome('Welcome');",
    "styles/main.css": b"h1 { color: black }",
    "assets/logo.png": b"png",
    "pages/home.xml": b"<page/>",
}


@pytest.fixture
def coolapp(api: TestClient) -> None:
    assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201


@pytest.fixture
def registered(api: TestClient, coolapp: None) -> dict:
    response = api.post(
        "/api/v1/apps/CoolApp/binaries", json={"version": "1.0.0", "build_number": 1, "descriptor": BINARY}
    )
    assert response.status_code == 201, response.text
    return response.json()


def push(api: TestClient, files: dict[str, bytes], descriptor: dict | None, **options: object):
    content = dict(files)
    if descriptor is not None:
        content["overair.json"] = json.dumps(descriptor).encode()
    options.setdefault("build_number", 1)
    return publish(api, content=make_zip(content), **options)


SAFE = {
    "style change": {"styles/main.css": b"h1 { color: navy }"},
    "static asset change": {"assets/logo.png": b"new png", "assets/terms.txt": b"text"},
    "layout change": {"pages/home.xml": b"<page><row/></page>"},
    "logic change (nanoflow)": {"index.js": b"showWelcome('Welcome!'); sync();"},
    "JavaScript action change": {"actions/greet.js": b"export function greet() {}"},
    "new JavaScript-only widget": {"widgets/stars.js": b"export const Stars = () => null;"},
    "non-destructive model change": {"model/entities.json": b'{"Order": {"attributes": {"note": "String"}}}'},
}


@pytest.mark.parametrize("case", list(SAFE), ids=list(SAFE))
def test_safe_cases_go_over_the_air(api: TestClient, registered: dict, case: str) -> None:
    response = push(api, {**BASE_FILES, **SAFE[case]}, BINARY)
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []


FULL = {
    "new native module": (
        {"native_modules": {**BINARY["native_modules"], "react-native-nfc": "2.0.0"}},
        "new native module react-native-nfc 2.0.0 is not in 1.0.0 build 1: publish a store release",
    ),
    "native module upgraded": (
        {"native_modules": {**BINARY["native_modules"], "react-native-ble-plx": "3.2.0"}},
        "native module react-native-ble-plx 3.2.0 differs from 3.1.0 in 1.0.0 build 1",
    ),
    "new native template version": (
        {"runtime_version": "0.75.0"},
        "new native template version 0.75.0 (the binary 1.0.0 build 1 has 0.74.3)",
    ),
    "app renamed": ({"app_name": "CoolerApp"}, 'the app is renamed ("CoolApp" in 1.0.0 build 1, "CoolerApp"'),
    "launcher icons changed": ({"launcher_icon": "3" * 64}, "the launcher icons changed since 1.0.0 build 1"),
    "splash screen changed": ({"splash_screen": "4" * 64}, "the splash screen changed since 1.0.0 build 1"),
}


@pytest.mark.parametrize("case", list(FULL), ids=list(FULL))
def test_full_release_cases_are_refused(api: TestClient, registered: dict, case: str) -> None:
    change, message = FULL[case]
    response = push(api, BASE_FILES, {**BINARY, **change})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json() == []


def test_initial_release_of_a_version_is_refused(api: TestClient, registered: dict) -> None:
    response = push(api, BASE_FILES, BINARY, target_version="2.0.0", build_number=None)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "initial release of a version goes through the stores" in detail and "1.0.0 build 1" in detail


def test_every_targeted_binary_is_checked(api: TestClient, registered: dict) -> None:
    older = {**BINARY, "native_modules": {"react-native-ble-plx": "3.1.0"}}
    api.post("/api/v1/apps/CoolApp/binaries", json={"version": "1.0.1", "descriptor": older})
    response = push(api, BASE_FILES, BINARY, target_version="^1.0.0", build_number=None)
    assert response.status_code == 422
    assert "react-native-camera 4.2.1 is not in 1.0.1" in response.json()["detail"]


def test_binaries_are_named_in_version_order_after_a_registration_changes(
    api: TestClient, registered: dict
) -> None:
    """PostgreSQL returns rows in no fixed order (an updated row moves), so messages must sort them."""
    for version in ("1.0.2", "1.0.1"):
        body = {"version": version, "build_number": 1, "descriptor": BINARY}
        assert api.post("/api/v1/apps/CoolApp/binaries", json=body).status_code == 201
    again = {"version": "1.0.0", "build_number": 1, "descriptor": {**BINARY, "runtime_version": "0.74.4"}}
    assert api.post("/api/v1/apps/CoolApp/binaries", json=again).status_code == 201

    response = push(api, BASE_FILES, None, target_version="^1.0.0")
    assert response.status_code == 201, response.text
    assert "against 1.0.0 build 1, 1.0.1 build 1, 1.0.2 build 1:" in response.json()["warnings"][0]
    response = push(api, BASE_FILES, {**BINARY, "runtime_version": "0.80.0"}, target_version="^1.0.0")
    assert response.status_code == 422
    named = [response.json()["detail"].index(f"binary 1.0.{patch} build 1") for patch in range(3)]
    assert named == sorted(named), response.json()["detail"]


def test_unregistered_binaries_are_accepted_with_a_warning(api: TestClient, coolapp: None) -> None:
    response = push(api, BASE_FILES, BINARY)
    assert response.status_code == 201
    assert "no registered store binary" in response.json()["warnings"][0]


def test_a_bundle_without_overair_json_is_accepted_with_a_warning(api: TestClient, registered: dict) -> None:
    response = push(api, BASE_FILES, None)
    assert response.status_code == 201
    assert "has no overair.json" in response.json()["warnings"][0]


def test_descriptor_in_a_single_top_folder_is_found(api: TestClient, registered: dict) -> None:
    files = {f"CodePush/{k}": v for k, v in BASE_FILES.items()}
    files["CodePush/overair.json"] = json.dumps({**BINARY, "runtime_version": "0.80.0"}).encode()
    response = publish(api, content=make_zip(files), build_number=1)
    assert response.status_code == 422 and "0.80.0" in response.json()["detail"]


def test_registering_again_updates_and_lists(api: TestClient, registered: dict) -> None:
    again = api.post(
        "/api/v1/apps/CoolApp/binaries",
        json={"version": "1.0.0", "build_number": 1, "descriptor": {**BINARY, "runtime_version": "0.74.4"}},
    )
    assert again.status_code == 201
    listed = api.get("/api/v1/apps/CoolApp/binaries").json()
    assert len(listed) == 1 and listed[0]["descriptor"]["runtime_version"] == "0.74.4"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "1.0", "descriptor": BINARY}, "not a binary version"),
        ({"version": "1.0.0", "descriptor": {"native_modules": ["x"]}}, "native_modules"),
        ({"version": "1.0.0", "descriptor": {"launcher_icon": "abc"}}, "SHA-256"),
        ({"version": "1.0.0", "descriptor": {"colour": "red"}}, "unknown fields in the descriptor: colour"),
    ],
)
def test_bad_registrations(api: TestClient, coolapp: None, body: dict, message: str) -> None:
    response = api.post("/api/v1/apps/CoolApp/binaries", json=body)
    assert response.status_code == 422 and message in response.json()["detail"]


def test_a_broken_overair_json_in_the_bundle_is_refused(api: TestClient, registered: dict) -> None:
    response = publish(api, content=make_zip({**BASE_FILES, "overair.json": b"{not json"}), build_number=1)
    assert response.status_code == 422 and "descriptor is not JSON" in response.json()["detail"]


def test_promote_and_rollback_are_checked_too(api: TestClient, registered: dict) -> None:
    staged = publish(
        api,
        deployment="Staging",
        content=make_zip({**BASE_FILES, "overair.json": json.dumps(BINARY).encode()}),
        build_number=1,
    )
    assert staged.status_code == 201
    to_new_binary = api.post("/api/v1/apps/CoolApp/promote", json={"target_version": "3.0.0"})
    assert to_new_binary.status_code == 422 and "initial release" in to_new_binary.json()["detail"]
    promoted = api.post("/api/v1/apps/CoolApp/promote", json={})
    assert promoted.status_code == 201 and promoted.json()["warnings"] == []
    push(api, {**BASE_FILES, "index.js": b"v2"}, BINARY)
    rolled = api.post("/api/v1/apps/CoolApp/deployments/Production/rollback", json={})
    assert rolled.status_code == 201 and rolled.json()["warnings"] == []
