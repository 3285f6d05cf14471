"""``overair simulate --crash-rate``: rehearse a guarded-rollout policy in accelerated time, on this machine.

No engine and no server: the seeded fleet simulation of :mod:`overair.rollouts.simulation` (pure, the same
decision function the server's background job runs) rolls out two releases under the policy, many times
over with different seeds:

- a bad one, which crashes on ``--crash-rate`` of the devices that launch it;
- a healthy one, failing at ``--baseline-rate`` like the release before it.

It prints how far the bad release got before the policy stopped it, and how long the healthy one took to
reach every device (in simulated time), as tables or one ``--json`` document.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overair.cli.errors import CliError
from overair.cli.output import console, emit, new_table, say
from overair.rollouts import InvalidRolloutPolicy, RolloutPolicy, Verdict
from overair.rollouts.simulation import EPOCH, Fleet, SimulationResult, simulate

MAX_DEVICES = 1_000_000
MAX_SEEDS = 1_000


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What to rehearse: the fleet, the two releases' rates, how many seeded runs."""

    crash_rate: float
    baseline_rate: float
    devices: int
    seeds: int
    launch_every: dt.timedelta


def _hours(value: dt.timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _check(rehearsal: Rehearsal) -> None:
    for flag, rate in (("--crash-rate", rehearsal.crash_rate), ("--baseline-rate", rehearsal.baseline_rate)):
        if not 0.0 <= rate <= 1.0:
            raise CliError(f"{flag} is a share of launches from 0% to 100%, not {rate:g}: e.g. {flag} 30%.")
    if not 1 <= rehearsal.devices <= MAX_DEVICES:
        raise CliError(
            f"--devices must be from 1 to {MAX_DEVICES:,}, not {rehearsal.devices}: e.g. --devices 10000."
        )
    if not 1 <= rehearsal.seeds <= MAX_SEEDS:
        raise CliError(f"--seeds must be from 1 to {MAX_SEEDS}, not {rehearsal.seeds}: e.g. --seeds 5.")
    if rehearsal.launch_every <= dt.timedelta():
        raise CliError("--launch-every must be a positive duration, e.g. 6h.")


def _bad_run(result: SimulationResult) -> dict[str, Any]:
    stopped = result.stopped
    return {
        "seed": result.seed,
        "phase": str(result.phase),
        "stopped_at_step": None if stopped is None else stopped.share,
        "stopped_after_hours": None if stopped is None else _hours(stopped.at - EPOCH),
        "reached_devices": result.reached,
        "reached_share": round(result.reached_share, 6),
        "installs": result.release.installs,
        "failures": result.release.failures,
        "reason": None if stopped is None else stopped.message,
    }


def _good_run(result: SimulationResult) -> dict[str, Any]:
    stopped = result.stopped
    return {
        "seed": result.seed,
        "phase": str(result.phase),
        "reached_100_after_hours": _hours(result.time_of(Verdict.ADVANCE, 100)),
        "completed_after_hours": _hours(result.time_of(Verdict.COMPLETE)),
        "steps": [d.share for d in result.decisions if d.verdict is Verdict.ADVANCE],
        "final_share": result.max_share,
        "elapsed_hours": _hours(result.elapsed),
        "stopped_at_step": None if stopped is None else stopped.share,
        "reason": None if stopped is None else stopped.message,
    }


def rehearse(policy: RolloutPolicy, rehearsal: Rehearsal) -> dict[str, Any]:
    """Both releases under ``policy``, once per seed: the ``--json`` document (without ``schema``)."""
    bad_fleet = Fleet(
        failure_rate=rehearsal.crash_rate,
        previous_failure_rate=rehearsal.baseline_rate,
        devices=rehearsal.devices,
        launch_every=rehearsal.launch_every,
    )
    good_fleet = Fleet(
        failure_rate=rehearsal.baseline_rate,
        previous_failure_rate=rehearsal.baseline_rate,
        devices=rehearsal.devices,
        launch_every=rehearsal.launch_every,
    )
    bad = [_bad_run(simulate(policy, bad_fleet, seed=seed)) for seed in range(rehearsal.seeds)]
    good = [_good_run(simulate(policy, good_fleet, seed=seed)) for seed in range(rehearsal.seeds)]
    completed = [r["completed_after_hours"] for r in good if r["phase"] == "completed"]
    return {
        "policy": policy.to_json(),
        "fleet": {
            "devices": rehearsal.devices,
            "launch_every_hours": _hours(rehearsal.launch_every),
            "crash_rate": rehearsal.crash_rate,
            "baseline_rate": rehearsal.baseline_rate,
            "seeds": rehearsal.seeds,
        },
        "bad_release": {
            "stopped": sum(r["stopped_at_step"] is not None for r in bad),
            "max_reached_share": max(r["reached_share"] for r in bad),
            "runs": bad,
        },
        "healthy_release": {
            "completed": len(completed),
            "median_completed_after_hours": statistics.median(completed) if completed else None,
            "runs": good,
        },
    }


def _show(document: Mapping[str, Any]) -> None:
    fleet, bad, good = document["fleet"], document["bad_release"], document["healthy_release"]
    policy = document["policy"]
    say(
        f"Policy: steps {', '.join(f'{s}%' for s in policy['steps'])}, at least "
        f"{policy['min_dwell'] / 3600:g} h and {policy['min_sample']} install attempts per step; "
        f"on a failed gate: {policy['action']}."
    )
    say(
        f"Fleet: {fleet['devices']:,} simulated devices, each launching the app every "
        f"{fleet['launch_every_hours']:g} h on average; {fleet['seeds']} seeded runs per release."
    )
    numbers = ("Seed", "Stopped at", "After", "Reached", "Of the fleet", "Failures")
    table = new_table(
        *numbers[:1],
        "Outcome",
        *numbers[1:],
        title=f"A release that crashes on {_percent(fleet['crash_rate'])} of launches",
        numeric=numbers,
    )
    for run in bad["runs"]:
        stopped = run["stopped_at_step"] is not None
        table.add_row(
            str(run["seed"]),
            run["phase"],
            f"{run['stopped_at_step']}%" if stopped else "-",
            f"{run['stopped_after_hours']:g} h" if stopped else "-",
            f"{run['reached_devices']:,}",
            _percent(run["reached_share"]),
            f"{run['failures']:,}",
        )
    console.print(table)
    say(
        f"The bad release was stopped in {bad['stopped']} of {fleet['seeds']} runs, having reached at most "
        f"{_percent(bad['max_reached_share'])} of the fleet."
    )
    if (first := bad["runs"][0])["reason"]:
        say(f"  e.g. {first['reason']}")
    times = ("Seed", "At 100% after", "Completed after")
    table = new_table(
        "Seed",
        "Outcome",
        "Steps taken",
        *times[1:],
        title=f"A healthy release ({_percent(fleet['baseline_rate'])} failures, like the one before it)",
        numeric=times,
    )
    for run in good["runs"]:
        table.add_row(
            str(run["seed"]),
            _outcome(run),
            ", ".join(f"{s}%" for s in run["steps"]) or "-",
            "-" if run["reached_100_after_hours"] is None else f"{run['reached_100_after_hours']:g} h",
            "-" if run["completed_after_hours"] is None else f"{run['completed_after_hours']:g} h",
        )
    console.print(table)
    median = good["median_completed_after_hours"]
    say(
        f"The healthy release reached every device in {good['completed']} of {fleet['seeds']} runs"
        + (f", in {median:g} h (median, simulated time)." if median is not None else ".")
    )


def _outcome(run: Mapping[str, Any]) -> str:
    """A healthy run's outcome in words."""
    if run["stopped_at_step"] is not None:
        return f"{run['phase']} at {run['stopped_at_step']}%"
    if run["phase"] == "ramping":  # the simulation gave up: a step's sample or dwell was never met
        return f"still at {run['final_share']}% after {run['elapsed_hours']:g} h"
    return str(run["phase"])


def run_rehearsal(policy_fields: Mapping[str, Any], rehearsal: Rehearsal, json_output: bool) -> None:
    """Check the inputs, rehearse, and print the result (tables, or the ``--json`` document)."""
    _check(rehearsal)
    try:
        policy = RolloutPolicy.from_json(policy_fields)
    except InvalidRolloutPolicy as exc:
        raise CliError(exc.message) from None
    document = rehearse(policy, rehearsal)
    emit(json_output, document, lambda: _show(document))
