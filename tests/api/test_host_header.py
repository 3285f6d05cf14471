"""A forged ``Host`` never reaches an answer, and update-check answers are never stored by a cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import publish
from overair.app import create_app
from overair.config import Settings

EVIL = {"Host": "evil.example"}


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    assert publish(api).status_code == 201
    return str({d["name"]: d["key"] for d in app["deployments"]}["Production"])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/update-check?deployment_key={key}&app_version=1.0.0",
        "/updateCheck?deploymentKey={key}&appVersion=1.0.0",
        "/v0.1/public/codepush/update_check?deployment_key={key}&app_version=1.0.0",
        "/api/v1/apps",
        "/apps",
        "/console/",
        "/metrics",
    ],
)
def test_an_unknown_host_is_refused_before_anything_runs(device: TestClient, key: str, path: str) -> None:
    response = device.get(path.format(key=key), headers=EVIL)
    assert response.status_code == 421
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "unknown-host"
    assert "'evil.example'" in problem["detail"] and "OVERAIR_PUBLIC_URL" in problem["detail"]
    assert "evil.example" not in response.headers.get("location", "")


def test_download_urls_come_from_an_allowed_host_or_the_public_url(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "pub",
        public_url="https://ota.example.com/",
        allowed_hosts="testserver",
        _env_file=None,
    )
    server = create_app(settings)
    with TestClient(server, base_url="http://testserver") as client:
        first = server.state.access_keys.ensure_initial_key()
        client.headers["Authorization"] = f"Bearer {first.key}"
        app = client.post("/api/v1/apps", json={"name": "CoolApp"}).json()
        assert publish(client).status_code == 201
        key = {d["name"]: d["key"] for d in app["deployments"]}["Production"]
        for host in ("testserver", "localhost:3000", "ota.example.com"):
            answer = client.get(
                "/v1/update-check",
                params={"deployment_key": key, "app_version": "1.0.0"},
                headers={"Host": host},
            ).json()
            assert answer["update"]["download_url"].startswith("https://ota.example.com/v1/blobs/")


def test_without_a_public_url_urls_name_the_allowed_host_asked(device: TestClient, key: str) -> None:
    for host in ("testserver", "localhost:3000"):
        answer = device.get(
            f"/updateCheck?deploymentKey={key}&appVersion=1.0.0", headers={"Host": host}
        ).json()["updateInfo"]
        assert answer["downloadURL"].startswith(f"http://{host}/v1/blobs/")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/update-check?deployment_key={key}&app_version=1.0.0", 200),
        ("/v1/update-check?deployment_key=unknown-key&app_version=1.0.0", 404),
        ("/v1/update-check?app_version=1.0.0", 400),
        ("/updateCheck?deploymentKey={key}&appVersion=1.0.0", 200),
        ("/v0.1/public/codepush/update_check?deployment_key={key}&app_version=1.0.0", 200),
        ("/updateCheck?deploymentKey=unknown-key&appVersion=1.0.0", 404),
        ("/updateCheck?deploymentKey={key}&appVersion=banana", 400),
    ],
)
def test_update_check_answers_are_never_stored(device: TestClient, key: str, path: str, status: int) -> None:
    response = device.get(path.format(key=key))
    assert response.status_code == status
    assert response.headers["cache-control"] == "private, no-store"


def test_other_codepush_answers_keep_the_reference_cache_header(device: TestClient, key: str) -> None:
    report = {"deploymentKey": key, "label": "v1", "clientUniqueId": "a"}
    response = device.post("/reportStatus/download", json=report)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_hosts", "https://ota.example.com", "is not a host name"),
        ("public_url", "ota.example.com", "is not a URL"),
    ],
)
def test_a_bad_host_setting_is_refused_with_its_name(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(data_dir=tmp_path, _env_file=None, **{field: value})  # type: ignore[call-arg, arg-type]
