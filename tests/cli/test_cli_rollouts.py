"""Guarded rollouts from the command line, against a live server (issue 17): a deployment's policy set with
flags, a push that ramps under it, a bad release halted at its first step with the reason in ``release
list`` (and its --json), and a hotfix pushed over the stopped rollout in one step.

The evaluation is the background job of the shared queue: a second host over the same database (built in
the test, as tests/api/test_jobs.py does) runs it on a clock the test moves, so nothing waits for the
live server's own schedule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, MovableClock, admin_api, running_server
from conftest import run_cli as overair
from overair.app import create_app
from overair.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path / "server") as live:
        yield live


def second_host(server: LiveServer, database_url: str, clock: MovableClock) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=server.data_dir, database_url=database_url, allowed_hosts="testserver", _env_file=None
    )


def test_a_bad_release_is_halted_at_one_percent_and_release_list_says_why(
    server: LiveServer,
    config: Path,
    database_url: str,
    clock: MovableClock,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    bundle = tmp_path / "dist"
    bundle.mkdir()
    (bundle / "index.js").write_text("one();\n")
    push = ["release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0"]
    assert overair(capsys, "app", "create", "CoolApp")[0] == 0
    assert overair(capsys, *push, "--bundle", str(bundle))[0] == 0

    code, out, err = overair(
        capsys,
        *("deployment", "set-rollout-policy", "--project-name", "CoolApp"),
        *("--ramp", "1,5,25,50,100", "--ramp-every", "12h", "--halt-on-failure-rate", "5%"),
        *("--reason", "guard Production"),
    )
    assert code == 0, err
    assert "steps 1%, 5%, 25%, 50%, 100%; at least 12 h" in out and "halt when" in out
    bad = overair(
        capsys, "deployment", "set-rollout-policy", "--project-name", "CoolApp", "--ramp-every", "soon"
    )
    assert bad[0] != 0 and "is not a duration: write it like 12h" in bad[2], bad
    # the server's refusal names a policy field; the hint names the flag that sets it
    bad = overair(
        capsys, "deployment", "set-rollout-policy", "--project-name", "CoolApp", "--min-failures", "60"
    )
    said = " ".join(bad[2].split())
    assert bad[0] != 0 and "min_sample (50) is below min_failures (60)" in said, bad
    assert "Change --ramp-min-sample and try again." in said, bad

    (bundle / "index.js").write_text("two();\n")
    code, out, err = overair(capsys, *push, "--bundle", str(bundle))
    assert code == 0, err
    assert "1% of devices" in out and "v2: ramping at 1% (step 1 of 5" in out and "next: 5% from" in out

    with admin_api(server) as api:
        key = {d["name"]: d["key"] for d in api.get("/apps/CoolApp/deployments").json()}["Production"]
        for n in range(100):
            status = "failed" if n % 10 < 3 else "installed"  # 30% of installs fail
            body = {"deployment_key": key, "label": "v2", "status": status, "client_id": f"device-{n}"}
            assert httpx.post(f"{server.url}/v1/report", json=body).status_code == 200
        api.get("/apps/CoolApp/deployments/Production/releases")  # what is read next includes them

    host = create_app(second_host(server, database_url, clock), clock=clock)
    clock.advance(60)  # the minute's reports are evaluated once it is over
    assert host.state.jobs.drain(60)
    host.state.engine.dispose()

    code, out, err = overair(capsys, "release", "list", "--project-name", "CoolApp")
    assert code == 0, err
    assert "v2: halted at 1% (step 1 of 5" in out
    assert "stopped: Halted at 1%: failure rate (lower bound)" in out and "30 failed of 100" in out
    listed = json.loads(overair(capsys, "release", "list", "--project-name", "CoolApp", "--json")[1])
    ramp = listed["releases"][0]["guarded_rollout"]
    assert (listed["releases"][0]["label"], ramp["phase"], ramp["share"]) == ("v2", "halted", 1)
    assert ramp["halt_reason"].startswith("Halted at 1%")
    assert {g["gate"]: g["fails"] for g in ramp["gates"]}["failure-rate"] is True

    # the hotfix: v2 is halted (disabled), so nothing stands in its way; it starts its own ramp
    (bundle / "index.js").write_text("three();\n")
    code, out, err = overair(capsys, *push, "--bundle", str(bundle), "--ramp", "10,100")
    assert code == 0, err
    assert "v3: ramping at 10% (step 1 of 2" in out


def test_a_push_ends_a_paused_rollout_in_one_step(
    server: LiveServer, config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    bundle = tmp_path / "dist"
    bundle.mkdir()
    push = ["release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0"]
    assert overair(capsys, "app", "create", "CoolApp")[0] == 0
    for n in range(3):
        (bundle / "index.js").write_text(f"release({n});\n")
        code, out, err = overair(
            capsys, *push, "--bundle", str(bundle), *(("--ramp", "5,100") if n == 1 else ())
        )
        if n == 2:
            assert code != 0 and "rollout in progress" in err and "--end-rollout keep" in err, err
    (bundle / "index.js").write_text("hotfix();\n")
    code, out, err = overair(
        capsys,
        *push,
        "--bundle",
        str(bundle),
        "--end-rollout",
        "disable",
        "--end-rollout-reason",
        "v2 crashes",
    )
    assert code == 0, err
    code, out, err = overair(capsys, "release", "list", "--project-name", "CoolApp")
    assert "end-for-publish (disable) by" in out and ": v2 crashes" in out
