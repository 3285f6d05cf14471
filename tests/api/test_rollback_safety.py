"""Rolling back from a failing release over the management API: the release rolled back from keeps its
share and says why it was disabled, the default target is never disabled or failing, and choosing such a
release (or enabling it again) needs its label as confirmation."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import bundle, publish

BASE = "/api/v1/apps/CoolApp/deployments/Production"


def report(device: TestClient, key: str, label: str, status: str, times: int) -> None:
    for n in range(times):
        body = {"deployment_key": key, "label": label, "status": status, "client_id": f"{label}-{status}-{n}"}
        assert device.post("/v1/report", json=body).status_code == 200


def history(api: TestClient) -> dict[str, Any]:
    return {r["label"]: r for r in api.get(f"{BASE}/releases").json()}


@pytest.fixture
def failing_v2(api: TestClient, device: TestClient) -> str:
    """The issue's story: v1 healthy, v2 rolling out to 60% and failing on 31 of 50 installs (62%)."""
    key = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"][0]["key"]
    assert publish(api, content=bundle("one")).status_code == 201
    assert publish(api, content=bundle("two"), rollout=60).status_code == 201
    report(device, key, "v1", "installed", 20)
    report(device, key, "v2", "installed", 19)
    report(device, key, "v2", "failed", 31)
    return key


def test_rolling_back_keeps_the_failing_release_at_its_share_and_says_why(
    api: TestClient, failing_v2
) -> None:
    rolled = api.post(f"{BASE}/rollback", json={})
    assert rolled.status_code == 201, rolled.text
    assert (rolled.json()["label"], rolled.json()["origin_label"]) == ("v3", "v1")
    v2 = history(api)["v2"]
    assert v2["rollout"] == 60  # not rewritten to 100% by the new release
    assert v2["disabled"] is True and v2["disabled_by"] == "admin" and v2["disabled_at"]
    assert v2["disabled_reason"] == "disabled when admin rolled Production back to the content of v1 (as v3)"


def test_the_default_rollback_never_picks_a_disabled_or_failing_release(api: TestClient, failing_v2) -> None:
    assert api.post(f"{BASE}/rollback", json={}).status_code == 201  # v3 = v1's content; v2 disabled
    refused = api.post(f"{BASE}/rollback", json={})
    assert refused.status_code == 404
    assert "disabled or failing" in refused.json()["detail"]
    assert [r["label"] for r in api.get(f"{BASE}/releases").json()] == ["v1", "v2", "v3"]


def test_choosing_a_failing_release_needs_its_label(api: TestClient, failing_v2) -> None:
    assert api.post(f"{BASE}/rollback", json={}).status_code == 201
    for confirm in (None, "", "v1", "yes"):
        refused = api.post(f"{BASE}/rollback", json={"label": "v2", "confirm": confirm})
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["code"] == "confirmation-required"
        assert "v2 is disabled (disabled when admin rolled Production back" in body["detail"]
        assert "62.0% of its 50 install attempts failed" in body["detail"]
        assert body["fixes"] == [{"action": "confirm-release", "label": "v2", "deployment": "Production"}]
    assert list(history(api)) == ["v1", "v2", "v3"]  # nothing published
    done = api.post(f"{BASE}/rollback", json={"label": "v2", "confirm": "v2"})
    assert done.status_code == 201, done.text
    assert done.json()["origin_label"] == "v2"
    assert any("62.0%" in w for w in done.json()["warnings"])


def test_enabling_a_release_disabled_after_failures_needs_its_label(api: TestClient, failing_v2) -> None:
    assert api.post(f"{BASE}/rollback", json={}).status_code == 201
    refused = api.patch(f"{BASE}/releases/v2", json={"disabled": False})
    assert refused.status_code == 409 and refused.json()["code"] == "confirmation-required"
    assert "Enabling v2" in refused.json()["detail"]
    assert history(api)["v2"]["disabled"] is True
    enabled = api.patch(f"{BASE}/releases/v2", json={"disabled": False, "confirm": "v2"})
    assert enabled.status_code == 200, enabled.text
    v2 = enabled.json()
    assert v2["disabled"] is False and v2["rollout"] == 60 and v2["disabled_reason"] == ""


def test_a_healthy_disabled_release_is_enabled_without_confirmation(api: TestClient) -> None:
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    assert publish(api, content=bundle("one"), disabled=True).status_code == 201
    v1 = history(api)["v1"]
    assert v1["disabled_reason"] == "published disabled by admin"
    assert api.patch(f"{BASE}/releases/v1", json={"disabled": False}).status_code == 200
    assert api.patch(f"{BASE}/releases/v1", json={"disabled": True}).json()["disabled_reason"] == (
        "disabled by admin"
    )
