"""Binary deltas in the native protocol: built in the background, offered when they save enough."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import make_zip, publish
from overair.app import create_app
from overair.config import Settings
from overair.packages import apply_delta, manifest_from_json, verify_tree

JS = "".join(f"function handler{i}(event){{return dispatch('{i}',event.detail*{i})}}\n" for i in range(2500))


def app_bundle(js: str, **extra: bytes) -> bytes:
    return make_zip(
        {"CodePush/index.js": js.encode(), "CodePush/assets/logo.png": b"\x89PNG" + b"\x01" * 500, **extra}
    )


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return next(d["key"] for d in app["deployments"] if d["name"] == "Production")


def check(device: TestClient, key: str, package_hash: str = "", label: str = "") -> dict:
    response = device.get(
        "/v1/update-check",
        params={"deployment_key": key, "app_version": "1.0.0", "package_hash": package_hash, "label": label},
    )
    assert response.status_code == 200, response.text
    return response.json()


def release(api: TestClient, content: bytes) -> dict:
    response = publish(api, content=content)
    assert response.status_code == 201, response.text
    return response.json()


def unzip(content: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        zf.extractall(folder)
    return folder


def test_a_delta_is_offered_once_built_and_turns_the_base_into_the_target(
    api: TestClient, device: TestClient, server, key: str, tmp_path: Path
) -> None:
    old_content = app_bundle(JS)
    new_content = app_bundle(JS.replace("handler1234(", "handlerFixed("))
    v1 = release(api, old_content)
    v2 = release(api, new_content)
    server.state.releases.drain()

    update = check(device, key, v1["package_hash"], "v1")["update"]
    assert update["label"] == "v2"
    delta = update["delta"]
    assert delta["base_package_hash"] == v1["package_hash"]
    assert delta["size"] < update["size"] * 0.05, (delta["size"], update["size"])
    downloaded = device.get(delta["url"])
    assert downloaded.status_code == 200 and len(downloaded.content) == delta["size"]
    assert hashlib.sha256(downloaded.content).hexdigest() == delta["sha256"]
    assert delta["url"].endswith("/v1/blobs/" + delta["sha256"])

    manifest = manifest_from_json(device.get(update["manifest_url"]).content)
    out = tmp_path / "out"
    parsed = apply_delta(unzip(old_content, tmp_path / "old"), downloaded.content, out)
    verify_tree(out, manifest)
    assert parsed.target == v2["package_hash"]

    # a device on the embedded bundle, or on an unknown bundle, gets no delta
    assert "delta" not in check(device, key)["update"]
    assert "delta" not in check(device, key, "ab" * 32)["update"]


def test_no_delta_when_it_does_not_save_the_margin(
    api: TestClient, device: TestClient, server, key: str
) -> None:
    # a release that replaces nearly all its (incompressible) content: the delta saves under 20%
    v1 = release(api, app_bundle("main()", **{"CodePush/data.bin": random.Random(7).randbytes(40_000)}))
    release(api, app_bundle("main()", **{"CodePush/data.bin": random.Random(8).randbytes(40_000)}))
    server.state.releases.drain()
    update = check(device, key, v1["package_hash"], "v1")["update"]
    assert update["label"] == "v2" and "delta" not in update


def test_the_margin_is_a_setting(tmp_path: Path) -> None:
    settings = Settings(
        allowed_hosts="testserver", data_dir=tmp_path / "d", delta_min_saving=0.999, _env_file=None
    )  # type: ignore[call-arg]
    server = create_app(settings)
    admin = server.state.access_keys.ensure_initial_key()
    with TestClient(server, base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {admin.key}"
        app = client.post("/api/v1/apps", json={"name": "CoolApp"}).json()
        key = next(d["key"] for d in app["deployments"] if d["name"] == "Production")
        v1 = release(client, app_bundle(JS))
        release(client, app_bundle(JS + "//2"))
        server.state.releases.drain()
        assert "delta" not in check(client, key, v1["package_hash"], "v1")["update"]
    with pytest.raises(ValueError, match="delta_min_saving"):
        Settings(delta_min_saving=1.0, _env_file=None)  # type: ignore[call-arg]


def test_a_device_on_an_older_base_gets_the_full_package_then_a_delta_next_time(
    api: TestClient, device: TestClient, server, key: str
) -> None:
    first = release(api, app_bundle(JS))
    for n in range(2, 13):  # v2..v12: v12 gets deltas built from v2..v11 only
        release(api, app_bundle(JS + f"// release {n}\n"))
    server.state.releases.drain()
    newest = check(device, key)["update"]
    assert newest["label"] == "v12"

    from_v11 = check(device, key, release_hash(api, "v11"), "v11")["update"]
    assert "delta" in from_v11

    at_once = check(device, key, first["package_hash"], "v1")["update"]
    assert at_once["label"] == "v12" and "delta" not in at_once  # full package now, delta queued
    server.state.releases.drain()
    later = check(device, key, first["package_hash"], "v1")["update"]
    assert later["delta"]["base_package_hash"] == first["package_hash"]


def release_hash(api: TestClient, label: str) -> str:
    history = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()
    return next(r["package_hash"] for r in history if r["label"] == label)
