"""Rolling back to a release for other binaries through the management API: never leaves a device on the
release being rolled back (overair.releases.rules.rollback_plan), and devices' answers show it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from conftest import bundle, publish

BASE = "/api/v1/apps/CoolApp/deployments/Production"


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}["Production"]


def released(api: TestClient, text: str, target: str) -> dict:
    response = publish(api, content=bundle(text), target_version=target)
    assert response.status_code == 201, response.text
    return response.json()


def offered(device: TestClient, key: str, app_version: str, running: dict) -> str:
    """The label a device on ``app_version`` that runs ``running`` is offered ("" for none)."""
    params = {
        "deployment_key": key,
        "app_version": app_version,
        "label": running["label"],
        "package_hash": running["package_hash"],
    }
    answer = device.get("/v1/update-check", params=params).json()
    return answer["update"]["label"] if answer["status"] == "update" else ""


def labels(api: TestClient) -> list[tuple[str, str, str]]:
    return [(r["label"], r["target_version"], r["package_hash"]) for r in api.get(f"{BASE}/releases").json()]


def test_a_rollback_that_would_leave_devices_on_the_bad_release_is_refused_with_both_ways_out(
    api: TestClient, key: str
) -> None:
    released(api, "good", "1.0.0")
    released(api, "bad", "^1.0.0")
    before = labels(api)
    refused = api.post(f"{BASE}/rollback", json={})
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "cross-version-rollback"
    assert "would leave devices on v2" in problem["detail"] and "^1.0.0" in problem["detail"]
    assert [f["action"] for f in problem["fixes"]] == ["roll-back-for-target", "publish-replacement"]
    assert problem["fixes"][0] == {
        "action": "roll-back-for-target",
        "label": "v1",
        "target_version": "^1.0.0",
        "deployment": "Production",
    }
    # a target that still misses some of them is refused the same way
    narrow = api.post(f"{BASE}/rollback", json={"label": "v1", "target_version": "~1.0.0"})
    assert narrow.status_code == 409 and narrow.json()["code"] == "cross-version-rollback"
    assert labels(api) == before  # nothing was published


def test_the_older_content_for_the_newest_release_target_moves_every_device_off_it(
    api: TestClient, device: TestClient, key: str
) -> None:
    good = released(api, "good", "1.0.0")
    bad = released(api, "bad", "^1.0.0")
    assert (
        offered(device, key, "1.4.0", bad) == ""
    )  # before: nothing moves a 1.4.0 device off the bad release
    rolled = api.post(f"{BASE}/rollback", json={"label": "v1", "target_version": "^1.0.0"})
    assert rolled.status_code == 201, rolled.text
    v3 = rolled.json()
    assert (v3["label"], v3["target_version"], v3["package_hash"]) == ("v3", "^1.0.0", good["package_hash"])
    assert (v3["origin_label"], v3["method"]) == ("v1", "rollback")
    # every binary the bad release reaches is offered the older content, and nothing else
    for version in ("1.0.0", "1.4.0", "1.99.0"):
        assert offered(device, key, version, bad) == "v3"
    assert offered(device, key, "1.0.0", good) == ""  # it already runs that content


def test_an_older_release_whose_range_reaches_every_device_is_rolled_back_to_as_it_is(
    api: TestClient, device: TestClient, key: str
) -> None:
    good = released(api, "good", "^1.0.0")
    bad = released(api, "hotfix", "1.2.0")
    rolled = api.post(f"{BASE}/rollback", json={})
    assert rolled.status_code == 201, rolled.text
    assert (rolled.json()["origin_label"], rolled.json()["target_version"]) == ("v1", "^1.0.0")
    assert offered(device, key, "1.2.0", bad) == "v3"
    assert offered(device, key, "1.0.0", good) == ""


def test_the_default_rollback_goes_to_the_previous_release_for_the_same_binaries(
    api: TestClient, key: str
) -> None:
    released(api, "one", "1.0.0")
    released(api, "two", "2.0.0")
    released(api, "bad hotfix for one", "1.0.0")
    rolled = api.post(f"{BASE}/rollback", json={})
    assert rolled.status_code == 201, rolled.text
    assert (rolled.json()["origin_label"], rolled.json()["target_version"]) == ("v1", "1.0.0")


def test_content_never_moves_to_another_build_number(api: TestClient, key: str) -> None:
    assert publish(api, content=bundle("a"), target_version="1.0.0", build_number=2).status_code == 201
    assert publish(api, content=bundle("b"), target_version="1.0.0", build_number=3).status_code == 201
    for body in ({}, {"label": "v1", "target_version": "1.0.0"}):
        refused = api.post(f"{BASE}/rollback", json=body)
        assert refused.status_code == 409 and refused.json()["code"] == "cross-version-rollback"
        assert [f["action"] for f in refused.json()["fixes"]] == ["publish-replacement"]
        assert refused.json()["fixes"][0]["build_number"] == "3"


def test_a_refused_patch_changes_nothing(api: TestClient, key: str) -> None:
    publish(api, content=bundle("a"), target_version="1.0.0", rollout=20, description="before")
    for body in (
        {"label": "v1", "rollout": 10, "mandatory": True, "description": "after"},
        {"label": "v1", "rollout": 30, "disabled": True, "target_version": "not a version"},
    ):
        assert api.patch(f"{BASE}/releases", json=body).status_code in (409, 422)
    release = api.get(f"{BASE}/releases").json()[0]
    assert (release["rollout"], release["mandatory"], release["disabled"], release["description"]) == (
        20,
        False,
        False,
        "before",
    )
    assert release["target_version"] == "1.0.0"
