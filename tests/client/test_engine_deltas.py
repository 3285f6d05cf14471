"""The engine and binary deltas, against the real server in-process: a delta is downloaded instead of the
package, applied into a new folder and verified; any problem with it falls back to the full package."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from helpers import Proxy, embedded, engine_for, folder_files, manifest_files
from starlette.testclient import TestClient

from overair.client import CheckStatus, FileSystem, UpdateEngine

JS = "".join(f"function screen{i}(props){{return render('{i}',props.title+{i})}}\n" for i in range(3000))


def bundle(js: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", js)
        zf.writestr("assets/logo.png", bytes(range(256)) * 40)
        zf.writestr("i18n/en.json", json.dumps({"welcome": "Welcome"}))
    return buffer.getvalue()


def push(api: TestClient, content: bytes) -> dict:
    response = api.post(
        "/api/v1/apps/CoolApp/deployments/Production/releases",
        files={"package": ("b.zip", content, "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0"})},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}["Production"]


@pytest.fixture
def proxy(device: TestClient) -> Proxy:
    return Proxy(device)


@pytest.fixture
def on_v1_offered_v2(api: TestClient, server, proxy: Proxy, key: str, tmp_path: Path) -> UpdateEngine:
    """A device running v1 (confirmed); the server offers v2, a one-line change, with a built delta."""
    push(api, bundle(JS))
    engine = engine_for(proxy.client(), key, tmp_path / "device", embedded(tmp_path))
    engine.start()
    first = engine.check_for_update().update
    assert first is not None and first.delta is None  # nothing to make a delta from yet
    engine.install(engine.download(first))
    engine.start()
    engine.notify_app_ready()
    push(api, bundle(JS.replace("screen2024(", "screenFixed(")))
    server.state.releases.drain()
    return engine


def test_a_delta_is_downloaded_applied_verified_and_installed(
    on_v1_offered_v2: UpdateEngine, proxy: Proxy, device: TestClient, tmp_path: Path
) -> None:
    engine = on_v1_offered_v2
    result = engine.check_for_update()
    assert result.status is CheckStatus.UPDATE and result.update is not None
    update = result.update
    assert update.delta is not None and update.delta.size < update.size / 10
    received: list[int] = []

    def count(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.startswith("/v1/blobs/") and not response.content.startswith(b'{"files"'):
            received.append(len(response.content))  # packages and deltas, not manifests
        return response

    proxy.rewrite = count
    downloaded = engine.download(update)
    assert downloaded.via_delta and downloaded.delta_failure is None
    assert received == [update.delta.size]  # the package itself was never downloaded
    engine.install(downloaded)
    folder = engine.start()
    assert engine.current_label == "v2"
    assert folder_files(folder) == manifest_files(device, update.manifest_url)
    assert list((tmp_path / "device" / "downloads").iterdir()) == []


@pytest.mark.parametrize("damage", ["bit flip in transit", "altered delta and checksum", "missing base file"])
def test_any_delta_failure_falls_back_to_the_full_package(
    on_v1_offered_v2: UpdateEngine, proxy: Proxy, device: TestClient, tmp_path: Path, damage: str
) -> None:
    engine = on_v1_offered_v2
    evil: dict[str, bytes] = {}

    def attack(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check" and damage == "altered delta and checksum":
            body = response.json()
            genuine = proxy.device.get(body["update"]["delta"]["url"]).content
            evil["delta"] = genuine[:-1] + bytes([genuine[-1] ^ 0xFF])
            body["update"]["delta"]["url"] = "http://testserver/cdn/delta"
            body["update"]["delta"]["sha256"] = hashlib.sha256(evil["delta"]).hexdigest()
            return httpx.Response(200, json=body)
        if request.url.path == "/cdn/delta":
            return httpx.Response(200, content=evil["delta"])
        if damage == "bit flip in transit" and response.content.startswith(b"OVERAIRD"):
            flipped = bytearray(response.content)
            flipped[len(flipped) // 2] ^= 0x01
            return httpx.Response(200, content=bytes(flipped))
        return response

    proxy.rewrite = attack
    if damage == "missing base file":
        current = engine.bundle_path(engine._device.state.current)
        (current / "i18n" / "en.json").unlink()
    result = engine.check_for_update()
    assert result.update is not None and result.update.delta is not None
    downloaded = engine.download(result.update)
    assert not downloaded.via_delta
    assert downloaded.delta_failure, "the reason the delta was not used is reported"
    reports = [r for r in engine._device.state.reports if r["status"] == "downloaded"]
    assert "the delta failed" in reports[-1]["reason"]
    engine.install(downloaded)
    proxy.rewrite = None
    folder = engine.start()
    assert engine.current_label == "v2"
    assert folder_files(folder) == manifest_files(device, result.update.manifest_url)


def test_a_crash_at_any_step_of_applying_a_delta_leaves_a_verified_bundle(
    on_v1_offered_v2: UpdateEngine, proxy: Proxy, device: TestClient, tmp_path: Path
) -> None:
    """Crash (the power goes) at every file-system step of downloading, applying and installing a delta;
    after the restart start() returns v1 or v2, complete and verified, and the device then updates to v2."""
    crash_at_every_step(on_v1_offered_v2, proxy, device, tmp_path)


def crash_at_every_step(engine: UpdateEngine, proxy: Proxy, device: TestClient, tmp_path: Path) -> None:
    """The crash test above, for any device on v1 that is offered v2 with a delta."""
    from test_faults import CrashingFS, InjectedCrash, caused_by

    offered = engine.check_for_update().update
    assert offered is not None and offered.delta is not None
    engine.close()
    baseline = tmp_path / "device"
    expected = {
        "v1": folder_files(engine.bundle_path(engine._device.state.current)),
        "v2": manifest_files(device, offered.manifest_url),
    }
    key, embedded_dir = engine.deployment_key, engine.embedded_bundle

    def launch(data: Path, fs: FileSystem) -> UpdateEngine:
        return engine_for(proxy.client(), key, data, embedded_dir, fs=fs)

    def update(engine: UpdateEngine) -> None:
        result = engine.check_for_update()
        assert result.update is not None
        downloaded = engine.download(result.update)
        assert downloaded.via_delta, downloaded.delta_failure
        engine.install(downloaded)

    data = tmp_path / "crashing"
    shutil.copytree(baseline, data)
    clean = CrashingFS(data)
    with launch(data, clean) as probe:
        update(probe)
    steps = len(clean.steps)
    assert steps > 10
    for n in range(1, steps + 1):
        shutil.rmtree(data)
        shutil.copytree(baseline, data)
        fs = CrashingFS(data, crash_at=n)
        with launch(data, fs) as crashing:
            try:
                update(crashing)
            except Exception as exc:
                assert caused_by(exc, InjectedCrash), exc
        with launch(data, FileSystem()) as restarted:
            folder = restarted.start()
            assert folder_files(folder) == expected[restarted.current_label or ""], f"crash at step {n}"
            restarted.notify_app_ready()
            result = restarted.check_for_update()
            if result.update is not None:
                restarted.install(restarted.download(result.update))
        with launch(data, FileSystem()) as recovered:
            folder = recovered.start()
            assert recovered.current_label == "v2", f"crash at step {n}"
            assert folder_files(folder) == expected["v2"]
