"""The native device API: update checks, downloads and reports, through HTTP."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from starlette.testclient import TestClient

from conftest import bundle, publish


@pytest.fixture
def keys(api: TestClient) -> dict[str, str]:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}


def check(device: TestClient, key: str, **params: object) -> dict:
    params.setdefault("app_version", "1.0.0")
    response = device.get("/v1/update-check", params={"deployment_key": key, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_no_release_runs_embedded(device: TestClient, keys: dict[str, str]) -> None:
    assert check(device, keys["Production"]) == {
        "status": "run_embedded",
        "update": None,
        "store_version": None,
        "attention": False,
        "message": None,
    }


def test_update_answer_and_download(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    content = bundle("Welcome")
    publish(api, content=content, mandatory=True, description="fix typo", build_number=1)
    answer = check(device, keys["Production"], build_number=1, client_id="d1")
    assert answer["status"] == "update"
    update = answer["update"]
    assert update["label"] == "v1" and update["mandatory"] is True and update["description"] == "fix typo"
    assert update["size"] == len(content)
    downloaded = device.get(update["download_url"])
    assert downloaded.status_code == 200
    assert downloaded.content == content
    assert downloaded.headers["content-length"] == str(len(content))
    assert "content-encoding" not in downloaded.headers
    assert downloaded.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    manifest = device.get(update["manifest_url"]).json()
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        expected = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == expected
    again = check(device, keys["Production"], build_number=1, label="v1", package_hash=update["package_hash"])
    assert again["status"] == "no_update"


def test_range_requests_resume_downloads(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    content = bundle("Range", big=bytes(range(256)) * 400)
    publish(api, content=content)
    url = check(device, keys["Production"])["update"]["download_url"]
    part = device.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.content == content[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(content) - 1}/{len(content)}"
    assert part.headers["content-length"] == str(len(content) - 100)
    suffix = device.get(url, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == content[-10:]
    middle = device.get(url, headers={"Range": "bytes=5-9"})
    assert middle.content == content[5:10]
    beyond = device.get(url, headers={"Range": f"bytes={len(content)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(content)}"
    etag = part.headers["etag"]
    assert device.get(url, headers={"If-None-Match": etag}).status_code == 304
    stale = device.get(url, headers={"Range": "bytes=100-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == content
    head = device.head(url)
    assert (
        head.status_code == 200
        and head.headers["content-length"] == str(len(content))
        and head.content == b""
    )


def test_missing_blob_and_bad_digest(device: TestClient) -> None:
    assert device.get("/v1/blobs/" + "0" * 64).status_code == 404
    assert device.get("/v1/blobs/not-a-digest").status_code == 404


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "deployment_key is missing"),
        ({"deployment_key": "nope", "app_version": "1.0.0"}, 404, "Unknown deployment key"),
        ({"deployment_key": "K", "app_version": "one"}, 400, "app_version"),
        ({"deployment_key": "K", "app_version": "1.0.0", "build_number": "x"}, 400, "build_number"),
    ],
)
def test_bad_update_checks(
    device: TestClient, keys: dict[str, str], params: dict, status: int, message: str
) -> None:
    if params.get("deployment_key") == "K":
        params = {**params, "deployment_key": keys["Production"]}
    response = device.get("/v1/update-check", params=params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_reports_are_counted(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    publish(api, content=bundle("A"))
    key = keys["Production"]
    for status in ("downloaded", "installed", "installed", "failed", "rolled_back"):
        response = device.post("/v1/report", json={"deployment_key": key, "label": "v1", "status": status})
        assert response.status_code == 200, response.text
    release = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[0]
    assert (release["downloads"], release["installs"], release["failures"], release["rollbacks"]) == (
        1,
        2,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{nope", 400, "Invalid report"),
        (b'{"deployment_key": "K", "label": "v1", "status": "exploded"}', 400, "status"),
        (b'{"deployment_key": "K", "label": "v9", "status": "installed"}', 404, 'no release "v9"'),
        (b'{"deployment_key": "nope", "label": "v1", "status": "installed"}', 404, "Unknown deployment key"),
        (b"x" * 20_000, 413, "at most"),
    ],
)
def test_bad_reports(
    api, device: TestClient, keys: dict[str, str], body: bytes, status: int, message: str
) -> None:
    publish(api, content=bundle("A"))
    response = device.post("/v1/report", content=body.replace(b'"K"', f'"{keys["Production"]}"'.encode()))
    assert response.status_code == status
    assert message in response.json()["error"]


def test_changes_reach_devices_at_once(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    """The cache rechecks only every 60 s here: each change must drop it by itself."""
    key = keys["Production"]
    assert check(device, key)["status"] == "run_embedded"  # fills the cache
    publish(api, content=bundle("A"))
    assert check(device, key)["update"]["label"] == "v1"
    disable = {"label": "v1", "disabled": True}
    assert api.patch("/api/v1/apps/CoolApp/deployments/Production/releases", json=disable).status_code == 200
    assert check(device, key)["status"] == "run_embedded"
    enable = {"label": "v1", "disabled": False}
    assert api.patch("/api/v1/apps/CoolApp/deployments/Production/releases", json=enable).status_code == 200
    assert check(device, key)["update"]["label"] == "v1"
    assert api.patch("/api/v1/apps/CoolApp", json={"distribution": "store-only"}).status_code == 200
    assert check(device, key)["status"] == "run_embedded"


def test_change_by_another_worker_is_seen_through_the_generation(settings, keys, api, device, server) -> None:
    """A second app on the same database stands for another worker process."""
    from overair.app import create_app

    key = keys["Production"]
    other = create_app(settings.model_copy(update={"cache_recheck_seconds": 0.0}))
    with TestClient(other) as other_device:
        assert check(other_device, key)["status"] == "run_embedded"
        publish(api, content=bundle("A"))  # changed through the first app only
        assert check(other_device, key)["update"]["label"] == "v1"


def test_store_update_required(api: TestClient, device: TestClient, keys: dict[str, str]) -> None:
    publish(api, content=bundle("A"), target_version="2.0.0")
    answer = check(device, keys["Production"], app_version="1.0.0")
    assert answer["status"] == "store_update_required" and answer["update"] is None
    assert answer["store_version"] == "2.0.0" and answer["attention"] is True
    assert "available in the store" in answer["message"]


def test_failed_labels_are_not_offered_again(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    publish(api, content=bundle("A"))
    publish(api, content=bundle("B"))
    v1 = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[0]
    answer = check(device, keys["Production"], label="v1", package_hash=v1["package_hash"], failed="v2")
    assert answer["status"] == "no_update"


def test_rolling_back_a_partial_rollout_never_sends_it_to_everybody(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    publish(api, content=bundle("good"))
    publish(api, content=bundle("bad"), rollout=10)
    assert api.post("/api/v1/apps/CoolApp/deployments/Production/rollback", json={}).status_code == 201
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    assert (history[1]["label"], history[1]["disabled"]) == ("v2", True)
    patched = api.patch(
        "/api/v1/apps/CoolApp/deployments/Production/releases", json={"label": "v3", "disabled": True}
    )
    assert patched.status_code == 200
    offered = {check(device, keys["Production"], client_id=f"d{i}")["update"]["label"] for i in range(200)}
    assert offered == {"v1"}


def test_devices_without_a_client_id_stay_outside_rollouts(
    api: TestClient, device: TestClient, keys: dict[str, str]
) -> None:
    publish(api, content=bundle("one"))
    publish(api, content=bundle("two"), rollout=99)
    assert check(device, keys["Production"])["update"]["label"] == "v1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"app_version": "1" * 200}, "app_version is too long"),
        ({"label": "v" * 5000}, "label is too long"),
        ({"package_hash": "f" * 65}, "package_hash is too long"),
        ({"failed": "v1," * 1000}, "failed is too long"),
        ({"build_number": "\u00b2"}, "build_number must be a whole number"),
        ({"build_number": "9" * 5000}, "build_number is too long"),
    ],
)
def test_oversized_or_odd_query_values_are_refused(
    device: TestClient, keys: dict[str, str], params: dict, message: str
) -> None:
    query = {"deployment_key": keys["Production"], "app_version": "1.0.0", **params}
    response = device.get("/v1/update-check", params=query)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_change_during_a_snapshot_read_is_not_cached_stale(api, device, keys, server) -> None:
    """A release change that commits while the cache reads a deployment must not leave the old state."""
    key = keys["Production"]
    publish(api, content=bundle("A"))
    service = server.state.releases.snapshots
    cache = server.state.device_cache
    original = service.device_snapshot
    calls = []

    def racing(deployment_key: str):
        snapshot = original(deployment_key)
        if not calls:  # the first read finishes just after a change was committed
            api.patch(
                "/api/v1/apps/CoolApp/deployments/Production/releases", json={"label": "v1", "disabled": True}
            )
        calls.append(snapshot)
        return snapshot

    service.device_snapshot = racing
    try:
        assert check(device, key)["status"] == "run_embedded"
    finally:
        service.device_snapshot = original
    assert len(calls) == 2 and cache is not None
