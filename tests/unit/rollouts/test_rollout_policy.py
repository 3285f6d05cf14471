"""A rollout policy's values are checked when it is made (overair.rollouts.policy): every bad value is an
InvalidRolloutPolicy naming the field and saying what a good one is."""

from __future__ import annotations

import datetime as dt
import doctest
from types import ModuleType
from typing import Any

import pytest

from overair.errors import ErrorKind, Invalid
from overair.metrics.rules import DEFAULT_THRESHOLD
from overair.rollouts import GateAction, InvalidRolloutPolicy, RolloutPolicy, parse_steps
from overair.rollouts import bounds as bounds_module
from overair.rollouts import policy as policy_module

HOUR = dt.timedelta(hours=1)


def test_the_defaults() -> None:
    policy = RolloutPolicy()
    assert policy.steps == (1, 5, 25, 50, 100)
    assert policy.min_dwell == 12 * HOUR
    assert policy.min_sample == 50
    assert policy.confidence == 0.95
    assert policy.max_failure_rate == DEFAULT_THRESHOLD.rate == 0.05
    assert policy.max_increase == 0.01
    assert policy.min_failures == DEFAULT_THRESHOLD.min_failures == 5
    assert policy.action is GateAction.HALT
    assert policy.promote_to is None and policy.promote_after is None


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"steps": ()}, "steps", "list of percentages ending at 100"),
        ({"steps": "1,5,100"}, "steps", "list of percentages"),
        ({"steps": (0, 50, 100)}, "steps", "from 1 to 100 (like 1, 5, 25, 50, 100), not 0."),
        ({"steps": (1, 101)}, "steps", "not 101."),
        ({"steps": (1, 2.5, 100)}, "steps", "not 2.5"),
        ({"steps": (True, 100)}, "steps", "not True"),
        ({"steps": (5, 5, 100)}, "steps", "must rise from one step to the next"),
        ({"steps": (50, 10, 100)}, "steps", "must rise"),
        ({"steps": (1, 5, 50)}, "steps", "must end at 100"),
        ({"min_dwell": -HOUR}, "min_dwell", "zero or more, not -3600 seconds"),
        ({"min_dwell": "1h"}, "min_dwell", "a duration in seconds"),
        ({"min_dwell": float("nan")}, "min_dwell", "a duration in seconds"),
        ({"min_sample": -1}, "min_sample", "at least 0, not -1"),
        ({"min_sample": 2.5}, "min_sample", "whole number"),
        ({"confidence": 1.0}, "confidence", "up to but not including 1 (0.95 for 95%), not 1.0"),
        ({"confidence": 95}, "confidence", "from 0.5"),
        ({"confidence": 0.4}, "confidence", "from 0.5"),
        ({"max_failure_rate": 5}, "max_failure_rate", "0.05 for 5%"),
        ({"max_failure_rate": -0.1}, "max_failure_rate", "from 0 up to"),
        ({"max_increase": 1.0}, "max_increase", "from 0 up to but not including 1"),
        ({"min_failures": 0}, "min_failures", "at least 1, not 0"),
        # a step could end on 3 install attempts, before any gate may fail: the trap a small fleet falls in
        ({"min_sample": 3}, "min_sample", "below min_failures (5): a step could end before any gate"),
        ({"min_sample": 4, "min_failures": 6}, "min_sample", "Raise min_sample to at least 6"),
        ({"action": "explode"}, "action", "one of pause, halt, roll-back"),
        ({"promote_to": "Production"}, "promote_after", "promotion needs both"),
        ({"promote_after": HOUR}, "promote_to", "promotion needs both"),
        ({"promote_to": "  ", "promote_after": HOUR}, "promote_to", "must name a deployment"),
        ({"promote_to": "Production", "promote_after": -HOUR}, "promote_after", "zero or more"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(values: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidRolloutPolicy) as raised:
        RolloutPolicy(**values)
    error = raised.value
    assert isinstance(error, Invalid) and error.kind is ErrorKind.INVALID
    assert error.subject == {"policy_field": field}
    assert error.message.startswith(f"The rollout policy's {field} ")
    assert says in error.message
    assert [fix.action for fix in error.fixes] == ["change-rollout-policy"]


@pytest.mark.parametrize(
    ("values", "normalised"),
    [
        ({"steps": [10, 100]}, {"steps": (10, 100)}),
        ({"steps": (100,)}, {"steps": (100,)}),
        ({"min_dwell": 90}, {"min_dwell": dt.timedelta(seconds=90)}),
        ({"min_dwell": 0}, {"min_dwell": dt.timedelta()}),
        ({"min_sample": 0}, {"min_sample": 0}),
        ({"confidence": 0.5}, {"confidence": 0.5}),
        ({"max_failure_rate": 0}, {"max_failure_rate": 0.0}),
        ({"max_failure_rate": None, "max_increase": None}, {"max_failure_rate": None, "max_increase": None}),
        ({"action": "roll-back"}, {"action": GateAction.ROLL_BACK}),
        (
            {"promote_to": " Production ", "promote_after": 86400},
            {"promote_to": "Production", "promote_after": dt.timedelta(days=1)},
        ),
    ],
)
def test_good_values_are_normalised(values: dict[str, Any], normalised: dict[str, Any]) -> None:
    policy = RolloutPolicy(**values)
    for name, value in normalised.items():
        assert getattr(policy, name) == value
        assert type(getattr(policy, name)) is type(value)


@pytest.mark.parametrize(
    ("text", "steps"),
    [("1,5,25,50,100", (1, 5, 25, 50, 100)), ("10%, 100%", (10, 100)), (" 100 ", (100,))],
)
def test_parse_steps(text: str, steps: tuple[int, ...]) -> None:
    assert parse_steps(text) == steps


@pytest.mark.parametrize(
    ("text", "says"),
    [("1,5,x", "whole percentages separated by commas"), ("", "whole percentages"), ("5,1,100", "must rise")],
)
def test_parse_steps_refuses(text: str, says: str) -> None:
    with pytest.raises(InvalidRolloutPolicy, match=says):
        parse_steps(text)


def test_json_round_trip() -> None:
    policy = RolloutPolicy(
        steps=(2, 20, 100),
        min_dwell=dt.timedelta(minutes=30),
        min_sample=10,
        confidence=0.99,
        max_failure_rate=0.1,
        max_increase=None,
        min_failures=3,
        action=GateAction.PAUSE,
        promote_to="Production",
        promote_after=dt.timedelta(hours=12),
    )
    assert RolloutPolicy.from_json(policy.to_json()) == policy
    assert RolloutPolicy.from_json(RolloutPolicy().to_json()) == RolloutPolicy()


def test_from_json_takes_defaults_and_steps_as_text() -> None:
    assert RolloutPolicy.from_json({}) == RolloutPolicy()
    assert RolloutPolicy.from_json({"steps": "10,100"}).steps == (10, 100)


def test_from_json_refuses_unknown_fields() -> None:
    with pytest.raises(
        InvalidRolloutPolicy, match="ramp is not a policy field: the fields are steps"
    ) as raised:
        RolloutPolicy.from_json({"ramp": "1,100"})
    assert raised.value.subject == {"policy_field": "ramp"}


@pytest.mark.parametrize("module", [policy_module, bounds_module], ids=lambda m: m.__name__)
def test_the_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("stored", "min_sample"),
    [
        ({"min_sample": 3}, 5),  # min_failures defaulted to 5
        ({"min_sample": 4, "min_failures": 6}, 6),
        ({"min_sample": 0}, 0),  # steps timed by dwell alone
        ({"min_sample": 20, "min_failures": 2}, 20),
        ({}, 50),
    ],
)
def test_a_stored_policy_is_read_as_the_nearest_valid_one(stored: dict[str, Any], min_sample: int) -> None:
    assert RolloutPolicy.from_stored(stored).min_sample == min_sample


def test_a_stored_policy_with_a_bad_field_is_still_refused() -> None:
    with pytest.raises(InvalidRolloutPolicy):
        RolloutPolicy.from_stored({"min_sample": -1})
