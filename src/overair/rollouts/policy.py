"""A rollout policy: how a release ramps through shares of a deployment's devices, and the health gates that
stop it. A value, checked when made; :mod:`overair.rollouts.decide` applies it to counts and time.

The defaults, and why (docs/design.md, "Guarded rollouts: the policy", has the long form):

- ``steps`` 1, 5, 25, 50, 100 percent: the first step exposes few devices; each later one about doubles
  the exposure or more, so a release that passed a step is judged on many more devices at the next one.
- ``min_dwell`` 12 hours per step: failures report later than successes (a device that crashes on an
  update reports it when it starts again and rolls back, two launches after the download), so a step is
  held for about two launch intervals of a typical app (6 hours); with one, the early installs of a
  release failing on 30% of devices can carry it past its first step on a fleet of 20,000. Twelve
  hours also spread a step over day and night.
- ``min_sample`` 50 install attempts per step: with ``min_failures`` 5, a release failing on one install
  in ten shows enough failures to be judged before its first step ends.
- ``confidence`` 0.95, one-sided, for every bound.
- ``max_failure_rate`` 5% (the failing threshold of :data:`overair.metrics.rules.DEFAULT_THRESHOLD`, so
  every release the gate halts is one the release list marks failing too).
- ``max_increase`` 1 percentage point over the previous release's rate.
- ``min_failures`` 5 (the same threshold's): one crash in ten installs never halts a release. A
  ``min_sample`` above 0 and below it is refused: a step could end before any gate may fail.
- ``action`` halt: no new device gets the release; devices that installed it keep it.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overair.errors import Fix
from overair.metrics.rules import DEFAULT_THRESHOLD
from overair.rollouts.errors import InvalidRolloutPolicy

DEFAULT_STEPS = (1, 5, 25, 50, 100)


class GateAction(enum.StrEnum):
    """What happens to a release when a health gate fails."""

    PAUSE = "pause"
    """Stay at the current share: devices already inside keep getting it, no step is taken."""
    HALT = "halt"
    """Disable the release: no new device gets it; devices that installed it keep it."""
    ROLL_BACK = "roll-back"
    """Republish the previous release, so devices on the failing one move back (halt when there is none)."""


def _invalid(field: str, message: str) -> InvalidRolloutPolicy:
    return InvalidRolloutPolicy(
        f"The rollout policy's {field} {message}",
        subject={"policy_field": field},
        fixes=[Fix("change-rollout-policy", {"field": field})],
    )


def _whole(field: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _invalid(field, f"must be a whole number of at least {minimum}, not {value!r}.")
    return value


def _share(field: str, value: object, what: str) -> float:
    """A rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise _invalid(
            field,
            f"must be {what}, a share from 0 up to but not including 1 (0.05 for 5%), not {value!r}.",
        )
    return float(value)


def _duration(field: str, value: object) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        duration = dt.timedelta(seconds=value)
    else:
        raise _invalid(field, f"must be a duration in seconds, not {value!r}.")
    if duration < dt.timedelta():
        raise _invalid(field, f"must be zero or more, not {duration.total_seconds():g} seconds.")
    return duration


def parse_steps(text: str) -> tuple[int, ...]:
    """Ramp steps written as a comma-separated list of percentages (``"1,5,25,50,100"``), checked as
    :class:`RolloutPolicy` checks ``steps``; :class:`InvalidRolloutPolicy` otherwise."""
    parts = [part.strip().removesuffix("%").strip() for part in text.split(",")]
    try:
        steps = tuple(int(part) for part in parts)
    except ValueError:
        raise _invalid(
            "steps",
            f'must be whole percentages separated by commas, ending at 100 (like "1,5,25,50,100"), '
            f'not "{text}".',
        ) from None
    return check_steps(steps)


def check_steps(steps: object) -> tuple[int, ...]:
    """``steps`` as a tuple if they are rising whole percentages from 1 to 100 that end at 100."""
    example = "like 1, 5, 25, 50, 100"
    if isinstance(steps, str | bytes) or not isinstance(steps, tuple | list) or not steps:
        raise _invalid("steps", f"must be a list of percentages ending at 100 ({example}), not {steps!r}.")
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100:
            raise _invalid("steps", f"must be whole percentages from 1 to 100 ({example}), not {step!r}.")
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise _invalid("steps", f"must rise from one step to the next ({example}), not {list(steps)}.")
    if steps[-1] != 100:
        raise _invalid(
            "steps",
            f"must end at 100, where the rollout completes ({example}); to hold a release at a share, "
            f"pause its rollout instead. Got {list(steps)}.",
        )
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """How a release ramps and what stops it. Every field is checked when the policy is made: a bad value
    raises :class:`InvalidRolloutPolicy` naming the field (``subject["policy_field"]``) and the fix.

    >>> RolloutPolicy().steps
    (1, 5, 25, 50, 100)
    >>> RolloutPolicy(steps=(10, 5, 100))
    Traceback (most recent call last):
    ...
    overair.rollouts.errors.InvalidRolloutPolicy: The rollout policy's steps must rise from one step to \
the next (like 1, 5, 25, 50, 100), not [10, 5, 100].
    """

    steps: tuple[int, ...] = DEFAULT_STEPS
    """Percentages of the deployment's devices, rising, ending at 100. The release starts at the first."""
    min_dwell: dt.timedelta = dt.timedelta(hours=12)
    """A step lasts at least this long before the next one."""
    min_sample: int = 50
    """A step lasts until at least this many install attempts (installed or failed) were reported during
    it; 0 waits for none."""
    confidence: float = 0.95
    """One-sided confidence of every bound the gates use, from 0.5 (the bare rate) to below 1."""
    max_failure_rate: float | None = DEFAULT_THRESHOLD.rate
    """The failure-rate gate: fails when the lower bound of the release's failure rate is above this.
    None switches the gate off."""
    max_increase: float | None = 0.01
    """The previous-release gate: fails when the lower bound of (this release's failure rate - the
    previous release's) is above this, in rate units (0.01: one percentage point). None switches it off."""
    min_failures: int = DEFAULT_THRESHOLD.min_failures
    """No gate fails before the release has at least this many failed install attempts."""
    action: GateAction = GateAction.HALT
    """What a failed gate does to the release."""
    promote_to: str | None = None
    """The deployment the release is promoted to once it has held the gates for ``promote_after`` (set on
    a Staging deployment's policy, naming Production). None: no automatic promotion."""
    promote_after: dt.timedelta | None = None
    """How long the release must hold the gates, counted from the start of its ramp, and have completed
    the ramp, before it is promoted to ``promote_to``."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise through the back door, once, here
        set_(self, "steps", check_steps(self.steps))
        set_(self, "min_dwell", _duration("min_dwell", self.min_dwell))
        set_(self, "min_sample", _whole("min_sample", self.min_sample, minimum=0))
        confidence = self.confidence
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0.5 <= confidence < 1
        ):
            raise _invalid(
                "confidence",
                f"must be from 0.5 up to but not including 1 (0.95 for 95%), not {confidence!r}.",
            )
        set_(self, "confidence", float(confidence))
        if self.max_failure_rate is not None:
            set_(
                self, "max_failure_rate", _share("max_failure_rate", self.max_failure_rate, "a failure rate")
            )
        if self.max_increase is not None:
            set_(self, "max_increase", _share("max_increase", self.max_increase, "an increase of the rate"))
        set_(self, "min_failures", _whole("min_failures", self.min_failures, minimum=1))
        if 0 < self.min_sample < self.min_failures:  # 0 is the explicit choice of steps timed by dwell alone
            raise _invalid(
                "min_sample",
                f"({self.min_sample}) is below min_failures ({self.min_failures}): a step could end "
                f"before any gate may fail. Raise min_sample to at least {self.min_failures}, or lower "
                "min_failures.",
            )
        try:
            set_(self, "action", GateAction(self.action))
        except ValueError:
            known = ", ".join(a.value for a in GateAction)
            raise _invalid("action", f'must be one of {known}, not "{self.action}".') from None
        self._check_promotion()

    def _check_promotion(self) -> None:
        if self.promote_to is None and self.promote_after is None:
            return
        if self.promote_after is None:
            raise _invalid(
                "promote_after", "must be set too when promote_to is: promotion needs both, or neither."
            )
        if self.promote_to is None:
            raise _invalid(
                "promote_to", "must be set too when promote_after is: promotion needs both, or neither."
            )
        if not isinstance(self.promote_to, str) or not self.promote_to.strip():
            raise _invalid("promote_to", f"must name a deployment, not {self.promote_to!r}.")
        object.__setattr__(self, "promote_to", self.promote_to.strip())
        object.__setattr__(self, "promote_after", _duration("promote_after", self.promote_after))

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON values (durations in seconds), as :meth:`from_json` reads it."""
        return {
            "steps": list(self.steps),
            "min_dwell": self.min_dwell.total_seconds(),
            "min_sample": self.min_sample,
            "confidence": self.confidence,
            "max_failure_rate": self.max_failure_rate,
            "max_increase": self.max_increase,
            "min_failures": self.min_failures,
            "action": self.action.value,
            "promote_to": self.promote_to,
            "promote_after": None if self.promote_after is None else self.promote_after.total_seconds(),
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        """A policy as the database keeps it: :meth:`from_json`, except that a ``min_sample`` below
        ``min_failures``, which hosts before migration 0025 accepted (and during a rolling upgrade may still
        store), is read as ``min_failures`` instead of refused."""
        values = dict(data)
        defaults = cls.__dataclass_fields__
        min_sample = values.get("min_sample", defaults["min_sample"].default)
        min_failures = values.get("min_failures", defaults["min_failures"].default)
        if isinstance(min_sample, int) and isinstance(min_failures, int) and 0 < min_sample < min_failures:
            values["min_sample"] = min_failures
        return cls.from_json(values)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        """A policy from JSON values; missing fields take their defaults, unknown ones are refused, and
        ``steps`` may also be a comma-separated string."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            known = ", ".join(cls.__dataclass_fields__)
            raise _invalid(unknown[0], f"is not a policy field: the fields are {known}.")
        values = dict(data)
        if isinstance(values.get("steps"), str):
            values["steps"] = parse_steps(values["steps"])
        elif isinstance(values.get("steps"), list):
            values["steps"] = tuple(values["steps"])
        return cls(**values)
