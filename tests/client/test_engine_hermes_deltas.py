"""The engine and Hermes bytecode deltas (format 2), against the real server in-process, on bundles of
real bytecode (react-native 0.74.7's ``hermesc``): a release compiled against the device's bytecode
(``-base-bytecode``) arrives as a small transformed delta; engines that read only format 1 are still
offered the format-1 delta; a crash at any step leaves a verified bundle."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
import test_engine_deltas
from helpers import Proxy, embedded, engine_for, folder_files, manifest_files
from starlette.testclient import TestClient
from test_engine_deltas import crash_at_every_step, push

from conftest import hermes_compile, hermes_program
from overair.client import UpdateEngine

pytestmark = pytest.mark.slow  # needs the npm react-native package (make npm-deps)

SOURCE = hermes_program(21, 1500)

key = test_engine_deltas.key  # the fixtures: an app's Production key, a proxy in front of the server
proxy = test_engine_deltas.proxy


def fixed(source: str, n: int) -> str:
    """A one-line fix that adds a new string."""
    return source.replace("function f7(a, b) {", f"function f7(a, b) {{ log('hotfix {n} applied');", 1)


def hbc_bundle(bytecode: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("CodePush/index.android.bundle", bytecode)
        zf.writestr("CodePush/assets/logo.png", bytes(range(256)) * 40)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bytecode(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """v1 plain; v2 and v3 one-line fixes of v1, each compiled against v1's bytecode."""
    work = tmp_path_factory.mktemp("hbc")
    v1 = hermes_compile(SOURCE, work / "v1")
    (work / "base.hbc").write_bytes(v1)
    return {
        "v1": v1,
        "v2": hermes_compile(fixed(SOURCE, 2), work / "v2", base=work / "base.hbc"),
        "v3": hermes_compile(fixed(SOURCE, 3), work / "v3", base=work / "base.hbc"),
    }


def on_release(proxy: Proxy, key: str, data: Path) -> UpdateEngine:
    """A device that installed and confirmed the deployment's latest release."""
    engine = engine_for(proxy.client(), key, data, embedded(data.parent))
    engine.start()
    offered = engine.check_for_update().update
    assert offered is not None
    engine.install(engine.download(offered))
    engine.start()
    engine.notify_app_ready()
    return engine


@pytest.fixture
def on_v1_offered_v2(
    api: TestClient, server, proxy: Proxy, key: str, tmp_path: Path, bytecode: dict[str, bytes]
) -> UpdateEngine:
    push(api, hbc_bundle(bytecode["v1"]))
    engine = on_release(proxy, key, tmp_path / "device")
    push(api, hbc_bundle(bytecode["v2"]))
    server.state.releases.drain()
    return engine


def test_a_base_compiled_release_arrives_as_a_small_transformed_delta(
    on_v1_offered_v2: UpdateEngine, proxy: Proxy, device: TestClient
) -> None:
    engine = on_v1_offered_v2
    answers: list[dict] = []

    def keep(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            answers.append(response.json())
        return response

    proxy.rewrite = keep
    update = engine.check_for_update().update
    assert update is not None and update.delta is not None
    offered = answers[-1]["update"]
    assert offered["delta_v2"]["url"] == update.delta.url  # this engine takes format 2
    assert offered["delta"]["size"] > offered["delta_v2"]["size"]  # format 1 stays for older engines
    assert device.get(offered["delta"]["url"]).content[8] == 1
    assert device.get(update.delta.url).content[8] == 2
    assert update.delta.size < 2_000 < update.size / 20
    downloaded = engine.download(update)
    assert downloaded.via_delta and downloaded.delta_failure is None
    engine.install(downloaded)
    folder = engine.start()
    assert engine.current_label == "v2"
    assert folder_files(folder) == manifest_files(device, update.manifest_url)


def test_a_device_on_another_base_gets_a_correct_delta_or_the_full_package(
    api: TestClient,
    server,
    proxy: Proxy,
    key: str,
    tmp_path: Path,
    device: TestClient,
    bytecode: dict[str, bytes],
) -> None:
    """v3 was compiled against v1; a device on v2 gets a (larger) delta from v2, or the full package."""
    push(api, hbc_bundle(bytecode["v1"]))
    push(api, hbc_bundle(bytecode["v2"]))
    on_v2 = on_release(proxy, key, tmp_path / "on-v2")
    push(api, hbc_bundle(bytecode["v3"]))
    server.state.releases.drain()
    update = on_v2.check_for_update().update
    assert update is not None and update.label == "v3"
    downloaded = on_v2.download(update)
    assert downloaded.delta_failure is None
    on_v2.install(downloaded)
    folder = on_v2.start()
    assert on_v2.current_label == "v3"
    assert folder_files(folder) == manifest_files(device, update.manifest_url)


def test_a_crash_at_any_step_of_applying_a_transformed_delta_leaves_a_verified_bundle(
    on_v1_offered_v2: UpdateEngine, proxy: Proxy, device: TestClient, tmp_path: Path
) -> None:
    update = on_v1_offered_v2.check_for_update().update
    assert update is not None and update.delta is not None
    assert device.get(update.delta.url).content[8] == 2  # the crash test runs on a format-2 delta
    crash_at_every_step(on_v1_offered_v2, proxy, device, tmp_path)
