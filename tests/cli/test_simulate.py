"""`overair simulate`: real update engines against `overair serve`, launch by launch."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, free_port
from conftest import run_cli as overair
from overair.cli.simulate import Fleet
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
    return {r["label"]: r for r in api.get("/apps/CoolApp/deployments/Production/releases").json()}


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

    # the server counted what the devices did; the printed metrics are the server's
    counted = metrics(api)
    assert (counted["v2"]["downloads"], counted["v2"]["installs"]) == (on_v2, on_v2)
    assert (counted["v1"]["downloads"], counted["v1"]["installs"]) == (200 - on_v2, 200 - on_v2)
    assert "Server metrics of CoolApp / Production" in out and "50%" in out


def test_a_crashing_release_rolls_every_device_back(
    server: LiveServer, api: httpx.Client, capsys, tmp_path: Path
) -> None:
    fleet = str(tmp_path / "fleet")
    publish(api, "Welcome", 100)
    out = simulate(capsys, "--devices", "100", "--launches", "2", "--data-dir", fleet)
    assert movement(out)[-1]["v1"] == 100

    # v2 to everybody, but its bundle crashes: the same devices take it, crash, and go back to v1
    assert publish(api, "Welcome (broken)", 100) == "v2"
    out = simulate(capsys, "--devices", "100", "--launches", "4", "--crash-label", "v2", "--data-dir", fleet)

    rows = movement(out)
    assert [(r["v1"], r["v2"]) for r in rows] == [(100, 0), (0, 100), (100, 0), (100, 0)], out
    assert [r["rolled back"] for r in rows] == [0, 0, 100, 0]
    assert [r["updated"] for r in rows] == [0, 100, 0, 0]
    assert "After launch 4: v1 100 (100%)." in out
    assert {(label, failed) for _, label, failed in devices_in(Path(fleet), server)} == {("v1", ("v2",))}

    counted = metrics(api)
    assert counted["v2"]["failures"] == 100 and counted["v2"]["rollbacks"] == 100
    assert counted["v2"]["installs"] == 0 and counted["v2"]["downloads"] == 100  # never taken again
    assert counted["v1"]["installs"] == 100


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
    assert metrics(api)["v1"]["downloads"] == 0


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
