"""``overair release push-update --react-native``: the real ``react-native bundle`` (react-native 0.74.7,
its CLI and Metro from npm) bundles tests/fixtures/rn-bundle-app, overair pushes it, and the real CodePush
SDK (code-push 4.2.3) is offered the update and downloads a zip whose bundle is the app's."""

from __future__ import annotations

import io
import json
import zipfile
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_codepush_sdk import App

from conftest import ROOT, LiveServer, admin_api, ensure_npm_packages, run_cli, running_server

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
COMPAT = Path(__file__).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(FIXTURE, "react-native")
    ensure_npm_packages(COMPAT, "code-push")
    with running_server(tmp_path_factory.mktemp("rn-bundle")) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """overair's own API, with the admin key."""
    with admin_api(server) as client:
        yield client


@pytest.fixture
def app(api: httpx.Client, server: LiveServer, config: Path) -> App:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    return App(api, server)


def _push(capsys: pytest.CaptureFixture[str], app: App, *args: str) -> tuple[int, str, str]:
    return run_cli(
        capsys, "release", "push-update", "--project-name", app.name, "--target-version", "1.0.0", *args
    )


def test_react_native_android_bundle_is_pushed_and_offered_to_the_codepush_sdk(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _push(capsys, app, "--react-native", "android", "--project-dir", str(FIXTURE))
    assert code == 0, out + err
    assert "npx --no react-native bundle --platform android --dev false --entry-file index.js" in out
    assert "Released v1" in out
    (release,) = app.history()
    manifest = app.api.get(f"/apps/{app.name}/deployments/Production/releases/v1/manifest").json()
    paths = {e["path"] for e in manifest}
    assert "CodePush/index.android.bundle" in paths
    assert "CodePush/drawable-mdpi/logo.png" in paths  # --assets-dest: android's drawable folders
    assert "CodePush/overair.json" in paths  # --project-dir: the descriptor goes in as with --bundle
    assert all(p.startswith("CodePush/") for p in paths)

    (checked,) = app.sdk("4.2.3", {"op": "check", "clientUniqueId": "device-1"})
    update = checked["update"]
    assert update["label"] == "v1" and update["packageHash"] == release["package_hash"]
    (fetched,) = app.sdk("4.2.3", {"op": "fetch", "url": update["downloadUrl"]})
    assert fetched["status"] == 200
    with zipfile.ZipFile(io.BytesIO(b64decode(fetched["base64"]))) as zf:
        assert b"Welcome to CoolApp" in zf.read("CodePush/index.android.bundle")
        assert zf.read("CodePush/drawable-mdpi/logo.png") == (FIXTURE / "logo.png").read_bytes()


def test_failed_bundle_stops_the_push(
    app: App, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "not-an-app"
    folder.mkdir()
    (folder / "index.js").write_text("console.log('no react-native here');\n")
    monkeypatch.chdir(folder)  # no --project-dir: the current folder
    code, out, err = _push(capsys, app, "--react-native", "android")
    assert "Building: npx --no react-native bundle" in out
    assert code != 0
    assert "react-native bundle command failed with exit status" in err and "nothing was pushed" in err
    assert app.history() == []


def test_unknown_platform_is_refused(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _push(capsys, app, "--react-native", "windows")
    assert code == 1 and "--react-native" in err and "windows" in err and "ios or android" in err
    assert app.history() == []


def test_bundle_or_react_native_is_required_and_not_both(
    app: App, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _push(capsys, app)
    assert code == 1 and "--bundle" in err and "--react-native" in err
    code, _, err = _push(capsys, app, "--bundle", str(tmp_path), "--react-native", "ios")
    assert code == 1 and "not both" in err
    assert app.history() == []


def test_react_native_ios_uses_the_ios_entry_and_codepush_paths(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURE)  # no --project-dir: the current folder, and no overair.json
    code, out, err = _push(capsys, app, "--react-native", "ios")
    assert code == 0, out + err
    assert "--platform ios --dev false --entry-file index.ios.js" in out
    manifest = app.api.get(f"/apps/{app.name}/deployments/Production/releases/v1/manifest").json()
    paths = {e["path"] for e in manifest}
    assert {"CodePush/main.jsbundle", "CodePush/assets/logo.png"} <= paths
    assert "CodePush/index.android.bundle" not in paths
    assert "CodePush/overair.json" not in paths
    (checked,) = app.sdk("4.2.3", {"op": "check"})
    (fetched,) = app.sdk("4.2.3", {"op": "fetch", "url": checked["update"]["downloadUrl"]})
    with zipfile.ZipFile(io.BytesIO(b64decode(fetched["base64"]))) as zf:
        assert b"Welcome to CoolApp" in zf.read("CodePush/main.jsbundle")
