"""A seeded fleet simulation of a guarded rollout, in accelerated time: pure, no server, no clock.

It answers "how far does a bad release get before the policy stops it, and how long does a good one take
to reach everyone" for a policy, a fleet and a failure rate, in well under a second per run. (``overair
simulate`` rehearses on real engines against a real server instead, to check the machinery; this checks
the policy's numbers, on fleets of any size.)

The model follows what overair's update engine does on a device:

- Each device launches the app at random times (a Poisson process, ``launch_every`` apart on average).
  At each launch it first applies an update it downloaded earlier, then checks for updates.
- A check is offered the release when the rollout is on and the device's rollout bucket for the release's
  label is below the current share: the server's bucketing (:func:`overair.selection.in_rollout`). The
  device downloads it, to be installed at its next launch.
- The install fails on a device with the release's failure probability (drawn once per device). A
  successful install reports ``installed`` at that launch; a failed one crashes, and the device reports
  ``failed`` at the launch after, when the engine goes back to the previous bundle; it never takes the
  release again. So, as in the field, failures report a launch later than successes.
- The policy is evaluated every ``evaluate_every`` on the reports received so far, and its verdicts are
  carried out at once: a step raises the share, halt and roll back stop offering the release, pause keeps
  the share. The simulation ends when the rollout completes, stops, or ``give_up_after`` has passed.

The previous release's counts are those of the fleet having installed it at its own failure rate.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from dataclasses import dataclass, field

from overair.metrics.rules import ReleaseHealth
from overair.rollouts.decide import Decision, Phase, RolloutCounts, RolloutState, Verdict, decide
from overair.rollouts.policy import RolloutPolicy
from overair.selection import RolloutHash, rollout_bucket

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Simulated time starts here (the release is published)."""

# a device's progress with the release
_WAITING, _DOWNLOADED, _CRASHING, _INSTALLED, _FAILED = range(5)


@dataclass(frozen=True, slots=True)
class Fleet:
    """The simulated devices and the release they are offered."""

    failure_rate: float
    """The share of devices on which installing the release fails."""
    devices: int = 10_000
    previous_failure_rate: float = 0.005
    """The previous release's failure rate, over one install attempt per device."""
    launch_every: dt.timedelta = dt.timedelta(hours=6)
    """Mean time between two launches of the app on a device."""
    label: str = "v2"
    """The release's label: the devices' rollout buckets depend on it, as on the server."""
    rollout_hash: RolloutHash = RolloutHash.NATIVE
    """How devices are placed in buckets: overair's own protocol, or CodePush clients'."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0 or not 0.0 <= self.previous_failure_rate <= 1.0:
            raise ValueError("failure rates are shares from 0 to 1")
        if self.devices < 1 or self.launch_every <= dt.timedelta():
            raise ValueError("a fleet has at least one device, launching now and then")


@dataclass(slots=True)
class SimulationResult:
    """How one simulated rollout went."""

    seed: int
    devices: int
    phase: Phase
    """Where the rollout ended (ramping: it ran out of time)."""
    decisions: list[Decision] = field(default_factory=list)
    """Every decision that acted (no stays), in order."""
    reached_devices: list[int] = field(default_factory=list)
    """The devices that got the release (downloaded it), by number (see :func:`client_id`)."""
    max_share: int = 0
    """The highest share the rollout was at."""
    elapsed: dt.timedelta = dt.timedelta()
    """Simulated time from publishing to the end of the simulation."""
    release: ReleaseHealth = field(default_factory=lambda: ReleaseHealth(installs=0, failures=0))
    """The release's reports at the end."""

    @property
    def reached(self) -> int:
        """How many devices got the release."""
        return len(self.reached_devices)

    @property
    def reached_share(self) -> float:
        """The share of the fleet the release reached (0-1)."""
        return self.reached / self.devices

    @property
    def stopped(self) -> Decision | None:
        """The decision that paused, halted or rolled back the release, if one did."""
        for decision in self.decisions:
            if decision.verdict in (Verdict.PAUSE, Verdict.HALT, Verdict.ROLL_BACK):
                return decision
        return None

    def time_of(self, verdict: Verdict, share: int | None = None) -> dt.timedelta | None:
        """Simulated time from publishing to the first decision ``verdict`` (at ``share``, if given)."""
        for decision in self.decisions:
            if decision.verdict is verdict and (share is None or decision.share == share):
                return decision.at - EPOCH
        return None


def client_id(seed: int, device: int) -> str:
    """The client id of simulated device number ``device`` in the run seeded ``seed``."""
    return f"sim-{seed}-{device}"


def _previous_health(fleet: Fleet, rng: random.Random) -> ReleaseHealth:
    failures = sum(rng.random() < fleet.previous_failure_rate for _ in range(fleet.devices))
    return ReleaseHealth(installs=fleet.devices - failures, failures=failures)


def simulate(
    policy: RolloutPolicy,
    fleet: Fleet,
    *,
    seed: int,
    evaluate_every: dt.timedelta = dt.timedelta(minutes=5),
    give_up_after: dt.timedelta = dt.timedelta(days=30),
) -> SimulationResult:
    """Roll ``fleet``'s release out under ``policy``, seeded by ``seed`` (same seed, same run)."""
    rng = random.Random(seed)
    n = fleet.devices
    buckets = [rollout_bucket(client_id(seed, i), fleet.label, fleet.rollout_hash) for i in range(n)]
    fails = [rng.random() < fleet.failure_rate for _ in range(n)]
    previous = _previous_health(fleet, rng)
    rate = 1.0 / fleet.launch_every.total_seconds()
    progress = [_WAITING] * n
    # Only devices inside the share are followed: launches are memoryless, so a device that comes inside
    # when the share rises may start its launches then, which spares following the rest of the fleet.
    by_bucket = sorted(range(n), key=buckets.__getitem__)
    followed = 0
    launches: list[tuple[float, int]] = []

    def follow(share: int, since: float) -> None:
        nonlocal followed
        while followed < n and buckets[by_bucket[followed]] < share:
            heapq.heappush(launches, (since + rng.expovariate(rate), by_bucket[followed]))
            followed += 1

    state = RolloutState.start(policy, EPOCH)
    result = SimulationResult(seed=seed, devices=n, phase=state.phase, max_share=state.share)
    follow(state.share, 0.0)
    installs = failures = 0
    step = evaluate_every.total_seconds()
    end = give_up_after.total_seconds()
    tick = step
    while tick <= end:
        while launches and launches[0][0] < tick:
            when, i = heapq.heappop(launches)
            mine = progress[i]
            if mine == _CRASHING:
                progress[i] = _FAILED
                failures += 1
                continue  # back on the previous release for good: nothing more to follow
            if mine == _DOWNLOADED:
                if fails[i]:
                    progress[i] = _CRASHING
                else:
                    progress[i] = _INSTALLED
                    installs += 1
                    continue
            else:  # inside the share, and the rollout is on (it stops at anything but ramping)
                progress[i] = _DOWNLOADED
                result.reached_devices.append(i)
            heapq.heappush(launches, (when + rng.expovariate(rate), i))
        now = EPOCH + dt.timedelta(seconds=tick)
        health = ReleaseHealth(installs=installs, failures=failures)
        decision = decide(policy, state, RolloutCounts(health, previous), now)
        if decision.acts:
            result.decisions.append(decision)
            state = state.after(decision)
            result.max_share = max(result.max_share, state.share)
            follow(state.share, tick)
        if state.phase is not Phase.RAMPING:
            break
        tick += step
    result.phase = state.phase
    result.elapsed = dt.timedelta(seconds=min(tick, end))
    result.release = ReleaseHealth(installs=installs, failures=failures)
    return result
