"""The CodePush acquisition API byte for byte, against the reference server's captured answers
(codepush-protocol.md §1.2, §1.4, §1.5, §2.2)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from conftest import bundle, publish


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}["Production"]


@pytest.fixture
def seeded(api: TestClient, key: str) -> dict[str, dict]:
    """The spec's seeded deployment: v1 1.0.0 mandatory, v2 1.0.0, v3 ^1.0.0 at 50 %."""
    releases = {}
    for label, options in (
        ("v1", {"target_version": "1.0.0", "mandatory": True, "description": "release v1"}),
        ("v2", {"target_version": "1.0.0", "description": "release v2"}),
        ("v3", {"target_version": "^1.0.0", "rollout": 50, "description": "release v3"}),
    ):
        response = publish(api, content=bundle(label), **options)
        assert response.status_code == 201
        releases[label] = response.json()
    return releases


def download_url_of(device: TestClient, key: str, label: str) -> str:
    """The download URL overair gives for ``label`` (the reference gives its storage URL)."""
    for i in range(500):
        params = {"deployment_key": key, "app_version": "1.0.0", "client_id": f"c{i}"}
        update = device.get("/v1/update-check", params=params).json()["update"]
        if update["label"] == label:
            return str(update["download_url"])
    raise AssertionError(label)


def test_captured_answers(device: TestClient, key: str, seeded: dict[str, dict]) -> None:
    v3 = seeded["v3"]
    v3_url = download_url_of(device, key, "v3")
    legacy = device.get(f"/updateCheck?deploymentKey={key}&appVersion=1.0.0")
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json; charset=utf-8"
    assert legacy.text == (
        '{"updateInfo":{"downloadURL":"' + v3_url + '","description":"release v3","isAvailable":true,'
        '"isMandatory":true,"appVersion":"1.0.0","packageHash":"' + v3["package_hash"] + '","label":"v3",'
        '"packageSize":' + str(v3["size"]) + ',"updateAppVersion":false,"shouldRunBinaryVersion":false,'
        '"target_binary_range":"1.0.0"}}'
    )
    snake = device.get(
        f"/v0.1/public/codepush/update_check?deployment_key={key}&app_version=1.0.0&client_unique_id=abc"
        "&is_companion=false"
    )
    assert snake.text == (
        '{"update_info":{"download_url":"' + v3_url + '","description":"release v3","is_available":true,'
        '"is_mandatory":true,"app_version":"1.0.0","package_hash":"' + v3["package_hash"] + '","label":"v3",'
        '"package_size":' + str(v3["size"]) + ',"update_app_version":false,"should_run_binary_version":false,'
        '"target_binary_range":"1.0.0"}}'
    )
    newer = device.get(f"/updateCheck?deploymentKey={key}&appVersion=2.0.0").text
    assert newer == (
        '{"updateInfo":{"downloadURL":"","description":"","isAvailable":false,"isMandatory":false,'
        '"appVersion":"^1.0.0","packageHash":"","label":"","packageSize":0,"updateAppVersion":false,'
        '"shouldRunBinaryVersion":true,"target_binary_range":"^1.0.0"}}'
    )
    older = device.get(f"/updateCheck?deploymentKey={key}&appVersion=0.9.0").text
    assert older == newer.replace('"updateAppVersion":false', '"updateAppVersion":true')
    for sent in ("1.0", "1"):
        body = device.get(f"/updateCheck?deploymentKey={key}&appVersion={sent}").json()["updateInfo"]
        assert (body["appVersion"], body["target_binary_range"], body["label"]) == (sent, sent, "v3")


def test_short_versions_get_their_own_string_back_in_a_partial_rollout_too(
    device: TestClient, key: str, api: TestClient
) -> None:
    """A deliberate difference (docs/migrating-from-codepush.md §6): the reference gives "1" or "1.0" back
    only when the answer outside the rollout is that same update; here nothing is outside the rollout, so it
    would answer "1.0.0" to the devices in it, and Android's client drops an update whose appVersion is not
    its versionName. overair always gives the device's own string back."""
    publish(api, content=bundle("only"), target_version="1.0.0", rollout=50)
    for sent in ("1", "1.0"):
        for path, field in (
            (f"/updateCheck?deploymentKey={key}&appVersion={sent}&clientUniqueId=", "updateInfo"),
            (
                f"/v0.1/public/codepush/update_check?deployment_key={key}&app_version={sent}&client_unique_id=",
                "update_info",
            ),
        ):
            answers = [device.get(f"{path}device-{i}").json()[field] for i in range(40)]
            available = "isAvailable" if field == "updateInfo" else "is_available"
            version = "appVersion" if field == "updateInfo" else "app_version"
            inside = [a for a in answers if a[available]]
            outside = [a for a in answers if not a[available]]
            assert inside and outside  # both sides of the rollout are asked
            assert {(a[version], a["target_binary_range"], a["label"]) for a in inside} == {
                (sent, sent, "v1")
            }
            assert {(a[version], a["target_binary_range"]) for a in outside} == {("", "")}


def test_empty_deployment(device: TestClient, key: str) -> None:
    assert device.get(f"/updateCheck?deploymentKey={key}&appVersion=1.0.0").text == (
        '{"updateInfo":{"downloadURL":"","description":"","isAvailable":false,"isMandatory":false,'
        '"appVersion":"","packageHash":"","label":"","packageSize":0,"updateAppVersion":false,'
        '"shouldRunBinaryVersion":true,"target_binary_range":""}}'
    )


def test_label_and_hash_quirks(device: TestClient, key: str, api: TestClient) -> None:
    """§2.2: absent parameters are the string "undefined", which changes matching."""
    publish(api, content=bundle("a"), target_version="1.0.0")
    publish(api, content=bundle("b"), target_version="1.0.0", mandatory=True)
    v3 = publish(api, content=bundle("c"), target_version="1.0.0").json()
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    v2_hash = history[1]["package_hash"]
    base = f"deploymentKey={key}&appVersion=1.0.0"
    assert device.get(f"/updateCheck?{base}&packageHash=&label=").json()["updateInfo"]["isMandatory"] is True
    legacy = device.get(f"/updateCheck?{base}&packageHash={v2_hash}&label=").json()["updateInfo"]
    assert (legacy["label"], legacy["isMandatory"]) == ("v3", False)
    v01 = device.get(
        f"/v0.1/public/codepush/update_check?deployment_key={key}&app_version=1.0.0&package_hash={v2_hash}"
    )
    assert v01.json()["update_info"]["is_mandatory"] is True
    current = device.get(f"/updateCheck?{base}&packageHash={v3['package_hash']}&label=v3").json()[
        "updateInfo"
    ]
    assert current["isAvailable"] is False and current["shouldRunBinaryVersion"] is False


def test_companion_ignores_the_binary_version(device: TestClient, key: str, api: TestClient) -> None:
    publish(api, content=bundle("a"), target_version="9.9.9")
    body = device.get(f"/updateCheck?deploymentKey={key}&appVersion=1.0.0&isCompanion=true").json()
    assert body["updateInfo"]["label"] == "v1"


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("appVersion=1.0.0", 400, "valid deployment key - please check"),
        ("deploymentKey=short&appVersion=1.0.0", 400, "valid deployment key"),
        ("deploymentKey=KEY&appVersion=1.2.3.4", 400, "conforms to the semver standard"),
        ("deploymentKey=KEY&appVersion=01.2.3", 400, "conforms to the semver standard"),
        ("deploymentKey=unknown-key-123&appVersion=1.0.0", 404, "does not exist"),
    ],
)
def test_bad_update_checks(device: TestClient, key: str, query: str, status: int, text: str) -> None:
    response = device.get("/updateCheck?" + query.replace("KEY", key))
    assert response.status_code == status and text in response.text


def test_key_is_trimmed(device: TestClient, key: str) -> None:
    assert device.get(f"/updateCheck?deploymentKey=%20{key}%0A&appVersion=1.0.0").status_code == 200


def test_reports(device: TestClient, key: str, api: TestClient) -> None:
    publish(api, content=bundle("a"))
    for path in ("/reportStatus/deploy", "/v0.1/public/codepush/report_status/deploy"):
        ok = device.post(
            path,
            json={
                "deployment_key": key,
                "app_version": "1.0.0",
                "label": "v1",
                "status": "DeploymentSucceeded",
                "client_unique_id": "u",
            },
        )
        assert (ok.status_code, ok.text, ok.headers["content-type"]) == (
            200,
            "OK",
            "text/plain; charset=utf-8",
        )
    device.post(
        "/reportStatus/deploy",
        json={
            "deploymentKey": key,
            "appVersion": "1.0.0",
            "label": "v1",
            "status": "DeploymentFailed",
            "clientUniqueId": "u",
        },
    )
    binary = device.post("/reportStatus/deploy", json={"deploymentKey": key, "appVersion": "1.0.0"})
    assert binary.status_code == 200
    for path in ("/reportStatus/download", "/v0.1/public/codepush/report_status/download"):
        assert (
            device.post(path, json={"deploymentKey": key, "label": "v1", "clientUniqueId": "u"}).text == "OK"
        )
    release = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[0]
    assert (release["installs"], release["failures"], release["downloads"]) == (2, 1, 2)


@pytest.mark.parametrize(
    ("path", "body", "text"),
    [
        (
            "/reportStatus/deploy",
            {"appVersion": "1.0.0"},
            "must contain a valid appVersion and deploymentKey",
        ),
        (
            "/reportStatus/deploy",
            {"deploymentKey": "k", "appVersion": "1", "label": "v1"},
            "must contain a valid status",
        ),
        (
            "/reportStatus/deploy",
            {"deploymentKey": "k", "appVersion": "1", "label": "v1", "status": "Exploded"},
            "Invalid status: Exploded",
        ),
        ("/reportStatus/download", {"deploymentKey": "k"}, "valid deploymentKey and package label"),
    ],
)
def test_bad_reports(device: TestClient, path: str, body: dict, text: str) -> None:
    response = device.post(path, content=json.dumps(body))
    assert response.status_code == 400 and text in response.text


def test_cors_preflight(device: TestClient) -> None:
    response = device.options("/v0.1/public/codepush/update_check", headers={"Origin": "http://localhost"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://localhost"


def test_odd_report_bodies_are_refused_not_crashed(device: TestClient) -> None:
    status_list = {"deploymentKey": "k", "appVersion": "1", "label": "v1", "status": [1]}
    assert device.post("/reportStatus/deploy", json=status_list).status_code == 400
    assert device.post("/reportStatus/deploy", content=b"[" * 5000).status_code == 400
    assert device.post("/reportStatus/download", content=b"[" * 5000).status_code == 400


def test_oversized_query_values_are_refused(device: TestClient, key: str) -> None:
    response = device.get(f"/updateCheck?deploymentKey={key}&appVersion=1.0.0&label={'v' * 5000}")
    assert response.status_code == 400
