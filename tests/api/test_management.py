"""The management API through HTTP: apps, deployments, releases, keys, and every refusal's message."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import pytest
from starlette.testclient import TestClient

from conftest import bundle, make_zip, publish


@pytest.fixture
def coolapp(api: TestClient) -> dict:
    response = api.post("/api/v1/apps", json={"name": "CoolApp"})
    assert response.status_code == 201, response.text
    return response.json()


def problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["detail"]


def test_openapi_schema_is_published(api: TestClient) -> None:
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/apps/{app}/deployments/{deployment}/releases" in schema["paths"]


def test_app_gets_production_and_staging_with_unguessable_keys(coolapp: dict) -> None:
    names = [d["name"] for d in coolapp["deployments"]]
    assert names == ["Production", "Staging"]
    keys = [d["key"] for d in coolapp["deployments"]]
    assert len(set(keys)) == 2 and all(len(k) >= 40 for k in keys)
    assert coolapp["distribution"] == "hybrid"
    assert sorted(coolapp["platforms"]) == ["android", "ios"]


def test_app_create_list_remove(api: TestClient, coolapp: dict) -> None:
    assert [a["name"] for a in api.get("/api/v1/apps").json()] == ["CoolApp"]
    assert "already exists" in problem(api.post("/api/v1/apps", json={"name": "CoolApp"}), 409)
    assert api.delete("/api/v1/apps/CoolApp").status_code == 204
    assert 'No app named "CoolApp"' in problem(api.get("/api/v1/apps/CoolApp"), 404)


def test_store_only_distribution(api: TestClient, coolapp: dict) -> None:
    response = api.patch("/api/v1/apps/CoolApp", json={"distribution": "store-only"})
    assert response.json()["distribution"] == "store-only"
    assert "distribution" in problem(
        api.patch("/api/v1/apps/CoolApp", json={"distribution": "sometimes"}), 422
    )


def test_bad_app_names_are_refused(api: TestClient) -> None:
    assert "name" in problem(api.post("/api/v1/apps", json={"name": "../etc"}), 422)
    assert "platforms" in problem(api.post("/api/v1/apps", json={"name": "A", "platforms": ["windows"]}), 422)


def test_deployments_add_rename_remove_and_given_key(api: TestClient, coolapp: dict) -> None:
    base = "/api/v1/apps/CoolApp/deployments"
    created = api.post(base, json={"name": "Beta", "key": "migrated-key-123456"})
    assert created.status_code == 201 and created.json()["key"] == "migrated-key-123456"
    assert "already in use" in problem(
        api.post(base, json={"name": "Gamma", "key": "migrated-key-123456"}), 409
    )
    assert "already has a deployment" in problem(api.post(base, json={"name": "beta"}), 409)
    renamed = api.patch(f"{base}/Beta", json={"name": "QA"})
    assert renamed.json() == {**renamed.json(), "name": "QA", "key": "migrated-key-123456"}
    assert api.delete(f"{base}/QA").status_code == 204
    assert 'no deployment "QA"' in problem(api.get(f"{base}/QA/releases"), 404)


def test_publish_list_and_manifest(api: TestClient, coolapp: dict) -> None:
    response = publish(api, content=bundle("Welcome"), target_version="1.0.0", build_number=1, mandatory=True)
    assert response.status_code == 201, response.text
    release = response.json()
    assert release["label"] == "v1" and release["mandatory"] is True and release["rollout"] == 100
    assert release["file_count"] == 3 and release["method"] == "upload" and release["released_by"] == "admin"
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    assert [r["label"] for r in history] == ["v1"]
    manifest = api.get("/api/v1/apps/CoolApp/deployments/Production/releases/v1/manifest").json()
    assert sorted(e["path"] for e in manifest) == ["assets/logo.png", "index.js", "styles/main.css"]


def test_identical_content_for_same_target_is_refused(api: TestClient, coolapp: dict) -> None:
    assert publish(api, content=bundle("A")).status_code == 201
    detail = problem(publish(api, content=bundle("A")), 409)
    assert "identical to v1" in detail
    assert publish(api, content=bundle("A"), target_version="2.0.0").status_code == 201


def test_publishing_over_an_unfinished_rollout_is_refused(api: TestClient, coolapp: dict) -> None:
    assert publish(api, content=bundle("A"), rollout=20).status_code == 201
    refused = publish(api, content=bundle("B"))
    detail = problem(refused, 409)
    # The API names the fixes as actions; the CLI words them with its flags (tests/cli/test_cli_errors.py)
    assert "rollout in progress" in detail
    assert refused.json()["code"] == "rollout-in-progress"
    assert refused.json()["fixes"] == [
        {"action": "finish-rollout", "label": "v1", "deployment": "Production"},
        {"action": "disable-release", "label": "v1", "deployment": "Production"},
        {"action": "end-rollout-on-publish", "label": "v1", "deployment": "Production"},
    ]
    patched = api.patch(
        "/api/v1/apps/CoolApp/deployments/Production/releases", json={"label": "v1", "disabled": True}
    )
    assert patched.status_code == 200
    assert publish(api, content=bundle("B")).status_code == 201
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    # the stopped rollout keeps the share it had (enabling it again cannot reach every device at once)
    assert history[0]["rollout"] == 20 and history[0]["disabled"] is True
    assert history[0]["disabled_by"] == "admin" and history[0]["disabled_reason"] == "disabled by admin"


def test_patch_rules(api: TestClient, coolapp: dict) -> None:
    base = "/api/v1/apps/CoolApp/deployments/Production/releases"
    publish(api, content=bundle("A"), target_version="1.0.0", build_number=1, rollout=25)
    by_target = api.patch(
        base, json={"match_target_version": "1.0.0", "match_build_number": 1, "rollout": 50}
    )
    assert by_target.status_code == 200 and by_target.json()["rollout"] == 50
    assert "can only grow" in problem(api.patch(base, json={"label": "v1", "rollout": 10}), 409)
    assert "rollout" in problem(api.patch(base, json={"label": "v1", "rollout": 101}), 422)
    assert "rollout" in problem(api.patch(base, json={"label": "v1", "rollout": 0}), 422)
    assert api.patch(base, json={"label": "v1", "rollout": 100}).json()["rollout"] == 100
    assert "every device" in problem(api.patch(base, json={"label": "v1", "rollout": 60}), 409)
    assert "Nothing to change" in problem(api.patch(base, json={"label": "v1"}), 422)
    assert 'no release "v7"' in problem(api.patch(base, json={"label": "v7", "mandatory": True}), 404)
    assert "targets 2.0.0" in problem(
        api.patch(base, json={"match_target_version": "2.0.0", "mandatory": True}), 404
    )
    retarget = api.patch(f"{base}/v1", json={"target_version": "^1.0.0", "mandatory": True})
    assert retarget.json()["target_version"] == "^1.0.0" and retarget.json()["mandatory"] is True
    assert "not a valid target version" in problem(
        api.patch(f"{base}/v1", json={"target_version": "one"}), 422
    )


def test_invalid_target_and_options(api: TestClient, coolapp: dict) -> None:
    assert "not a valid target version" in problem(publish(api, target_version="latest"), 422)
    assert "rollout" in problem(publish(api, rollout=150), 422)
    assert "build_number" in problem(publish(api, build_number=-1), 422)


def test_promote_staging_to_production(api: TestClient, coolapp: dict) -> None:
    assert "no release to promote" in problem(api.post("/api/v1/apps/CoolApp/promote", json={}), 404)
    publish(api, deployment="Staging", content=bundle("S"), description="tested")
    promoted = api.post("/api/v1/apps/CoolApp/promote", json={"rollout": 40, "mandatory": True})
    assert promoted.status_code == 201, promoted.text
    body = promoted.json()
    assert (body["label"], body["deployment"], body["method"]) == ("v1", "Production", "promote")
    assert (body["origin_label"], body["origin_deployment"]) == ("v1", "Staging")
    assert body["rollout"] == 40 and body["mandatory"] is True and body["description"] == "tested"
    same = api.post("/api/v1/apps/CoolApp/promote", json={"source": "Staging", "destination": "Staging"})
    assert "two different deployments" in problem(same, 422)


def test_rollback(api: TestClient, coolapp: dict) -> None:
    base = "/api/v1/apps/CoolApp/deployments/Production"
    assert "no release to roll back" in problem(api.post(f"{base}/rollback", json={}), 404)
    publish(api, content=bundle("one"))
    assert "nothing to roll back to" in problem(api.post(f"{base}/rollback", json={}), 404)
    publish(api, content=bundle("two"))
    rolled = api.post(f"{base}/rollback", json={})
    assert rolled.status_code == 201
    history = api.get(f"{base}/releases").json()
    assert [r["label"] for r in history] == ["v1", "v2", "v3"]
    assert history[2]["package_hash"] == history[0]["package_hash"]
    assert (history[2]["method"], history[2]["origin_label"]) == ("rollback", "v1")
    assert "already has the content of v1" in problem(api.post(f"{base}/rollback", json={"label": "v1"}), 409)
    assert 'no release "v9"' in problem(api.post(f"{base}/rollback", json={"label": "v9"}), 404)


def test_unknown_names(api: TestClient, coolapp: dict) -> None:
    assert 'No app named "Nope"' in problem(publish(api, app="Nope"), 404)
    assert 'no deployment "Nope"' in problem(publish(api, deployment="Nope"), 404)


# -- bad uploads: each refused with 4xx and a message naming what is wrong ------------------------------


def raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


def symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.js")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def bomb() -> bytes:
    return raw_zip([("bomb.bin", b"\0" * (300 * 1024 * 1024 // 10))])


BAD_UPLOADS = [
    ("not a zip", b"this is not a zip file", "not a zip"),
    ("absolute path", raw_zip([("/etc/passwd", b"x")]), "/etc/passwd"),
    ("dot-dot", raw_zip([("../evil.js", b"x")]), "../evil.js"),
    ("symlink", raw_zip([(symlink_entry(), b"/etc/passwd")]), "link.js"),
    ("truncated", make_zip({"index.js": b"x" * 5000})[:-60], "truncated"),
]


@pytest.mark.parametrize(("name", "content", "named"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_bad_archives_are_refused(
    api: TestClient, coolapp: dict, name: str, content: bytes, named: str
) -> None:
    detail = problem(publish(api, content=content), 422)
    assert named in detail
    assert api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json() == []


def test_duplicate_names_are_refused(api: TestClient, coolapp: dict) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("index.js", b"a")
        zf.writestr("index.js", b"b")
    assert "index.js" in problem(publish(api, content=buffer.getvalue()), 422)


def test_too_many_entries_are_refused(tmp_path, api: TestClient, coolapp: dict) -> None:
    content = raw_zip([(f"f{i}.txt", b"") for i in range(20_001)])
    detail = problem(publish(api, content=content), 422)
    assert "20,000" in detail or "20000" in detail


def test_total_size_cap_and_bombs_are_refused(settings, tmp_path, another_database) -> None:
    from overair.app import create_app

    small = settings.model_copy(update={"max_bundle_bytes": 1024 * 1024})
    app = create_app(small)
    key = app.state.access_keys.ensure_initial_key().key
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        client.post("/api/v1/apps", json={"name": "CoolApp"})
        big = raw_zip([("big.bin", bytes(range(256)) * 8192)])
        assert "big.bin" in problem(publish(client, content=big), 422)
    other = {"data_dir": tmp_path / "other", "database_url": another_database()}
    app2 = create_app(settings.model_copy(update=other))
    key2 = app2.state.access_keys.ensure_initial_key().key
    with TestClient(app2) as client:
        client.headers["Authorization"] = f"Bearer {key2}"
        client.post("/api/v1/apps", json={"name": "CoolApp"})
        detail = problem(publish(client, content=bomb()), 422)
    assert "bomb.bin" in detail


def test_upload_over_the_size_limit_is_refused(settings) -> None:
    from overair.app import create_app

    app = create_app(settings.model_copy(update={"max_upload_bytes": 1000}))
    key = app.state.access_keys.ensure_initial_key().key
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        client.post("/api/v1/apps", json={"name": "CoolApp"})
        assert "limit" in problem(publish(client, content=bundle("x", big=os.urandom(5000))), 413)


def test_malformed_upload_requests(api: TestClient, coolapp: dict) -> None:
    url = "/api/v1/apps/CoolApp/deployments/Production/releases"
    assert "multipart/form-data" in problem(api.post(url, json={"target_version": "1.0.0"}), 422)
    no_file = api.post(
        url, data={"release": json.dumps({"target_version": "1.0.0"})}, files={"x": ("a", b"b")}
    )
    assert "`package`" in problem(no_file, 422)
    no_options = api.post(url, files={"package": ("b.zip", bundle())})
    assert "`release`" in problem(no_options, 422)
    bad_json = api.post(url, files={"package": ("b.zip", bundle())}, data={"release": "{nope"})
    assert "not JSON" in problem(bad_json, 422)


# -- access keys --------------------------------------------------------------------------------------


def test_requests_without_or_with_bad_keys_are_refused(device: TestClient, api: TestClient) -> None:
    assert "No access key" in problem(device.get("/api/v1/apps"), 401)
    bad = device.get("/api/v1/apps", headers={"Authorization": "Bearer oa_wrong"})
    assert "rejected" in problem(bad, 401)


def test_access_keys_create_list_revoke(api: TestClient, device: TestClient, server) -> None:
    created = api.post("/api/v1/access-keys", json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("oa_")
    listed = api.get("/api/v1/access-keys").json()
    assert {k["name"] for k in listed} == {"admin", "ci"}
    assert all("key" not in k for k in listed)
    assert device.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).json() == {"name": "ci"}
    assert "already exists" in problem(api.post("/api/v1/access-keys", json={"name": "ci"}), 409)
    assert api.delete("/api/v1/access-keys/ci").status_code == 204
    assert "rejected" in problem(
        device.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}), 401
    )
    assert 'No access key named "ci"' in problem(api.delete("/api/v1/access-keys/ci"), 404)


def test_only_key_hashes_are_stored(api: TestClient, server) -> None:
    import hashlib

    from sqlalchemy import text

    key = api.post("/api/v1/access-keys", json={"name": "alice"}).json()["key"]
    with server.state.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT key_hash FROM access_keys"))]
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert key not in stored


def test_unknown_route_is_a_problem(api: TestClient) -> None:
    assert "No such API route" in problem(api.get("/api/v1/nothing"), 404)


def test_huge_numbers_and_deep_json_are_refused_not_crashed(api: TestClient, coolapp: dict) -> None:
    assert "build_number" in problem(publish(api, build_number=10**20), 422)
    publish(api, content=bundle("a"))
    patch = {"label": "v1", "build_number": 10**20}
    assert "build_number" in problem(
        api.patch("/api/v1/apps/CoolApp/deployments/Production/releases", json=patch), 422
    )
    deep = api.post(
        "/api/v1/apps/CoolApp/deployments/Production/releases",
        files={"package": ("b.zip", bundle("b"))},
        data={"release": "[" * 100_000},
    )
    assert "nested too deeply" in problem(deep, 422)


def test_names_differing_only_in_case_are_refused(api: TestClient, coolapp: dict) -> None:
    content = raw_zip([("assets/Logo.png", b"a"), ("assets/logo.png", b"b")])
    assert "logo.png" in problem(publish(api, content=content), 422).lower()


def test_uploads_without_a_length_are_refused(api: TestClient, coolapp: dict) -> None:
    def chunks():
        yield b"--x\r\n"

    response = api.post(
        "/api/v1/apps/CoolApp/deployments/Production/releases",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert "Content-Length" in problem(response, 411)


def test_archives_with_folder_entries_get_a_warning_and_no_diffs(
    api: TestClient, coolapp: dict, server
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("CodePush/", b"")
        zf.writestr("CodePush/index.js", b"one")
    first = publish(api, content=buffer.getvalue())
    assert any("folder entries" in w for w in first.json()["warnings"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("CodePush/", b"")
        zf.writestr("CodePush/index.js", b"two")
    second = publish(api, content=buffer.getvalue())
    assert second.status_code == 201
    server.state.releases.drain()
    assert server.state.releases.downloads.build_diffs(2) == 0
