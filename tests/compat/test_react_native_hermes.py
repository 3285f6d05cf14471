"""``push-update --react-native android`` on a project that uses Hermes: the real ``react-native bundle``
and the project's own ``hermesc`` (react-native 0.74.7); the second release is compiled against the
first's bytecode, fetched from the server, and a device on the first gets it as a small format-2 delta
that rebuilds the exact release."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import (
    ROOT,
    LiveServer,
    admin_api,
    ensure_npm_packages,
    run_cli,
    running_server,
)
from overair.packages import apply_delta, hermes, tree_manifest, verify_tree

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
BUNDLE = "CodePush/index.android.bundle"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_npm_packages(FIXTURE, "react-native")
    with running_server(tmp_path_factory.mktemp("rn-hermes")) as live:
        yield live


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The fixture app with Hermes turned on for android, as a react-native template project has it."""
    folder = tmp_path / "app"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("node_modules"))
    # Metro does not follow a linked node_modules; hard links copy it in a moment
    subprocess.run(
        ["cp", "-al", str((FIXTURE / "node_modules").resolve()), str(folder / "node_modules")], check=True
    )
    (folder / "android").mkdir()
    (folder / "android" / "gradle.properties").write_text("newArchEnabled=false\nhermesEnabled=true\n")
    return folder


def extracted(api: httpx.Client, server: LiveServer, label: str, into: Path) -> Path:
    """The release ``label``'s files, as a device that installed it has them."""
    manifest = api.get(f"/apps/HermesApp/deployments/Production/releases/{label}/manifest").json()
    for entry in manifest:
        if entry["path"].endswith("/"):
            (into / entry["path"]).mkdir(parents=True, exist_ok=True)
            continue
        target = into / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(httpx.get(f"{server.url}/v1/blobs/{entry['sha256']}").content)
    return into


def test_a_hermes_release_is_compiled_against_the_base_and_reaches_its_devices_as_a_small_delta(
    server: LiveServer, project: Path, config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    with admin_api(server) as api:
        app = api.post("/apps", json={"name": "HermesApp"}).json()
        key = {d["name"]: d["key"] for d in app["deployments"]}["Production"]
        push = ("release", "push-update", "--project-name", "HermesApp", "--target-version", "1.0.0")
        code, out, err = run_cli(capsys, *push, "--react-native", "android", "--project-dir", str(project))
        assert code == 0, out + err
        assert "Hermes bytecode 96, compiled plainly: no enabled release for 1.0.0" in out

        app_js = project / "App.js"
        app_js.write_text(app_js.read_text().replace("Welcome to CoolApp", "Welcome to CoolApp, fixed"))
        code, out, err = run_cli(
            capsys, *push, "--react-native", "android", "--project-dir", str(project), "--json"
        )
        assert code == 0, out + err
        document = json.loads(out)
        assert document["hermes"] == {
            "bytecode_version": 96,
            "base_label": "v1",
            "reason": "compiled against v1.",
        }

        for label in ("v1", "v2"):  # nothing of the compiler's is pushed with the bytecode
            manifest = api.get(f"/apps/HermesApp/deployments/Production/releases/{label}/manifest")
            assert {e["path"] for e in manifest.json() if not e["path"].endswith("/")} == {
                BUNDLE,
                "CodePush/drawable-mdpi/logo.png",
                "CodePush/overair.json",  # --project-dir: the project's descriptor
            }
        v1 = extracted(api, server, "v1", tmp_path / "v1")
        v2 = extracted(api, server, "v2", tmp_path / "v2")
        assert hermes.bytecode_version((v2 / BUNDLE).read_bytes()) == 96
        assert b"Welcome to CoolApp, fixed" in (v2 / BUNDLE).read_bytes()  # the string is in its table

        # the device on v1 is offered the format-2 delta once the server's job has built it
        params = {
            "deployment_key": key,
            "app_version": "1.0.0",
            "label": "v1",
            "package_hash": api.get("/apps/HermesApp/deployments/Production/releases/v1").json()[
                "package_hash"
            ],
            "client_id": "device-1",
        }
        update: dict = {}
        for _ in range(600):  # waits for the delta job, not for time: it ends as soon as it is built
            update = httpx.get(f"{server.url}/v1/update-check", params=params).json()["update"]
            if "delta_v2" in update:
                break
            httpx.get(f"{server.url}/v1/blobs/{'0' * 64}")  # a round trip, while the job runs
        offered = update["delta_v2"]
        assert offered["size"] < 3_400 < update["size"] / 20
        delta = httpx.get(offered["url"]).content
        apply_delta(v1, delta, tmp_path / "installed")
        verify_tree(tmp_path / "installed", tree_manifest(v2))
        with zipfile.ZipFile(io.BytesIO(httpx.get(update["download_url"]).content)) as archive:
            assert archive.read(BUNDLE) == (tmp_path / "installed" / BUNDLE).read_bytes()


def test_a_base_of_another_bytecode_version_is_not_compiled_against_and_the_reason_is_said(
    server: LiveServer, project: Path, config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A release built by an older react-native (bytecode 94 here) cannot be a base: ``-base-bytecode``
    needs the same version, so the new release is compiled plainly and the output says why."""
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    older = tmp_path / "older" / "CodePush"
    older.mkdir(parents=True)
    (older / "index.android.bundle").write_bytes(
        struct.pack("<QI20s", hermes.MAGIC, 94, b"\0" * 20) + b"\0" * 1024
    )
    with admin_api(server) as api:
        api.post("/apps", json={"name": "OlderApp"}).raise_for_status()
    push = ("release", "push-update", "--project-name", "OlderApp", "--target-version", "1.0.0")
    code, out, err = run_cli(capsys, *push, "--bundle", str(older.parent))
    assert code == 0, out + err
    code, out, err = run_cli(
        capsys, *push, "--react-native", "android", "--project-dir", str(project), "--json"
    )
    assert code == 0, out + err
    assert json.loads(out)["hermes"] == {
        "bytecode_version": 96,
        "base_label": None,
        "reason": "v1 is bytecode 94, this hermesc writes 96: compile with the base's react-native version "
        "to get small deltas.",
    }
