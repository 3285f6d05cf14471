"""The one definition of a release's failure rate: pure, counts in, rate out.

Which reports a failed update produces decides what may be added up without counting an update twice:

- overair's engine (``overair.client``) sends ``failed`` once for a refused update (a download or delta
  that does not verify), and ``failed`` then ``rolled_back`` for an update that was installed but never
  confirmed with ``notify_app_ready`` (the engine went back to the previous bundle). A confirmed update
  sends ``installed``.
- CodePush SDKs send ``DeploymentFailed`` for an update they rolled back, counted as ``failed``
  (``overair.protocols.codepush``), and ``DeploymentSucceeded``, counted as ``installed``; they never send
  ``rolled_back``.

So every failed update sends exactly one ``failed`` report, and ``rolled_back`` is only ever a second
report about an update already counted as failed (it says the device left the label, which moves the
active-device gauges). An install attempt ends in ``installed`` or ``failed``, never both, hence::

    failure rate = failed / (installed + failed)

Rollbacks are not added: that would count each of the engine's failed installs twice and CodePush's once.
Downloads are not attempts: a download that is never applied says nothing about the release.

:class:`ReleaseHealth` keeps the rate's two inputs (failures out of attempts), so that a statistical bound
(a Wilson interval, say) can be computed from the same numbers as the rate everyone shows.
"""

from __future__ import annotations

from dataclasses import dataclass


def failure_rate(*, installs: int, failures: int) -> float:
    """``failures / (installs + failures)``: the share of install attempts that failed; 0.0 before any.

    ``installs`` and ``failures`` are the ``installed`` and ``failed`` report counts of one release
    (``rolled_back`` reports are not counted: see the module's docstring). Raises ``ValueError`` on a
    negative count.

    >>> failure_rate(installs=9, failures=1)
    0.1
    >>> failure_rate(installs=0, failures=0)
    0.0
    """
    return ReleaseHealth(installs=installs, failures=failures).failure_rate


@dataclass(frozen=True, slots=True)
class ReleaseHealth:
    """A release's install attempts and how many of them failed, from its report counters.

    >>> health = ReleaseHealth(installs=6, failures=2)
    >>> (health.failures, health.attempts, health.failure_rate)
    (2, 8, 0.25)
    """

    installs: int
    """``installed`` reports: install attempts that succeeded."""
    failures: int
    """``failed`` reports: install attempts that failed (the rate's numerator)."""

    def __post_init__(self) -> None:
        if self.installs < 0 or self.failures < 0:
            raise ValueError(
                f"report counts cannot be negative: {self.installs} installs, {self.failures} failures"
            )

    @property
    def attempts(self) -> int:
        """Install attempts that ended either way: installs + failures (the rate's denominator)."""
        return self.installs + self.failures

    @property
    def measured(self) -> bool:
        """True once any install attempt was reported (before that the rate is 0.0 for want of data)."""
        return self.attempts > 0

    @property
    def failure_rate(self) -> float:
        """failures / attempts, 0.0 when there was no attempt yet."""
        return self.failures / self.attempts if self.attempts else 0.0


# -- when a release is failing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailureThreshold:
    """When a release counts as failing: its failure rate is above ``rate`` and at least ``min_failures``
    install attempts failed (so that one crash among the first ten installs does not mark it).

    Every deployment uses :data:`DEFAULT_THRESHOLD` today; a deployment's own threshold (the guarded
    rollouts' policy) will be one of these.

    >>> DEFAULT_THRESHOLD.failing(ReleaseHealth(installs=19, failures=31))
    True
    >>> DEFAULT_THRESHOLD.failing(ReleaseHealth(installs=9, failures=1))
    False
    """

    rate: float = 0.05
    """A failure rate above this share of install attempts is too high."""
    min_failures: int = 5
    """Fewer failures than this never make a release failing, whatever the rate."""

    def failing(self, health: ReleaseHealth) -> bool:
        """Whether a release with this ``health`` is failing: enough failures, at a rate above ``rate``."""
        return health.failures >= self.min_failures and health.failure_rate > self.rate

    def worse(self, health: ReleaseHealth, previous: ReleaseHealth | None) -> bool:
        """Whether ``health`` fails more often than the release before it did (``previous``), with enough
        failures to say so; False when the previous release has no install attempt to compare with."""
        if previous is None or not previous.measured:
            return False
        return health.failures >= self.min_failures and health.failure_rate > previous.failure_rate


DEFAULT_THRESHOLD = FailureThreshold()
"""The threshold of every deployment: failing above 5% of install attempts, with at least 5 failures."""
