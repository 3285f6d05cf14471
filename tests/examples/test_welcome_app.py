"""The example app as a user drives it: `make demo`'s whole story, and a launch on a pseudo-terminal
where the user answers the update prompt."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, LiveServer, free_port

pytestmark = pytest.mark.slow
APP_DIR = ROOT / "examples" / "welcome-app"


def test_make_demo_tells_the_whole_story() -> None:
    done = subprocess.run(
        [sys.executable, str(APP_DIR / "demo.py")], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in (
        "Welcom to CoolApp",
        "An update is available that must be installed.",
        "Update is installed.",
        "Welcome to CoolApp",
        "the app crashed",
        "update v2 was never confirmed; going back to v1",
        "v2 last failed: the app did not confirm the update (notify_app_ready)",
        "That is the whole OTA story.",
    ):
        assert expected in out
    assert out.index("Welcom to CoolApp") < out.index("Welcome to CoolApp")


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    return buffer.getvalue()


def read_until(fd: int, marker: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    return seen


def test_the_user_confirms_the_update_on_a_terminal(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "server", free_port())
    try:
        api = httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {live.key}"})
        key = {
            d["name"]: d["key"] for d in api.post("/apps", json={"name": "CoolApp"}).json()["deployments"]
        }["Production"]
        release = {"target_version": "1.0.0", "build_number": 1, "mandatory": True}
        pushed = api.post(
            "/apps/CoolApp/deployments/Production/releases",
            files={"package": ("b.zip", zip_folder(APP_DIR / "bundles" / "fixed"))},
            data={"release": json.dumps(release)},
        )
        assert pushed.status_code == 201
        leader, follower = pty.openpty()
        app = subprocess.Popen(
            [
                sys.executable,
                str(APP_DIR / "welcome_app.py"),
                "--server",
                live.url,
                "--deployment-key",
                key,
                "--data-dir",
                str(tmp_path / "device"),
            ],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            close_fds=True,
        )
        os.close(follower)
        try:
            before = read_until(leader, "Confirm >")
            assert (
                "Welcom to CoolApp" in before and "An update is available that must be installed." in before
            )
            os.write(leader, b"1\n")
            after = read_until(leader, "Your fieldwork", timeout=60)
            after += read_until(leader, "-" * 40, timeout=10)
            assert "Update is installed." in after and "Welcome to CoolApp" in after
            assert app.wait(timeout=30) == 0
        finally:
            if app.poll() is None:
                app.kill()
            os.close(leader)
    finally:
        live.stop()
