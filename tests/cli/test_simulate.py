"""`overair simulate`: real update engines against `overair serve`, launch by launch."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, free_port
from conftest import run_cli as overair
from overair.cli.simulate import Fleet, launch_device
from overair.client import UpdateEngine
from overair.selection.rollout import in_rollout

pytestmark = pytest.mark.slow


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    return live_server


@pytest.fixture
def api(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """Logged in (the CLI's config file) and the management API with the admin key; CoolApp exists."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    monkeypatch.setenv("OVERAIR_CONFIG", str(config))
    monkeypatch.delenv("OVERAIR_SERVER", raising=False)
    monkeypatch.delenv("OVERAIR_ACCESS_KEY", raising=False)
    with httpx.Client(
        base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {server.key}"}, timeout=30
    ) as client:
        assert client.post("/apps", json={"name": "CoolApp"}).status_code == 201
        yield client


def publish(api: httpx.Client, text: str, rollout: int) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", f"showWelcome({text!r});\n")
        zf.writestr("styles/main.css", "h1 { color: #333 }\n")
    response = api.post(
        "/apps/CoolApp/deployments/Production/releases",
        files={"package": ("bundle.zip", buffer.getvalue(), "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0", "rollout": rollout})},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["label"])


def metrics(api: httpx.Client) -> dict[str, dict]:
    """The production counters of each release (what `release list` and the console show)."""
    return {r["label"]: r for r in api.get("/apps/CoolApp/deployments/Production/releases").json()}


def rehearsal(api: httpx.Client) -> dict[str, dict]:
    """What the server counted of the simulated devices, per release."""
    found = api.get("/apps/CoolApp/deployments/Production/rehearsal").json()
    return {r["label"]: r for r in found["releases"]}


def untouched(api: httpx.Client) -> None:
    """No production number moved: release counters, active devices, the hourly series."""
    for label, counted in metrics(api).items():
        numbers = [counted[c] for c in ("downloads", "installs", "failures", "rollbacks")]
        assert numbers == [0, 0, 0, 0], (label, counted)
    production = api.get("/apps/CoolApp/deployments/Production/metrics").json()
    assert production["active_devices"] == {} and production["series"] == []
    assert all(r["active"] == 0 for r in production["labels"])


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = overair(capsys, "simulate", "--project-name", "CoolApp", *args)
    assert code == 0, out + err
    return out


def movement(out: str) -> list[dict[str, int]]:
    """The rows of the 'how the fleet moved' table, as {column: value}."""
    header: list[str] = []
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] == "Launch":
            header = cells
        elif header and cells and len(cells) == len(header) and cells[0].isdigit():
            rows.append(dict(zip(header, map(int, cells), strict=True)))
        elif header and rows and not cells:
            break
    return rows


def devices_in(folder: Path, server: LiveServer) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(client id, running label, failed labels) of the simulated devices kept in ``--data-dir``."""
    found = []
    with httpx.Client() as http:
        for device in sorted(folder.glob("device-*")):
            engine = UpdateEngine(
                server.url,
                "unused",
                "1.0.0",
                embedded_bundle=device / "embedded",
                data_dir=device / "data",
                http=http,
            )
            found.append((engine.client_id, engine.current_label, engine.failed_labels))
    return found


def test_a_half_rollout_moves_half_of_the_fleet(
    server: LiveServer, api: httpx.Client, capsys, tmp_path: Path
) -> None:
    assert publish(api, "Welcome", 100) == "v1"
    assert publish(api, "Welcome back", 50) == "v2"

    out = simulate(capsys, "--devices", "200", "--launches", "3", "--data-dir", str(tmp_path / "fleet"))

    rows = movement(out)
    assert [r["Launch"] for r in rows] == [1, 2, 3]
    assert rows[0]["embedded"] == 200  # the first launch runs the bundle built into the binary
    on_v2 = rows[-1]["v2"]
    assert rows[-1]["v1"] + on_v2 == 200 and rows[1]["updated"] == 200
    # a binomial(200, 0.5) stays within 35-65% except about once in 2,000 runs (40-60%: once in 200)
    assert 70 <= on_v2 <= 130, out
    assert f"After launch 3: v1 {200 - on_v2} " in out and f"v2 {on_v2} " in out
    assert sum(r["rolled back"] + r["failed checks"] for r in rows) == 0

    # exactly the devices in v2's rollout bucket run v2 (the server's rule, per client id)
    devices = devices_in(tmp_path / "fleet", server)
    assert len(devices) == 200
    for client_id, label, _ in devices:
        assert label == ("v2" if in_rollout(client_id, 50, "v2") else "v1")

    # the server counted what the devices did, as a rehearsal: the printed table is the server's, and no
    # production number moved
    counted = rehearsal(api)
    assert (counted["v2"]["downloads"], counted["v2"]["installs"]) == (on_v2, on_v2)
    assert (counted["v1"]["downloads"], counted["v1"]["installs"]) == (200 - on_v2, 200 - on_v2)
    assert (counted["v1"]["active"], counted["v2"]["active"]) == (200 - on_v2, on_v2)
    assert "Rehearsal on CoolApp / Production" in out and "50%" in out
    assert "overair simulate-cleanup" in out and "earlier rehearsals" not in out
    untouched(api)


def test_a_crashing_release_rolls_every_device_back(
    server: LiveServer, api: httpx.Client, capsys, tmp_path: Path
) -> None:
    fleet = str(tmp_path / "fleet")
    publish(api, "Welcome", 100)
    out = simulate(capsys, "--devices", "100", "--launches", "2", "--data-dir", fleet)
    assert movement(out)[-1]["v1"] == 100
    first = api.get("/apps/CoolApp/deployments/Production/rehearsal").json()["reports"]

    # v2 to everybody, but its bundle crashes: the same devices take it, crash, and go back to v1
    assert publish(api, "Welcome (broken)", 100) == "v2"
    out = simulate(capsys, "--devices", "100", "--launches", "4", "--crash-label", "v2", "--data-dir", fleet)

    rows = movement(out)
    assert [(r["v1"], r["v2"]) for r in rows] == [(100, 0), (0, 100), (100, 0), (100, 0)], out
    assert [r["rolled back"] for r in rows] == [0, 0, 100, 0]
    assert [r["updated"] for r in rows] == [0, 100, 0, 0]
    assert "After launch 4: v1 100 (100%)." in out
    assert {(label, failed) for _, label, failed in devices_in(Path(fleet), server)} == {("v1", ("v2",))}

    counted = rehearsal(api)
    assert counted["v2"]["failures"] == 100 and counted["v2"]["rollbacks"] == 100
    assert counted["v2"]["installs"] == 0 and counted["v2"]["downloads"] == 100  # never taken again
    assert counted["v1"]["installs"] == 100 and counted["v2"]["failure_rate"] == 1.0
    assert f"These numbers include {first:,} reports of earlier rehearsals on Production." in out
    untouched(api)  # v2 failed on every simulated device: its production failure rate is still 0
    assert api.get("/apps/CoolApp/deployments/Production/metrics").json()["failure_rates"]["v2"] == 0.0


def test_a_rehearsal_never_reaches_production_numbers_and_is_removed_on_request(
    server: LiveServer, api: httpx.Client, capsys, tmp_path: Path
) -> None:
    publish(api, "Welcome", 100)
    key = next(d["key"] for d in api.get("/apps/CoolApp/deployments").json() if d["name"] == "Production")
    # one real device (the engine as an app runs it, without the simulator's header) takes v1
    real = Fleet(
        tmp_path / "real",
        server=server.url,
        deployment_key=key,
        app_version="1.0.0",
        build_number=None,
        embedded_text="real",
    )
    with httpx.Client() as http:
        engine = real._device(tmp_path / "real" / "phone", http)
        assert [launch_device(engine, None).label for _ in range(2)] == ["embedded", "v1"]
    production = api.get("/apps/CoolApp/deployments/Production/metrics").json()
    assert production["active_devices"] == {"v1": 1}

    out = simulate(capsys, "--devices", "30", "--launches", "2")
    assert movement(out)[-1]["v1"] == 30 and rehearsal(api)["v1"]["active"] == 30
    assert api.get("/apps/CoolApp/deployments/Production/metrics").json() == production
    assert (metrics(api)["v1"]["downloads"], metrics(api)["v1"]["installs"]) == (1, 1)

    # the reach push-update announces counts the real device only
    bundle = tmp_path / "v2"
    bundle.mkdir()
    (bundle / "index.js").write_text("showWelcome('Welcome back');\n")
    code, out, err = overair(
        capsys,
        "release",
        "push-update",
        "--project-name",
        "CoolApp",
        "--target-version",
        "1.0.0",
        "--rollout-percentage",
        "100",
        "--bundle",
        str(bundle),
    )
    assert code == 0, out + err
    assert "Rolled out to 100% of 1 active devices on 1.0.0." in " ".join(out.split())

    # without a terminal, the cleanup asks for --yes and removes nothing
    code, out, err = overair(capsys, "simulate-cleanup", "--project-name", "CoolApp")
    assert code == 1 and "Nothing removed" in err and "--yes" in err and "30 of them running" in err
    assert rehearsal(api)["v1"]["active"] == 30

    code, out, err = overair(capsys, "simulate-cleanup", "--project-name", "CoolApp", "--yes")
    assert code == 0, out + err
    assert "Removed" in out and "30 of them running a release from CoolApp / Production" in out
    assert all(r["downloads"] == r["active"] == 0 for r in rehearsal(api).values())
    assert api.get("/apps/CoolApp/deployments/Production/metrics").json()["active_devices"] == {"v1": 1}
    assert (metrics(api)["v1"]["downloads"], metrics(api)["v1"]["installs"]) == (1, 1)

    code, out, _ = overair(capsys, "simulate-cleanup", "--project-name", "CoolApp", "--yes")
    assert code == 0 and "CoolApp / Production has no rehearsal traces: nothing to remove." in out
    code, _, err = overair(capsys, "simulate-cleanup", "--project-name", "CoolApp", "--deployment", "Prod")
    assert code == 2 and "Prod" in err and "Production" in err  # the server refused (docs/cli.md)


def cleanup_on_a_terminal(answer: bytes) -> tuple[int, str]:
    """`overair simulate-cleanup` on a pseudo-terminal, answering its question: (exit status, output)."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "overair.main", "simulate-cleanup", "--project-name", "CoolApp"]
    process = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, close_fds=True, env={**os.environ}
    )
    os.close(follower)
    seen = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "[y/N]" in seen and answer:
                os.write(leader, answer)
                answer = b""
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
        return process.wait(timeout=30), seen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


def test_the_cleanup_asks_on_a_terminal(server: LiveServer, api: httpx.Client, capsys) -> None:
    publish(api, "Welcome", 100)
    simulate(capsys, "--devices", "5", "--launches", "2")

    code, seen = cleanup_on_a_terminal(b"n\n")
    assert "Remove " in seen and "reports of simulated devices, 5 of them running a release" in seen
    assert "from CoolApp / Production? Production numbers are not touched. [y/N]" in " ".join(seen.split())
    assert code == 1 and "Nothing removed." in seen
    assert rehearsal(api)["v1"]["active"] == 5

    code, seen = cleanup_on_a_terminal(b"y\n")
    assert code == 0 and "Removed " in seen, seen
    assert rehearsal(api)["v1"]["active"] == 0


def test_names_the_app_deployment_and_label_that_do_not_exist(
    server: LiveServer, api: httpx.Client, capsys
) -> None:
    publish(api, "Welcome", 100)
    code, _, err = overair(
        capsys, "simulate", "--project-name", "NoSuchApp", "--devices", "1", "--launches", "1"
    )
    assert code == 2 and "NoSuchApp" in err
    code, _, err = overair(
        capsys,
        "simulate",
        "--project-name",
        "CoolApp",
        "--devices",
        "1",
        "--launches",
        "1",
        "--deployment",
        "Prod",
    )
    assert code == 1 and "Prod" in err and "Production" in err and "--deployment" in err
    code, _, err = overair(
        capsys,
        "simulate",
        "--project-name",
        "CoolApp",
        "--devices",
        "1",
        "--launches",
        "1",
        "--crash-label",
        "v9",
    )
    assert code == 1 and "v9" in err and "v1" in err


def test_an_unreachable_server_is_counted_never_fatal(
    server: LiveServer, api: httpx.Client, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(api, "Welcome", 100)
    dead = f"http://127.0.0.1:{free_port()}"
    opened = Fleet._device

    def offline_device(self: Fleet, folder: Path, http: httpx.Client) -> UpdateEngine:
        engine = opened(self, folder, http)
        engine.server_url = dead  # the management API answers; the devices have no network
        return engine

    monkeypatch.setattr(Fleet, "_device", offline_device)
    out = simulate(capsys, "--devices", "5", "--launches", "2")
    assert [(r["embedded"], r["failed checks"]) for r in movement(out)] == [(5, 5), (5, 5)]
    assert "10 x update check failed" in out
    assert rehearsal(api)["v1"]["downloads"] == 0


def test_updates_that_cannot_be_downloaded_are_counted(
    server: LiveServer, api: httpx.Client, capsys, tmp_path: Path
) -> None:
    publish(api, "Welcome", 100)
    for blob in (tmp_path / "server-data" / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()  # the server lost its files: every device is offered v1 and cannot get it
    out = simulate(capsys, "--devices", "4", "--launches", "2")
    assert [(r["embedded"], r["failed checks"]) for r in movement(out)] == [(4, 4), (4, 4)]
    assert "8 x v1 could not be downloaded: the manifest of v1 answered HTTP 404" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "0", "--launches", "3"], "--devices must be at least 1, not 0"),
        (["--devices", "10", "--launches", "-1"], "--launches must be at least 1, not -1"),
        (["--devices", "10", "--launches", "3", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_counts_are_refused_with_a_clear_message(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("OVERAIR_CONFIG", str(tmp_path / "config.json"))
    code, out, err = overair(capsys, "simulate", "--project-name", "CoolApp", *args)
    assert code == 1 and message in err and "e.g." in err
    assert out == ""


def test_the_policy_rehearsal_starts_from_the_deployments_policy(
    server: LiveServer, api: httpx.Client, capsys
) -> None:
    policy = {"steps": [10, 50, 100], "min_dwell": 3600, "action": "pause"}
    assert (
        api.put(
            "/apps/CoolApp/deployments/Production/rollout-policy", json={"policy": policy, "reason": "test"}
        ).status_code
        == 200
    )
    out = simulate(capsys, "--crash-rate", "30%", "--seeds", "1", "--ramp-min-sample", "20", "--json")
    rehearsed = json.loads(out)["policy"]
    assert (rehearsed["steps"], rehearsed["min_dwell"], rehearsed["action"]) == ([10, 50, 100], 3600, "pause")
    assert rehearsed["min_sample"] == 20  # the flag changes the deployment's policy for the rehearsal
    assert json.loads(out)["bad_release"]["runs"][0]["phase"] == "paused"
