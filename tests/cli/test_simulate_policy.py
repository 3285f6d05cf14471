"""`overair simulate --crash-rate` (issue 17, item 7): the guarded-rollout policy rehearsed in accelerated
time on this machine, through the CLI, with no server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import run_cli as overair


@pytest.fixture(autouse=True)
def _no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No saved login: the rehearsal needs none."""
    monkeypatch.setenv("OVERAIR_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("OVERAIR_SERVER", raising=False)
    monkeypatch.delenv("OVERAIR_ACCESS_KEY", raising=False)


def rehearse(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = overair(capsys, "simulate", *args, "--json")
    assert code == 0, out + err
    return dict(json.loads(out))


def test_a_bad_release_is_stopped_early_and_a_healthy_one_reaches_everyone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = rehearse(capsys, "--crash-rate", "30%", "--seeds", "3")
    assert document["schema"] == 1
    assert document["policy"]["steps"] == [1, 5, 25, 50, 100]  # the defaults
    assert document["fleet"] == {
        "devices": 10_000,
        "launch_every_hours": 6.0,
        "crash_rate": 0.3,
        "baseline_rate": 0.005,
        "seeds": 3,
    }
    bad = document["bad_release"]
    assert bad["stopped"] == 3 and len(bad["runs"]) == 3
    assert 0 < bad["max_reached_share"] <= 0.02  # issue 17: at most 2% of the fleet
    for run in bad["runs"]:
        assert (run["phase"], run["stopped_at_step"]) == ("halted", 1)
        assert run["reason"].startswith("Halted at 1%") and run["stopped_after_hours"] > 0
        assert run["reached_share"] == run["reached_devices"] / 10_000
    healthy = document["healthy_release"]
    assert healthy["completed"] == 3
    for run in healthy["runs"]:
        assert (run["phase"], run["steps"], run["stopped_at_step"]) == ("completed", [5, 25, 50, 100], None)
        assert run["final_share"] == 100
        # four steps of at least 12 h each before 100%, then 12 h more at 100%
        assert run["completed_after_hours"] >= run["reached_100_after_hours"] + 12 >= 60
    assert (
        healthy["median_completed_after_hours"]
        == sorted(r["completed_after_hours"] for r in healthy["runs"])[1]
    )


def test_the_tables_say_how_far_the_bad_release_got_and_how_long_the_good_one_took(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = overair(capsys, "simulate", "--crash-rate", "0.3", "--seeds", "2")
    assert code == 0, out + err
    text = re.sub(r"\s+", " ", out)
    assert "A release that crashes on 30% of launches" in text
    assert "A healthy release (0.5% failures, like the one before it)" in text
    assert "The bad release was stopped in 2 of 2 runs, having reached at most" in text
    assert "The healthy release reached every device in 2 of 2 runs, in" in text
    assert "Policy: steps 1%, 5%, 25%, 50%, 100%, at least 12 h and 50 install attempts per step" in text
    rows = [line for line in out.splitlines() if re.match(r"^│\s+\d+ │", line)]
    assert len(rows) == 4  # two seeds per release
    assert all("halted" in row and "1%" in row for row in rows[:2])
    assert all("completed" in row and "5%, 25%, 50%, 100%" in row for row in rows[2:])


def test_the_policy_flags_change_what_is_rehearsed(capsys: pytest.CaptureFixture[str]) -> None:
    paused = rehearse(
        capsys,
        "--crash-rate",
        "30%",
        "--devices",
        "2000",
        "--seeds",
        "1",
        "--ramp",
        "10,100",
        "--ramp-every",
        "1h",
        "--on-failure",
        "pause",
        "--baseline-rate",
        "1%",
        "--launch-every",
        "2h",
    )
    assert paused["policy"]["steps"] == [10, 100] and paused["policy"]["min_dwell"] == 3600
    assert (paused["fleet"]["baseline_rate"], paused["fleet"]["launch_every_hours"]) == (0.01, 2.0)
    [bad] = paused["bad_release"]["runs"]
    assert (bad["phase"], bad["stopped_at_step"]) == ("paused", 10)
    [good] = paused["healthy_release"]["runs"]
    assert good["steps"] == [100] and good["phase"] == "completed"
    # a crash rate no gate notices: it goes all the way (the policy's limits are what they are)
    slight = rehearse(capsys, "--crash-rate", "0.5%", "--seeds", "1")
    assert slight["bad_release"]["stopped"] == 0
    assert slight["bad_release"]["runs"][0]["phase"] == "completed"


def test_a_fleet_too_small_for_the_policy_shows_where_it_got_stuck(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = overair(capsys, "simulate", "--crash-rate", "30%", "--devices", "1000", "--seeds", "1")
    assert code == 0, out + err
    text = re.sub(r"\s+", " ", out)
    # 1% of 1,000 devices never makes the default 50 install attempts a step needs
    assert "still at 1% after 720 h" in text
    assert "The healthy release reached every device in 0 of 1 runs." in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crash-rate", "lots"], '"lots" is not a rate: write it like 5% or 0.05.'),
        (["--crash-rate", "150%"], "--crash-rate is a share of launches from 0% to 100%, not 1.5"),
        (["--crash-rate", "30%", "--baseline-rate", "-1%"], "--baseline-rate is a share of launches"),
        (["--crash-rate", "30%", "--devices", "0"], "--devices must be from 1 to 1,000,000, not 0"),
        (["--crash-rate", "30%", "--seeds", "0"], "--seeds must be from 1 to 1000, not 0"),
        (["--crash-rate", "30%", "--launch-every", "0"], "--launch-every must be a positive duration"),
        (["--crash-rate", "30%", "--launch-every", "soon"], '"soon" is not a duration'),
        (
            ["--crash-rate", "30%", "--ramp", "10,5,100"],
            "The rollout policy's steps must rise from one step to the next",
        ),
        (["--devices", "10"], "Give --project-name, --launches: e.g. overair simulate --project-name"),
        (["--project-name", "CoolApp", "--devices", "1", "--launches", "1", "--json"], "--json goes with"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    code, _out, err = overair(capsys, "simulate", *args)
    assert code in (1, 2) and message in re.sub(r"[\s│╭╰─╮╯]+", " ", err), err
