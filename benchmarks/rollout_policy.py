"""The default guarded-rollout policy on a simulated fleet: how far a bad release gets, how long a good one
takes (issue 17), and what happens in between.

    PYTHONPATH=src .venv/bin/python benchmarks/rollout_policy.py [--seeds 20] [--devices 10000]

Pure simulation in accelerated time (``overair.rollouts.simulation``): each device launches the app every
6 hours on average, downloads the release when its rollout bucket is inside the current share, installs it
at its next launch and, if the install fails, reports the failure at the launch after. The policy is
evaluated every 5 simulated minutes. Prints:

1. a release failing on 30% of installs: the most of the fleet it reached before it was halted, over the
   seeds (issue 17: at most 2%);
2. a healthy release (0.5%, like the release before it): whether every seed went through every step to
   complete without a halt, and how long it took in simulated time;
3. a sweep of failure rates between the two: the share of seeds halted, the highest step reached.

Nothing is asserted (tests/unit/rollouts/test_rollout_simulation.py asserts the first two).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from overair.rollouts import RolloutPolicy, Verdict
from overair.rollouts.simulation import Fleet, SimulationResult, simulate


def hours(value: dt.timedelta | None) -> float:
    return float("nan") if value is None else value.total_seconds() / 3600


def runs(policy: RolloutPolicy, fleet: Fleet, seeds: int) -> list[SimulationResult]:
    return [simulate(policy, fleet, seed=seed) for seed in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()
    policy = RolloutPolicy()
    started = time.perf_counter()
    print(f"policy: {policy.to_json()}")
    print(f"fleet: {args.devices} devices, a launch every 6 h on average; {args.seeds} seeded runs each\n")

    bad = runs(policy, Fleet(failure_rate=0.30, devices=args.devices), args.seeds)
    halted = [r for r in bad if r.stopped is not None]
    worst = max(bad, key=lambda r: r.reached)
    print("1. a release failing on 30% of installs")
    print(f"   halted in {len(halted)} of {len(bad)} runs, at share {sorted({r.max_share for r in bad})}%")
    print(
        f"   reached at most {worst.reached_share:.2%} of the fleet ({worst.reached} devices, seed "
        f"{worst.seed}); median {statistics.median(r.reached_share for r in bad):.2%}"
    )
    halt_hours = [hours(r.time_of(r.stopped.verdict)) for r in halted if r.stopped is not None]
    if halt_hours:
        print(
            f"   halted after {min(halt_hours):.1f}-{max(halt_hours):.1f} h "
            f"(median {statistics.median(halt_hours):.1f} h)"
        )
    if worst.stopped is not None:
        print(f"   e.g.: {worst.stopped.message}")

    good = runs(
        policy, Fleet(failure_rate=0.005, previous_failure_rate=0.005, devices=args.devices), args.seeds
    )
    every_step = [
        r
        for r in good
        if r.stopped is None and [(d.verdict, d.share) for d in r.decisions][-1] == (Verdict.COMPLETE, 100)
    ]
    at_100 = [hours(r.time_of(Verdict.ADVANCE, 100)) for r in good]
    completed = [hours(r.time_of(Verdict.COMPLETE)) for r in good]
    print("\n2. a healthy release (0.5% failures, like the release before it)")
    print(f"   completed through every step without a halt in {len(every_step)} of {len(good)} runs")
    print(
        f"   at 100% after {min(at_100):.1f}-{max(at_100):.1f} h (median {statistics.median(at_100):.1f} h); "
        f"completed after {min(completed):.1f}-{max(completed):.1f} h "
        f"(median {statistics.median(completed):.1f} h)"
    )

    print("\n3. between the two (the previous release failing on 0.5%)")
    print("   failure rate   halted   highest step reached (median, max)   reached (median)")
    for rate in (0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.20, 1.0):
        results = runs(policy, Fleet(failure_rate=rate, devices=args.devices), args.seeds)
        stopped = sum(r.stopped is not None for r in results)
        shares = [r.max_share for r in results]
        print(
            f"   {rate:>11.0%}   {stopped:>3}/{len(results)}   "
            f"{statistics.median(shares):>21.0f}% {max(shares):>5}%"
            f"   {statistics.median(r.reached_share for r in results):>15.2%}"
        )
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
